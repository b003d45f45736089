"""Claims about randomized methods are claims about their distribution over seeds, not about one draw.

A test runs the method on ``SEEDS`` and asserts on the mean over seeds with its uncertainty: ``lower_bound``
(mean - 2 standard errors) above a threshold, or ``upper_bound`` below one. Each threshold is justified in a
comment by a measured multi-seed distribution (mean, sd, number of seeds), never by one draw.
"""

from __future__ import annotations

import numpy as np

SEEDS = range(5)

# The tests measure each method at the sample count they pass (num_masks, num_designs, num_samples ...), which
# is a cap that sampling stops short of once `target_reliability` is reached: these claims were measured at the
# whole count. WCAM's measured count is 8 designs, pinned here since its default cap is larger.
FIXED_COUNT: dict = {"target_reliability": 0}
WCAM_MEASURED: dict = {"num_designs": 8, **FIXED_COUNT}


def standard_error(values) -> float:
    """The standard error of the mean of ``values`` (one per seed): sd / sqrt(seeds)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def lower_bound(values) -> float:
    """Mean - 2 SE over seeds: what a threshold below must clear."""
    return float(np.mean(values)) - 2 * standard_error(values)


def upper_bound(values) -> float:
    """Mean + 2 SE over seeds: what a threshold above must stay under."""
    return float(np.mean(values)) + 2 * standard_error(values)
