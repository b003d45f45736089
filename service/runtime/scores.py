"""Class scores in the space an explanation or a metric is computed in.

A model gives one row of scores per image, of the kind its output is (``OutputKind``). Every space below is
served for every kind, from the output and, where the graph has them, the logits before its terminal
activation (``ModelOutputs.logits``: the input of a terminal Softmax / LogSoftmax / Sigmoid, returned by the
same session call). Where no such logits exist, LOGIT falls back, per ``LogitSource``:

- probabilities made some other way: LOGIT is log p, the log-probabilities. These equal the logits up to one
  constant per image (log of the softmax's normaliser), so any difference of two images' scores (occlusion,
  RISE's weighted means, deletion curves) differs from the true logits' by the difference of the two
  constants (so an occlusion or RISE map differs from the logits' map by a map of those differences, not by
  one constant); it is exact only for comparisons between classes of one image. Where the model's float32
  probabilities have rounded to 1 the logits are lost and log p is 0, saturated like p; where p rounds to 0,
  log p is clipped at log(float32 tiny), -87.3.
- sigmoid outputs: LOGIT is log(p / (1 - p)), exact until p rounds to 0 or 1 in float32; p is clipped to
  [float32 tiny, 1 - 2**-24], so such scores saturate at -87.3 and +16.6.

A binary sigmoid head ([N, 1]) is served as two classes, 0 = negative and 1 = positive: probabilities
[1 - p, p], logits (each class's log-odds) [-z, z], log-probabilities [log(1 - p), log p]. A multi-label
sigmoid head ([N, K]) keeps its K independent per-class scores: no space applies a softmax across classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from service.runtime.signature import OutputKind


class ScoreSpace(StrEnum):
    # The model's output as it is (a binary sigmoid's single column served as [1 - p, p]).
    RAW = "raw"
    # Logits: the input of a terminal softmax or sigmoid, or the output of a logit model (see LogitSource).
    LOGIT = "logit"
    # Class probabilities: softmax of logits, exp of log-probabilities, per-class sigmoids for sigmoid heads.
    PROBABILITY = "probability"
    # log of PROBABILITY, computed from the logits where there are some (never -inf).
    LOG_PROBABILITY = "log_probability"


# Explanations default to logits: probabilities saturate (a confident softmax stays at 1.0 in float32 while
# its logits move by several units), which makes occlusion and RISE maps exactly zero.
EXPLANATION_SPACE = ScoreSpace.LOGIT
# Fidelity metrics (deletion, insertion, mu-fidelity, MoRF/LeRF) default to probabilities: RISE's deletion and
# insertion are defined on them, so the numbers compare with published ones.
METRIC_SPACE = ScoreSpace.PROBABILITY
# What a sigmoid head's "predicted" means by default: probability strictly above one half.
DEFAULT_THRESHOLD = 0.5


class LogitSource(StrEnum):
    """Where LOGIT scores come from."""

    # The model outputs logits.
    OUTPUT = "output"
    # The input of the terminal Softmax / LogSoftmax / Sigmoid, returned by the same session call: exact.
    PRE_ACTIVATION = "pre_activation"
    # log of probabilities made without an exposed pre-softmax tensor: the logits up to a per-image constant.
    LOG_PROBABILITY = "log_probability"
    # log(p / (1 - p)) of sigmoid outputs without an exposed pre-sigmoid tensor.
    INVERSE_SIGMOID = "inverse_sigmoid"


_TINY = float(np.finfo(np.float32).tiny)
_BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def logit_source(kind: OutputKind, has_logits: bool) -> LogitSource:
    if kind is OutputKind.LOGITS:
        return LogitSource.OUTPUT
    if has_logits:
        return LogitSource.PRE_ACTIVATION
    return LogitSource.INVERSE_SIGMOID if kind is OutputKind.SIGMOID else LogitSource.LOG_PROBABILITY


def served_classes(kind: OutputKind, output_classes: int) -> int:
    """Classes served for an output of ``output_classes`` columns: a binary sigmoid's one column is two classes."""
    return 2 if kind is OutputKind.SIGMOID and output_classes == 1 else output_classes


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -logits))


def log_sigmoid(logits: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -logits)


def _log(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probabilities, _TINY))


def _inverse_sigmoid(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, _TINY, _BELOW_ONE)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass(frozen=True)
class ModelOutputs:
    """One session call's results for a batch: the output explained, (N, columns), and the logits before its
    terminal activation (same shape) when the graph has them."""

    kind: OutputKind
    raw: np.ndarray
    logits: np.ndarray | None = None

    def scores(self, space: ScoreSpace) -> np.ndarray:
        """(N, classes) float32 scores in ``space``."""
        return to_space(self.raw, self.kind, space, self.logits)


def to_space(outputs: np.ndarray, kind: OutputKind, space: ScoreSpace, logits: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``outputs`` (of ``kind``; ``logits``: the pre-activation tensor, if any) in ``space``."""
    raw = outputs.astype(np.float64)
    z = None if logits is None else logits.astype(np.float64)
    if kind is OutputKind.SIGMOID:
        scores = _sigmoid_space(raw, z, space)
    elif space is ScoreSpace.RAW:
        scores = raw
    elif kind is OutputKind.LOGITS:
        scores = (softmax(raw) if space is ScoreSpace.PROBABILITY else
                  log_softmax(raw) if space is ScoreSpace.LOG_PROBABILITY else raw)
    elif kind is OutputKind.PROBABILITIES:
        if space is ScoreSpace.PROBABILITY:
            scores = raw
        elif z is not None:
            scores = z if space is ScoreSpace.LOGIT else log_softmax(z)
        else:
            scores = _log(raw)
    else:  # log-probabilities
        if space is ScoreSpace.PROBABILITY:
            scores = np.exp(raw)
        elif space is ScoreSpace.LOGIT and z is not None:
            scores = z
        else:
            scores = raw
    return scores.astype(np.float32)


def _sigmoid_space(p: np.ndarray, z: np.ndarray | None, space: ScoreSpace) -> np.ndarray:
    binary = p.shape[1] == 1
    if space in (ScoreSpace.RAW, ScoreSpace.PROBABILITY):
        return np.concatenate([1.0 - p, p], axis=1) if binary else p
    if space is ScoreSpace.LOGIT:
        z = _inverse_sigmoid(p) if z is None else z
        return np.concatenate([-z, z], axis=1) if binary else z
    if z is not None:
        return np.concatenate([log_sigmoid(-z), log_sigmoid(z)], axis=1) if binary else log_sigmoid(z)
    return np.concatenate([_log(1.0 - p), _log(p)], axis=1) if binary else _log(p)


def activation_matches(kind: OutputKind, outputs: np.ndarray, logits: np.ndarray) -> bool:
    """Whether ``outputs`` are the activation of ``logits`` that ``kind`` says (a Softmax over another axis, or
    reshapes that reorder classes, would not be): checked on the probe batch before the logits are trusted."""
    z = logits.astype(np.float64)
    expected = {OutputKind.PROBABILITIES: softmax, OutputKind.LOG_PROBABILITIES: log_softmax,
                OutputKind.SIGMOID: sigmoid}[kind](z)
    return outputs.shape == logits.shape and np.allclose(outputs, expected, rtol=1e-3, atol=1e-5)


def positive_classes(outputs: ModelOutputs, threshold: float) -> list[list[int]]:
    """Per image, the classes a sigmoid head predicts: a multi-label head's classes whose probability is strictly
    above ``threshold`` (possibly none), a binary head's one class (1 when p > threshold, else 0). Empty lists for
    a softmax-family model, whose prediction is its top class."""
    if outputs.kind is not OutputKind.SIGMOID:
        return [[] for _ in outputs.raw]
    p = outputs.raw.astype(np.float64)
    if p.shape[1] == 1:
        return [[int(row[0] > threshold)] for row in p]
    return [[int(i) for i in np.flatnonzero(row > threshold)] for row in p]


def looks_like(outputs: np.ndarray) -> OutputKind:
    """Guess what a probe batch's outputs are: rows of probabilities, log-probabilities, or logits.
    Sigmoid heads are not guessed (values in [0, 1] may as well be logits): the graph's terminal Sigmoid, or the
    configuration (output_kind "sigmoid"), says so."""
    outputs = outputs.astype(np.float64)
    if np.all(outputs >= 0) and np.all(outputs <= 1) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return OutputKind.PROBABILITIES
    if np.all(outputs <= 0) and np.allclose(np.exp(outputs).sum(axis=1), 1.0, atol=1e-3):
        return OutputKind.LOG_PROBABILITIES
    return OutputKind.LOGITS
