"""Class scores in the space an explanation is computed in."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from service.runtime.signature import OutputKind


class ScoreSpace(StrEnum):
    # The model's output as it is.
    RAW = "raw"
    # Class probabilities, whatever the model outputs.
    PROBABILITY = "probability"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def to_space(outputs: np.ndarray, kind: OutputKind, space: ScoreSpace) -> np.ndarray:
    if space is ScoreSpace.RAW or kind is OutputKind.PROBABILITIES:
        return outputs
    if kind is OutputKind.LOG_PROBABILITIES:
        return np.exp(outputs)
    return softmax(outputs)


def looks_like(outputs: np.ndarray) -> OutputKind:
    """Guess what a probe batch's outputs are: rows of probabilities, log-probabilities, or logits."""
    outputs = outputs.astype(np.float64)
    if np.all(outputs >= 0) and np.all(outputs <= 1) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return OutputKind.PROBABILITIES
    if np.all(outputs <= 0) and np.allclose(np.exp(outputs).sum(axis=1), 1.0, atol=1e-3):
        return OutputKind.LOG_PROBABILITIES
    return OutputKind.LOGITS
