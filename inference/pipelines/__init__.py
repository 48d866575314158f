"""Diffusers pipelines of the worker: model cache, rendering, variations and upscaling.

Importing this package imports torch and diffusers (the worker does; the bot must not).

    cache = PipelineCache()                       # nothing loaded, CUDA untouched
    result = render_grid(cache, preset, spec)     # loads the model on first use
    grid = compose_grid(result.images)
"""

from inference.errors import JobCancelled
from inference.pipelines.cache import PipelineCache, default_device, default_dtype, load_pipeline
from inference.pipelines.render import (
    OnStep,
    RenderResult,
    ShouldCancel,
    WantPreview,
    check_spec,
    render_blank,
    render_grid,
    render_inpaint,
    render_variations,
)
from inference.pipelines.upscale import UpscaleResult, upscale_image

__all__ = [
    "JobCancelled",
    "OnStep",
    "PipelineCache",
    "RenderResult",
    "ShouldCancel",
    "UpscaleResult",
    "WantPreview",
    "check_spec",
    "default_device",
    "default_dtype",
    "load_pipeline",
    "render_blank",
    "render_grid",
    "render_inpaint",
    "render_variations",
    "upscale_image",
]
