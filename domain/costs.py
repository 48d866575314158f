"""What a job costs in GPU time: the estimate reserved at submit, and the charge settled at the end.

The estimate comes from a cost model per model family (or per model), in milliseconds on the GPU::

    denoising  = ms_per_megapixel_step x megapixels x steps that run x images x passes / usual passes
    upscaling  = upscale_ms_per_megapixel x output megapixels            (U1-U4, subtle)
    estimate   = overhead_ms + denoising (+ upscaling)

Steps that run: ``steps`` cut by ``--stop``; for image-to-image (variations, creative upscales) only the
``strength`` share of the schedule runs. The canvas kinds (zoom, pan, square, vary_region) denoise the whole
output at full strength (the mask decides what is kept, not how much of the picture is computed), so they
cost what a grid of their output size costs. Passes: a step's price is for the family's ordinary step (two
model passes for classifier-free guidance, one for a guidance-distilled FLUX.1); a job that runs more or
fewer (``domain.capabilities.passes_per_step``: FLUX.1 with ``--no`` runs true CFG, twice the work; a turbo
model at guidance 0 half of a CFG step) is charged in proportion. The defaults below are for a current 24 GB
card (orders of magnitude from published timings, not measured here); operators
calibrate them in the plans file (``[costs.<family or model>]``) by comparing ``jobs.estimated_ms`` with
``jobs.gpu_ms`` (see docs/quotas.md).

Lanes: turbo is charged twice the GPU time and served first; fast is charged the GPU time; relax is not
charged (it waits behind fast and turbo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.capabilities import passes_per_step, usual_passes
from domain.spec import JobKind, JobSpec, Lane

if TYPE_CHECKING:
    from domain.capabilities import Capabilities

__all__ = [
    "DEFAULT_COSTS",
    "LANE_MULTIPLIER",
    "CostModel",
    "charge_ms",
    "estimate_ms",
    "reserve_ms",
]

#: GPU time charged per millisecond used, by lane.
LANE_MULTIPLIER: dict[Lane, int] = {Lane.TURBO: 2, Lane.FAST: 1, Lane.RELAX: 0}
#: Strengths assumed when an image-to-image spec names none (the pipelines' defaults).
_VARY_STRENGTH = 0.6
_CREATIVE_STRENGTH = 0.35


@dataclass(frozen=True, slots=True)
class CostModel:
    """GPU milliseconds per unit of work on this deployment's GPUs."""

    #: One denoising step over one megapixel, as the family usually runs it (CFG's two passes included).
    ms_per_megapixel_step: float
    #: Per job: text encoding, VAE decoding, moving images around.
    overhead_ms: float
    #: Real-ESRGAN-style upscaling, per output megapixel.
    upscale_ms_per_megapixel: float


#: Defaults per family on a 24 GB card, orders of magnitude (SD 1.5 grid ~6 s, SDXL grid ~28 s, FLUX.1 [dev]
#: 1024 px ~1 s a step an image, Qwen-Image 20B slowest). One entry per family of domain.capabilities.
DEFAULT_COSTS: dict[str, CostModel] = {
    "sd15": CostModel(ms_per_megapixel_step=175.0, overhead_ms=400.0, upscale_ms_per_megapixel=100.0),
    "sdxl": CostModel(ms_per_megapixel_step=200.0, overhead_ms=1500.0, upscale_ms_per_megapixel=120.0),
    "sd3": CostModel(ms_per_megapixel_step=300.0, overhead_ms=2000.0, upscale_ms_per_megapixel=120.0),
    "flux": CostModel(ms_per_megapixel_step=900.0, overhead_ms=3000.0, upscale_ms_per_megapixel=120.0),
    "flux2": CostModel(ms_per_megapixel_step=500.0, overhead_ms=2000.0, upscale_ms_per_megapixel=120.0),
    "zimage": CostModel(ms_per_megapixel_step=700.0, overhead_ms=2000.0, upscale_ms_per_megapixel=120.0),
    "qwenimage": CostModel(ms_per_megapixel_step=2200.0, overhead_ms=4000.0, upscale_ms_per_megapixel=120.0),
}


def _steps_run(spec: JobSpec, strength: float | None = None) -> int:
    steps = max(1, math.ceil(spec.steps * spec.stop / 100))
    if strength is not None:
        steps = max(1, int(steps * strength))
    return steps


def estimate_ms(
    spec: JobSpec, kind: JobKind, model: CostModel, capabilities: Capabilities | None = None
) -> int:
    """GPU milliseconds this job should take (before the lane's multiplier); always at least 1.

    ``model`` is the cost model of the spec's model (:meth:`domain.plans.PlanBook.cost_model`);
    ``capabilities``, its family's, scale the step price by the passes this job's steps make.
    """
    megapixels = spec.width * spec.height / 1e6
    rate = model.ms_per_megapixel_step
    if capabilities is not None:
        rate *= passes_per_step(capabilities, spec) / usual_passes(capabilities)
    if kind is JobKind.UPSCALE:
        factor = spec.upscale_factor or 2
        out_megapixels = megapixels * factor * factor
        cost = model.overhead_ms + out_megapixels * model.upscale_ms_per_megapixel
        if spec.upscale_mode == "creative":
            cost += rate * out_megapixels * _steps_run(spec, spec.strength or _CREATIVE_STRENGTH)
    elif kind is JobKind.VARY:
        strength = spec.strength or _VARY_STRENGTH
        cost = model.overhead_ms + rate * megapixels * spec.images * _steps_run(spec, strength)
    elif kind.is_canvas:  # inpainting at strength 1 over the whole output
        cost = model.overhead_ms + rate * megapixels * spec.images * _steps_run(spec)
    else:  # imagine, reroll
        cost = model.overhead_ms + rate * megapixels * spec.images * _steps_run(spec)
    return max(1, math.ceil(cost))


def reserve_ms(lane: Lane, estimate: int) -> int:
    """Fast time to hold for a job in ``lane`` while it waits and runs."""
    return estimate * LANE_MULTIPLIER[lane]


def charge_ms(lane: Lane, gpu_ms: int | None) -> int:
    """Fast time a finished job in ``lane`` costs: its measured GPU time times the lane's multiplier."""
    return max(0, int(gpu_ms or 0)) * LANE_MULTIPLIER[lane]
