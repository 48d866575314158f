"""Upscale one image (U1–U4, then "Upscale (Subtle)" / "Upscale (Creative)").

- ``subtle``: the preset's Real-ESRGAN-family weights (``preset.upscaler``, run through spandrel), as many
  passes as the factor needs, then a Lanczos resize to exactly ``factor`` times the size. Keeps the picture,
  sharpens it.
- ``creative``: a Lanczos enlargement, then img2img over it at low strength with the job's prompt: the model
  redraws fine detail at the new size. The VAE works in tiles when the result is larger than the model's
  native size.
- ``lanczos``: the fallback for ``subtle`` when the preset names no upscaler weights.

:class:`UpscaleResult.method` says which one ran.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from domain.catalog import ModelPreset
from domain.loras import LoraPreset
from domain.spec import JobSpec
from inference.errors import JobCancelled
from inference.pipelines.cache import PipelineCache
from inference.pipelines.render import OnStep, ShouldCancel, render_variations
from inference.pipelines.timing import GpuTimer

__all__ = ["CREATIVE_STRENGTH", "UPSCALE_MODES", "UpscaleResult", "upscale_image"]

UPSCALE_MODES = ("subtle", "creative")
#: img2img strength of a creative upscale when the spec gives none: redraw detail, keep the composition.
CREATIVE_STRENGTH = 0.35


@dataclass(frozen=True, slots=True)
class UpscaleResult:
    image: Image.Image
    #: "esrgan", "creative" or "lanczos"
    method: str
    gpu_ms: int


def upscale_image(
    cache: PipelineCache,
    preset: ModelPreset,
    image: Image.Image,
    *,
    factor: int = 2,
    mode: str = "subtle",
    spec: JobSpec | None = None,
    loras: Sequence[tuple[LoraPreset, float]] = (),
    should_cancel: ShouldCancel | None = None,
    on_step: OnStep | None = None,
) -> UpscaleResult:
    """``image`` enlarged ``factor`` times in each side.

    Parameters
    ----------
    cache:
        Holds the upscaler weights and the pipelines (loaded once).
    preset:
        The model: its ``upscaler`` weights for ``subtle``, its pipeline for ``creative``.
    factor:
        Scale of each side, at least 1 (1 returns a copy for ``subtle``).
    mode:
        ``"subtle"`` or ``"creative"``.
    spec:
        Required for ``creative``: prompt, negative prompt, seed, steps, guidance, sampler, and
        ``strength`` (default :data:`CREATIVE_STRENGTH`).
    loras:
        For ``creative``: the LoRAs the image was drawn with (see :func:`~.render.render_grid`).
    should_cancel:
        For ``creative``: checked after every denoising step (raises :class:`JobCancelled`).
    on_step:
        For ``creative``: ``(step, total, None)`` after every denoising step (no previews). The other
        methods have no steps to report.
    """
    if mode not in UPSCALE_MODES:
        raise ValueError(f"mode must be one of {', '.join(UPSCALE_MODES)}, got {mode!r}")
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got {factor}")
    image = image.convert("RGB")
    size = (image.width * factor, image.height * factor)

    if mode == "creative":
        if spec is None:
            raise ValueError("a creative upscale needs the job spec (its prompt and seed)")
        return _creative(cache, preset, spec, lanczos(image, size), loras, should_cancel, on_step)

    model = cache.upscaler(preset)
    if model is None:
        return UpscaleResult(lanczos(image, size), "lanczos", 0)
    with GpuTimer(cache.device) as timer:
        result = run_esrgan(model, image, factor, device=cache.device)
    return UpscaleResult(lanczos(result, size), "esrgan", timer.ms)


def lanczos(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` resized to ``size`` with Lanczos (a copy when it already has that size)."""
    return image.copy() if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


@torch.inference_mode()
def run_esrgan(model: Any, image: Image.Image, factor: int, *, device: torch.device) -> Image.Image:
    """Run a spandrel ``ImageModelDescriptor`` until the image is at least ``factor`` times larger
    (one pass for x4 weights and factors up to 4)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).to(device)
    reached = 1
    while reached < factor:
        tensor = model(tensor).clamp_(0, 1)
        reached *= model.scale
    result = (tensor[0].permute(1, 2, 0).float().cpu().numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(result)


def _creative(
    cache: PipelineCache,
    preset: ModelPreset,
    spec: JobSpec,
    enlarged: Image.Image,
    loras: Sequence[tuple[LoraPreset, float]],
    should_cancel: ShouldCancel | None,
    on_step: OnStep | None = None,
) -> UpscaleResult:
    """img2img over the enlarged image: one variation seeded ``spec.seed``, the VAE in tiles when large."""
    strength = spec.strength if spec.strength is not None else CREATIVE_STRENGTH
    one = spec.replace(images=1, width=enlarged.width, height=enlarged.height)
    large = enlarged.width * enlarged.height > preset.pixel_budget
    if should_cancel is not None and should_cancel():
        raise JobCancelled(0)
    with _vae_tiling(cache.text_to_image(preset).vae, large):
        result = render_variations(
            cache, preset, one, enlarged, strength, loras=loras, on_step=on_step, should_cancel=should_cancel
        )
    return UpscaleResult(result.images[0], "creative", result.gpu_ms)


@contextmanager
def _vae_tiling(vae: Any, enabled: bool) -> Iterator[None]:
    """Encode and decode in tiles for the block (the VAE is shared: put the setting back)."""
    was_tiling = bool(getattr(vae, "use_tiling", False))
    if enabled and not was_tiling:
        vae.enable_tiling()
    try:
        yield
    finally:
        if enabled and not was_tiling:
            vae.disable_tiling()
