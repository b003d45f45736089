"""Ensembles of explanations (Mahlau & Nolde 2022, arXiv 2207.01565): normalise each member map, then
combine them pixel by pixel, with aggregators that use the members' spread (the Bayesian-optimisation
acquisition forms). Plain numpy; the job that scores members and aggregates by a fidelity metric builds on it."""
