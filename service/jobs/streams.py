"""The random streams of one explanation, derived from its seed: common random numbers (CRN).

A job that compares settings (baselines, metric baselines, perturbed images, models) wants each difference it
reports to be the setting's, not the sampler's: Var(A - B) = Var A + Var B - 2 Cov(A, B), and drawing the
same samples for A and B makes the covariance large (reference note ``precision_and_real_models.md`` section 1,
"Common random numbers"). So an explanation's draws come from independent sub-streams of its seed
(``numpy.random.SeedSequence`` children), one per *use*, and every use starts its stream afresh:

- **method** ``(0, crc32(method name))``: the method's samples (masks, designs, coalitions, EVA's hybrid
  draws). Keyed by the method, so two settings of one method share their draws whatever their baseline, their
  metrics or the image (the draws must not depend on the data: the methods' contract), while two different
  methods under one seed draw independently (a RISE map and a LIME map do not share noise by accident).
- **baseline** ``(1,)``: a noise baseline's own draw. Every noise baseline resolved under one seed (the
  explanation's, a metric baseline's) is the same noise image.
- **metrics** ``(2,)``: the metrics' draws (mu-fidelity's subsets). Every scoring starts from it afresh, so
  one map scored under several metric baselines, or several maps under one, or several targets, is scored on
  the same subsets; and Evaluate with an explanation's seed scores its map exactly as Explain did inline.
- **job** ``(3,)``: draws of the calling job itself (AnalyzeScales' corruptions).

Which metrics are asked, or which baseline, therefore changes no draw of the method: two explanations with the
same seed and different baselines perturb with identical masks.

CRN is for *comparisons of settings*. It must not be used where a study estimates how much a result varies
with its draws: split-half reliability compares two *independent* halves (``rng.spawn(2)`` inside each
method), and seed-to-seed agreement compares different seeds. A stability or consistency study run under one
seed measures how much the setting moves the map with the sampling held fixed, not the sampler's
reliability.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

METHOD, BASELINE, METRICS, JOB = 0, 1, 2, 3


@dataclass(frozen=True)
class Streams:
    seed: int

    def _child(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def method(self, name: str) -> np.random.Generator:
        return self._child(METHOD, zlib.crc32(name.encode()))

    def baseline(self) -> np.random.Generator:
        return self._child(BASELINE)

    def metrics(self) -> np.random.Generator:
        return self._child(METRICS)

    def job(self) -> np.random.Generator:
        return self._child(JOB)
