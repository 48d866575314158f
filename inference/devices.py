"""Which device each prefork worker process runs on: one entry of ``WORKER_DEVICES`` per process.

Celery's prefork pool (billiard) numbers its processes 0..N-1 and gives a replacement the number of the one
it replaces, so process ``i`` always takes device ``i``. Nothing here imports torch or touches CUDA: a CUDA
device is claimed by narrowing ``CUDA_VISIBLE_DEVICES`` to it in the child before CUDA starts, so that in that
process ``cuda`` and ``cuda:0`` both mean its own GPU (libraries that say ``cuda`` land there too, and no
process makes a context on another's GPU).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Device", "claim_device", "process_index"]


@dataclass(frozen=True)
class Device:
    #: The configured name (``cuda:1``), used in logs and metrics.
    name: str
    #: What to hand torch in this process (``cuda:0`` once ``CUDA_VISIBLE_DEVICES`` is narrowed to GPU 1).
    torch_device: str


def process_index() -> int:
    """This prefork child's number (0 outside a pool)."""
    from billiard.process import current_process

    index = getattr(current_process(), "index", None)
    return index if isinstance(index, int) else 0


def claim_device(devices: Sequence[str], index: int) -> Device | None:
    """The device of process ``index``, or ``None`` when no devices are configured (the default device).

    For ``cuda:N`` this sets ``CUDA_VISIBLE_DEVICES`` to GPU N (counted within any list the process
    inherited); call it in the child before CUDA is initialised.
    """
    if not devices:
        return None
    name = devices[index % len(devices)]
    kind, _, number = name.partition(":")
    if kind != "cuda":
        return Device(name, name)
    gpu = int(number or 0)
    inherited = [part for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if inherited:
        if gpu >= len(inherited):
            raise ValueError(f"WORKER_DEVICES names {name}, but CUDA_VISIBLE_DEVICES shows only {len(inherited)} GPUs")
        os.environ["CUDA_VISIBLE_DEVICES"] = inherited[gpu]
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return Device(name, "cuda:0")
