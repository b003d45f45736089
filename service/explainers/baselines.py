"""Baselines: what a perturbation puts in place of the pixels it removes, in pixel space."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from service.errors import InvalidArgument
from service.runtime.preprocessing import Preprocessing


class BaselineKind(StrEnum):
    CONSTANT = "constant"
    BLACK = "black"
    WHITE = "white"
    DATASET_MEAN = "dataset_mean"
    IMAGE_MEAN = "image_mean"


@dataclass(frozen=True)
class Baseline:
    """Default: the dataset mean, the colour that a 0 in the model's normalised input stands for.

    That is what captum's and Xplique's default baseline of 0 amounts to on a normalised model, so
    maps agree with theirs; a black baseline is rarely neutral (Brunke et al. 2020).
    """

    kind: BaselineKind = BaselineKind.DATASET_MEAN
    # Pixel value in [0, 1], for CONSTANT.
    value: float = 0.0

    def image(self, image: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
        """The baseline image matching ``image`` (H, W, C) in [0, 1]."""
        if self.kind is BaselineKind.CONSTANT:
            if not 0.0 <= self.value <= 1.0:
                raise InvalidArgument(f"value {self.value} must be a pixel value in [0, 1]", field="baseline.value")
            pixel = np.full(image.shape[2], self.value, dtype=np.float32)
        elif self.kind is BaselineKind.BLACK:
            pixel = np.zeros(image.shape[2], dtype=np.float32)
        elif self.kind is BaselineKind.WHITE:
            pixel = np.ones(image.shape[2], dtype=np.float32)
        elif self.kind is BaselineKind.DATASET_MEAN:
            pixel = preprocessing.dataset_mean_pixel()
        else:
            pixel = image.reshape(-1, image.shape[2]).mean(axis=0)
        return np.broadcast_to(pixel.astype(np.float32), image.shape).copy()
