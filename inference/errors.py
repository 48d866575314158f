"""Errors of the inference side. Importing this module does not import torch.

InferenceError     base class
├── JobCancelled   the job was cancelled while it ran (``should_cancel`` returned true)
└── ModelLoadError a model cannot be loaded as the models file says (memory mode, LoRA); one line for the operator
"""

from __future__ import annotations

__all__ = ["InferenceError", "JobCancelled", "ModelLoadError"]


class InferenceError(Exception):
    """Base class for errors raised by the pipelines."""


class JobCancelled(InferenceError):
    """Raised from inside the denoising loop when ``should_cancel()`` returns true.

    Catch it in the task, mark the job cancelled and refund: no image was produced. ``steps_run`` is the
    number of denoising steps finished before the cancel was noticed.
    """

    def __init__(self, steps_run: int) -> None:
        self.steps_run = steps_run
        super().__init__(f"job cancelled after {steps_run} denoising step(s)")


class ModelLoadError(InferenceError):
    """A model, its memory mode or one of its LoRAs cannot be loaded on this worker.

    The message is one line naming the model (and LoRA) and what to change in the models file.
    """
