"""GPU time of a block of work, for billing (``jobs.gpu_ms``)."""

from __future__ import annotations

import time
from types import TracebackType

import torch

__all__ = ["GpuTimer"]


class GpuTimer:
    """Milliseconds a block took on ``device``: CUDA events on a GPU, ``perf_counter`` on the CPU.

    CUDA work is asynchronous, so wall-clock time around it would measure only the launches; the events
    are recorded on the device's stream and the end event is waited for. ::

        with GpuTimer(device) as timer:
            pipe(...)
        job.gpu_ms = timer.ms
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ms = 0
        self._start_event: torch.cuda.Event | None = None
        self._start = 0.0

    def __enter__(self) -> GpuTimer:
        if self.device.type == "cuda":
            self._start_event = torch.cuda.Event(enable_timing=True)
            self._start_event.record()
        else:
            self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._start_event is not None:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            self.ms = round(self._start_event.elapsed_time(end))
        else:
            self.ms = round((time.perf_counter() - self._start) * 1000)
