"""How much two maps, or two rankings of methods, agree: the statistics of a consistency study.

Brunke, Agrawal & George ("Evaluating Input Perturbation Methods for
Interpreting CNNs and Saliency Map Comparison", ECCV Workshops 2020) show that
baselines and hyperparameters change both the maps and the metrics' verdicts;
these functions put numbers on that. Maps are compared with Spearman's rank
correlation (blind to the maps' scales), SSIM (structure) and the IoU of their
top pixels; rankings of methods under two settings with Kendall's tau.
All are plain functions of (H, W) maps; 1 means full agreement.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats
from skimage.metrics import structural_similarity

from service.errors import InvalidArgument


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho between the flattened maps; NaN when either is constant."""
    a, b = (m.ravel() for m in _pair(a, b))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) of the two maps, each min-max scaled to [0, 1], with ``data_range=1``.

    Scaling makes SSIM compare the maps' shapes, not their units (maps of different methods differ in
    scale by orders of magnitude); a constant map scales to zeros. skimage's defaults otherwise: a 7 x 7
    uniform window, shrunk to the largest odd size that fits maps smaller than 7 pixels.
    """
    a, b = (_unit(m) for m in _pair(a, b))
    window = min(7, *a.shape)
    if window % 2 == 0:
        window -= 1
    if window < 3:
        raise InvalidArgument(f"SSIM needs maps of at least 3 x 3 pixels, not {list(a.shape)}", field="map")
    return float(structural_similarity(a, b, data_range=1.0, win_size=window))


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """Intersection over union of the top ``fraction`` of pixels of each map (at least one; ties in raster order)."""
    if not 0.0 < fraction <= 1.0:
        raise InvalidArgument(f"{fraction} must be in (0, 1]", field="fraction")
    count = max(1, round(fraction * np.size(a)))
    top_a, top_b = (_top(m.ravel(), count) for m in _pair(a, b))
    return int(np.count_nonzero(top_a & top_b)) / int(np.count_nonzero(top_a | top_b))


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """A bool mask of the ``count`` largest values, ties in raster order (a stable sort)."""
    top = np.zeros(values.size, dtype=bool)
    top[np.argsort(-values, kind="stable")[:count]] = True
    return top


def pairwise(maps: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], float],
             checkpoint: Callable[[], None] = lambda: None) -> np.ndarray:
    """(K, K) matrix of ``fn`` between every two of the K maps; symmetric, with 1 on the diagonal.

    ``fn`` must be a symmetric similarity whose value for a map and itself is 1, as all of the above are.
    ``checkpoint`` runs before each pair: K (K - 1) / 2 comparisons of large maps take a while.
    """
    count = len(maps)
    matrix = np.eye(count)
    for i in range(count):
        for j in range(i + 1, count):
            checkpoint()
            matrix[i, j] = matrix[j, i] = fn(maps[i], maps[j])
    return matrix


def kendall_tau(scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    """Kendall's tau-b between two scorings of the same methods: do two settings rank them alike?"""
    return float(stats.kendalltau(scores_a, scores_b).statistic)


def kendall_matrix(scores: np.ndarray) -> np.ndarray:
    """Kendall's tau-b (B, B) between every two rows of ``scores`` (B, S), as ``kendall_tau`` gives it, at once.

    tau_b = (n_c - n_d) / sqrt((n_0 - n_1) (n_0 - n_2)) over the S (S - 1) / 2 pairs of columns: with the
    signs of every pair's difference per row, n_c - n_d is the dot product of two rows' signs (a pair tied
    in either row counts 0) and n_0 - n_1 a row's untied pairs. NaN where a row is constant, as scipy's.
    One (B, P) x (P, B) product: 300 scorings took 90,000 scipy calls and 47 s, with no checkpoint between.
    """
    scores = np.asarray(scores, dtype=np.float64)
    first, second = np.triu_indices(scores.shape[1], k=1)
    signs = np.sign(scores[:, second] - scores[:, first])
    untied = np.count_nonzero(signs, axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (signs @ signs.T) / np.sqrt(np.outer(untied, untied))


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InvalidArgument(f"maps of shapes {list(a.shape)} and {list(b.shape)} cannot be compared", field="map")
    return a, b


def _unit(values: np.ndarray) -> np.ndarray:
    span = np.ptp(values)
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)
