"""Sampler names of the models file (``domain.catalog.SCHEDULERS``) as diffusers schedulers.

Every scheduler is built fresh for each job with ``from_config`` from the model's own scheduler config,
so that the noise schedule (betas, timestep spacing) stays the model's and only the sampling method
changes. Settings a previous sampler could have left in that config (Karras sigmas, the DPM-Solver
variant) are always given explicitly.

The schedulers returned here also keep the model's latest estimate of the *clean* latents in
``scheduler.denoised`` (what k-diffusion calls ``denoised``; diffusers' ``pred_original_sample``). Live
previews and ``--stop`` decode that estimate: the noisy latents of an unfinished run decode to noise,
while the estimate decodes to a soft, less detailed version of the final picture.
"""

from __future__ import annotations

import functools
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

from domain.catalog import SCHEDULERS

__all__ = ["make_scheduler"]

#: sampler name -> (scheduler class, settings that define the sampler)
_SAMPLERS: dict[str, tuple[type[Any], dict[str, Any]]] = {
    "euler": (EulerDiscreteScheduler, {"use_karras_sigmas": False}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "dpmpp_2m_karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "ddim": (DDIMScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {"predict_x0": True, "use_karras_sigmas": False}),
}
assert set(_SAMPLERS) == set(SCHEDULERS), "inference.schedulers and domain.catalog disagree on sampler names"


def _keeping_denoised(cls: type[Any]) -> type[Any]:
    """A subclass of scheduler ``cls`` whose ``step`` also stores the clean-latents estimate in ``denoised``.

    Euler, Euler ancestral and DDIM return the estimate as ``pred_original_sample``; the multistep solvers
    (DPM-Solver++ and UniPC in their x0-predicting forms, the ones built here) keep it as the newest entry
    of ``model_outputs``. ``step`` keeps the signature of the original (``functools.wraps``), because
    pipelines inspect it to decide whether to pass ``generator`` and ``eta``.
    """
    original_step = cls.step

    @functools.wraps(original_step)
    def step(self: Any, *args: Any, return_dict: bool = True, **kwargs: Any) -> Any:
        output = original_step(self, *args, return_dict=True, **kwargs)
        denoised = getattr(output, "pred_original_sample", None)
        self.denoised = denoised if denoised is not None else self.model_outputs[-1]
        return output if return_dict else (output.prev_sample,)

    # Same name and module as the original: diffusers' bookkeeping (``pipe.config.scheduler``) is unchanged.
    return type(cls.__name__, (cls,), {"step": step, "denoised": None, "__module__": cls.__module__})


#: scheduler class -> its subclass that keeps ``denoised``, built once.
_KEEPING_DENOISED = {cls: _keeping_denoised(cls) for cls, _ in _SAMPLERS.values()}


def make_scheduler(name: str, config: Any) -> Any:
    """A new scheduler for sampler ``name`` with the noise schedule of ``config`` (a scheduler config).

    Raises :class:`ValueError` for a name that is not one of ``domain.catalog.SCHEDULERS``.
    """
    try:
        cls, settings = _SAMPLERS[name]
    except KeyError:
        raise ValueError(f"sampler {name!r} is not one of {', '.join(SCHEDULERS)}") from None
    return _KEEPING_DENOISED[cls].from_config(config, **settings)
