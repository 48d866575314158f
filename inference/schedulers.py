"""Sampler names of the models file (``domain.capabilities``) as diffusers schedulers, per kind of model.

Two tables: :data:`SD_SCHEDULERS` for the noise-predicting UNets (SD 1.5, SDXL) and :data:`FLOW_SCHEDULERS`
for the flow-matching DiTs (SD 3, FLUX, Z-Image, Qwen-Image); each family names its table.

Every scheduler is built fresh for each job with ``from_config`` from the model's own scheduler config,
so that the noise schedule (betas, timestep spacing) stays the model's and only the sampling method
changes. Settings a previous sampler could have left in that config (Karras sigmas, the DPM-Solver
variant) are always given explicitly.

The schedulers returned here also keep the model's latest estimate of the *clean* latents in
``scheduler.denoised`` (what k-diffusion calls ``denoised``; diffusers' ``pred_original_sample``). Live
previews and ``--stop`` decode that estimate: the noisy latents of an unfinished run decode to noise,
while the estimate decodes to a soft, less detailed version of the final picture. A flow-matching model
predicts the velocity ``v = noise - x0`` at noise level ``sigma`` (``x = (1 - sigma) x0 + sigma noise``), so
its estimate is ``x - sigma v``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

from domain.capabilities import FLOW_SAMPLERS, SD_SAMPLERS

__all__ = ["FLOW_SCHEDULERS", "SD_SCHEDULERS", "Samplers", "make_scheduler"]

#: sampler name -> (scheduler class, settings that define the sampler)
Samplers = Mapping[str, tuple[type[Any], dict[str, Any]]]

SD_SCHEDULERS: Samplers = {
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
#: The flow-matching samplers; the model's own config keeps its shift (and dynamic shifting).
FLOW_SCHEDULERS: Samplers = {
    "euler": (FlowMatchEulerDiscreteScheduler, {"stochastic_sampling": False}),
}
assert tuple(SD_SCHEDULERS) == SD_SAMPLERS and tuple(FLOW_SCHEDULERS) == FLOW_SAMPLERS, (
    "inference.schedulers and domain.capabilities disagree on sampler names"
)


def _keeping_denoised(cls: type[Any]) -> type[Any]:
    """A subclass of scheduler ``cls`` whose ``step`` also stores the clean-latents estimate in ``denoised``.

    Euler, Euler ancestral and DDIM return the estimate as ``pred_original_sample``; the multistep solvers
    (DPM-Solver++ and UniPC in their x0-predicting forms, the ones built here) keep it as the newest entry
    of ``model_outputs``; flow-matching Euler returns neither, so it is ``sample - sigma * model_output``
    at the sigma of the step just taken. ``step`` keeps the signature of the original (``functools.wraps``), because
    pipelines inspect it to decide whether to pass ``generator`` and ``eta``.
    """
    original_step = cls.step
    flow = issubclass(cls, FlowMatchEulerDiscreteScheduler)

    @functools.wraps(original_step)
    def step(self: Any, model_output: Any, timestep: Any, sample: Any, *args: Any, return_dict: bool = True,
             **kwargs: Any) -> Any:
        output = original_step(self, model_output, timestep, sample, *args, return_dict=True, **kwargs)
        if flow:
            sigma = self.sigmas[self.step_index - 1].to(sample.device)
            self.denoised = (sample.float() - sigma * model_output.float()).to(model_output.dtype)
        else:
            denoised = getattr(output, "pred_original_sample", None)
            self.denoised = denoised if denoised is not None else self.model_outputs[-1]
        return output if return_dict else (output.prev_sample,)

    # Same name and module as the original: diffusers' bookkeeping (``pipe.config.scheduler``) is unchanged.
    return type(cls.__name__, (cls,), {"step": step, "denoised": None, "__module__": cls.__module__})


#: scheduler class -> its subclass that keeps ``denoised``, built once.
_KEEPING_DENOISED = {
    cls: _keeping_denoised(cls) for table in (SD_SCHEDULERS, FLOW_SCHEDULERS) for cls, _ in table.values()
}


def make_scheduler(name: str, config: Any, samplers: Samplers = SD_SCHEDULERS) -> Any:
    """A new scheduler for sampler ``name`` of ``samplers`` (a family's table) with the noise schedule of
    ``config`` (the model's scheduler config).

    Raises :class:`ValueError` for a name that is not in ``samplers``.
    """
    try:
        cls, settings = samplers[name]
    except KeyError:
        raise ValueError(f"sampler {name!r} is not one of {', '.join(samplers)}") from None
    return _KEEPING_DENOISED[cls].from_config(config, **settings)
