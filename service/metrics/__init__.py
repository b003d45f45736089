"""Scores of explanations: plain functions of maps, masks and (for fidelity) a batched predict."""
