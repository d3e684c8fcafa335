"""Where a job's model runs: on the GPUs its rule got, or on the CPU.

A rule's ``gpu`` resource is what its job got (on a Slurm cluster the job sees exactly those
GPUs, through ``CUDA_VISIBLE_DEVICES``); the scripts pass it on as ``gpus``. The device
``"auto"`` is CUDA when the job has GPUs and CUDA is available, else the CPU.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto", gpus: int | None = None) -> str:
    """The torch device of a single-process job.

    ``device="auto"``: ``"cpu"`` when the job got no GPU (``gpus == 0``; it must not take one
    another job may hold), else ``"cuda"`` when CUDA is available (``gpus=None``: not known, any
    visible GPU will do), else ``"cpu"`` with a warning if GPUs were asked for. An explicit device
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``) is kept, but CUDA where none is available is an error.
    """
    import torch

    if gpus is not None and gpus < 0:
        raise ValueError(f"gpus must be >= 0, got {gpus}")
    if device == "auto":
        if gpus == 0:
            return "cpu"
        if torch.cuda.is_available():
            return "cuda"
        if gpus:
            log.warning("the job got %d GPU(s) but CUDA is not available: running on the CPU", gpus)
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available here")
    return device


def visible_gpus(needed: int) -> int:
    """The number of visible CUDA devices, checked to be at least ``needed`` (the job's GPUs).

    More visible GPUs than the job got (a workstation without CUDA_VISIBLE_DEVICES) is allowed
    with a warning: multi-GPU placement then spreads the model over all of them.
    """
    import torch

    visible = torch.cuda.device_count()
    if visible < needed:
        raise RuntimeError(
            f"the job got {needed} GPUs but {visible} are visible (CUDA_VISIBLE_DEVICES="
            f"{_cuda_visible()!r}); the model is sized for {needed}"
        )
    if visible > needed:
        log.warning(
            "%d GPUs are visible, the job got %d: the model is spread over all %d "
            "(set CUDA_VISIBLE_DEVICES to restrict it)",
            visible,
            needed,
            visible,
        )
    return visible


def _cuda_visible() -> str | None:
    import os

    return os.environ.get("CUDA_VISIBLE_DEVICES")
