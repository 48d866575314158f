"""Warm-up at load: a compiled model draws every ``--ar`` size once before the worker takes jobs.

``torch.compile`` compiles on a block's first call and again for shapes its guards have not seen, which
takes seconds to minutes; a member's job must never pay for it, nor count it against ``JOB_TIMEOUT_S``. So
:func:`warm_up` renders a two-step grid through :func:`~inference.pipelines.render.render_grid` (the path a
job takes: same batch, embeddings and guidance shapes) at each size of
:func:`domain.aspect.aspect_sizes` when the worker child loads its models (``inference.worker.preload``,
within ``MODEL_LOAD_TIMEOUT_S``). A model without ``fastpath.compile`` has nothing to warm.
"""

from __future__ import annotations

import logging
import time

from domain.aspect import aspect_sizes
from domain.catalog import ModelPreset
from domain.spec import JobSpec
from inference.pipelines.cache import PipelineCache
from inference.pipelines.render import render_grid

__all__ = ["WARMUP_STEPS", "warm_up", "warmup_plan"]

log = logging.getLogger(__name__)

#: Denoising steps per warm-up grid: the first step and a later one (a scheduler's first step can differ).
WARMUP_STEPS = 2


def warmup_plan(preset: ModelPreset) -> list[JobSpec]:
    """The grids that warm ``preset``: one per ``--ar`` size when it is compiled, else none."""
    if not preset.fastpath.compile:
        return []
    return [
        JobSpec(prompt="warm-up", model=preset.name, width=width, height=height, seed=0, steps=WARMUP_STEPS,
                guidance_scale=preset.guidance)
        for width, height in aspect_sizes(preset.pixel_budget)
    ]


def warm_up(cache: PipelineCache, preset: ModelPreset) -> float:
    """Render :func:`warmup_plan`'s grids with ``cache`` (loading the model first); returns the seconds spent."""
    plan = warmup_plan(preset)
    started = time.monotonic()
    for spec in plan:
        render_grid(cache, preset, spec)
    seconds = time.monotonic() - started
    if plan:
        log.info("model %s warmed at %d sizes in %.1fs", preset.name, len(plan), seconds)
    return seconds
