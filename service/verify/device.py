"""Where EVA's PyTorch mirror and its boxes live: the server's ``verify_device`` setting against what torch sees."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def torch_device(preference: str, device_id: int = 0) -> str:
    """The torch device for a ``verify_device`` preference (auto, cpu, cuda): CUDA when asked for or left to
    auto and torch sees a device, else the CPU (a forced cuda without one says so once per mirror)."""
    import torch

    if preference == "cpu":
        return "cpu"
    if torch.cuda.is_available() and device_id < torch.cuda.device_count():
        return f"cuda:{device_id}"
    if preference == "cuda":
        log.warning("verify_device cuda, but torch sees no CUDA device %d; the mirror runs on the CPU", device_id)
    return "cpu"
