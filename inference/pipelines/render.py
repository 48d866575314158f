"""Render jobs: a text-to-image grid (``/imagine``), image-to-image variations (V1–V4) and inpainting.

Each is one batch through a shared diffusers pipeline of the model's family (:mod:`inference.families`),
in the same steps:

1. check the spec (sides in multiples of the family's pixel step),
2. set the job's LoRAs (:mod:`.lora`), install a fresh scheduler for the job's sampler, from the family's
   samplers,
3. encode the prompt with the family's encoders (multi-prompt weights, ``--chaos``: :mod:`.conditioning`),
4. denoise with one ``torch.Generator`` per image, seeded ``image_seed(spec.seed, i)``, so image ``i`` of a
   job is the same picture in any batch position and on every run; the family names the call's embeddings
   and guidance arguments,
5. decode, with ``--tile`` (:mod:`.seamless`) around the whole run.

A step callback (:class:`StepCallback`) runs after every denoising step: it raises :class:`JobCancelled`
when ``should_cancel()`` says so, ends the run early for ``--stop``, and reports progress with an optional
TAESD preview of the four images (none when the preset names no TAESD; a preview that fails to load or
decode is logged and skipped, never failing the job).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from domain.catalog import ModelPreset
from domain.loras import LoraPreset
from domain.spec import JobSpec, image_seed
from inference.errors import JobCancelled
from inference.families import Family
from inference.grid import compose_grid
from inference.pipelines.cache import PipelineCache
from inference.pipelines.conditioning import Conditioning, encode_conditioning
from inference.pipelines.lora import prepare_loras
from inference.pipelines.seamless import seamless
from inference.pipelines.timing import GpuTimer
from inference.schedulers import make_scheduler

__all__ = [
    "PREVIEW_SIDE",
    "OnStep",
    "RenderResult",
    "ShouldCancel",
    "StepCallback",
    "WantPreview",
    "check_spec",
    "img2img_steps",
    "render_blank",
    "render_grid",
    "render_inpaint",
    "render_variations",
    "run_pipeline",
]

log = logging.getLogger(__name__)

#: ``on_step(step, total, preview)``: ``step`` denoising steps of ``total`` are done; ``preview`` is a
#: small grid of the current estimate when one was asked for, else ``None``.
OnStep = Callable[[int, int, Image.Image | None], None]
#: ``want_preview(step)``: decode a preview after this step? (previews cost a TAESD decode each)
WantPreview = Callable[[int], bool]
#: ``should_cancel()``: checked after every step; true stops the job with :class:`JobCancelled`.
ShouldCancel = Callable[[], bool]

#: Longest side of a preview grid, in pixels.
PREVIEW_SIDE = 512


@dataclass(frozen=True, slots=True)
class RenderResult:
    """The images of one job, in grid order, with the seed of each and the GPU time spent."""

    images: list[Image.Image]
    seeds: list[int]
    gpu_ms: int
    #: Denoising steps that ran (fewer than ``spec.steps`` with ``--stop`` or for img2img).
    steps_run: int


def check_spec(spec: JobSpec, pixel_multiple: int = 8) -> None:
    """Raise :class:`ValueError` naming the field when ``spec`` cannot be rendered as it is (sides must be
    multiples of the family's ``pixel_multiple``)."""
    step = pixel_multiple
    if spec.width <= 0 or spec.height <= 0 or spec.width % step or spec.height % step:
        raise ValueError(
            f"width and height must be positive multiples of {step}, got {spec.width}x{spec.height}"
        )
    if spec.steps < 1:
        raise ValueError(f"steps must be at least 1, got {spec.steps}")
    if spec.images < 1:
        raise ValueError(f"images must be at least 1, got {spec.images}")
    if not 1 <= spec.stop <= 100:
        raise ValueError(f"stop must be between 1 and 100, got {spec.stop}")
    if spec.chaos < 0:
        raise ValueError(f"chaos must not be negative, got {spec.chaos}")


def render_grid(
    cache: PipelineCache,
    preset: ModelPreset,
    spec: JobSpec,
    *,
    loras: Sequence[tuple[LoraPreset, float]] = (),
    on_step: OnStep | None = None,
    want_preview: WantPreview | None = None,
    should_cancel: ShouldCancel | None = None,
) -> RenderResult:
    """Text to image: ``spec.images`` pictures of ``spec.width`` x ``spec.height`` in one batch.

    Parameters
    ----------
    cache:
        Loads ``preset``'s pipeline on first use.
    preset:
        The model; its scheduler is used when ``spec.sampler`` is ``None``.
    spec:
        Prompt, size, seed, steps, guidance and the ``--tile``/``--stop``/``--chaos`` options.
    loras:
        The LoRAs to draw with and their weights (:func:`domain.draft.job_models`); none turns every
        adapter off, so nothing of an earlier job's LoRAs remains.
    on_step, want_preview, should_cancel:
        See :class:`StepCallback`.

    Raises
    ------
    JobCancelled
        ``should_cancel()`` returned true; no images.
    ValueError
        The spec cannot be rendered (:func:`check_spec`).
    """
    # 1. Check inputs
    family = cache.family(preset)
    check_spec(spec, family.capabilities.pixel_multiple)
    if should_cancel is not None and should_cancel():
        raise JobCancelled(0)

    # 2-3. A fresh scheduler for this job's sampler; the prompt, encoded
    pipe = cache.text_to_image(preset)
    size = (spec.width, spec.height)
    seeds, conditioning, callback = _prepare(
        cache, pipe, preset, spec, size, loras, on_step, want_preview, should_cancel
    )

    # 4-5. Denoise and decode
    images, gpu_ms = run_pipeline(
        cache,
        family,
        pipe,
        callback,
        tile=spec.tile,
        width=spec.width,
        height=spec.height,
        num_inference_steps=spec.steps,
        generator=_generators(seeds),
        **conditioning.as_kwargs(spec),
    )
    return RenderResult(images=images, seeds=seeds, gpu_ms=gpu_ms, steps_run=callback.steps_run)


def render_blank(spec: JobSpec) -> RenderResult:
    """What the ``noop`` renderer draws (``inference.context.RENDERERS``): ``spec.images`` grey images of the
    spec's size with the job's seeds, no pipeline, no steps, 0 ms. For benchmarks and tests of the queue and
    database path only."""
    check_spec(spec)
    images = [Image.new("RGB", (spec.width, spec.height), (128, 128, 128)) for _ in range(spec.images)]
    return RenderResult(images=images, seeds=[image_seed(spec.seed, i) for i in range(spec.images)], gpu_ms=0,
                        steps_run=0)


def render_variations(
    cache: PipelineCache,
    preset: ModelPreset,
    spec: JobSpec,
    source: Image.Image,
    strength: float,
    *,
    loras: Sequence[tuple[LoraPreset, float]] = (),
    on_step: OnStep | None = None,
    want_preview: WantPreview | None = None,
    should_cancel: ShouldCancel | None = None,
) -> RenderResult:
    """Image to image: ``spec.images`` variations of ``source`` (seeds from ``spec.seed``), at its size.

    ``strength`` (0 < strength <= 1) is how far from ``source`` the variations may go: the share of the
    ``spec.steps`` schedule that is re-run (so ``int(strength * spec.steps)`` steps run, at least one).
    Sides of ``source`` that are not multiples of the family's pixel step are cropped down to one first.

    Raises :class:`JobCancelled` and :class:`ValueError` as :func:`render_grid` does, and
    :class:`ValueError` for a family without image to image.
    """
    # 1. Check inputs
    family = cache.family(preset)
    check_spec(spec, family.capabilities.pixel_multiple)
    _check_strength(strength)
    if should_cancel is not None and should_cancel():
        raise JobCancelled(0)

    # 2-3. A fresh scheduler for this job's sampler; the prompt, encoded
    pipe = cache.image_to_image(preset)
    init = fit_to_multiple(source.convert("RGB"), family.capabilities.pixel_multiple)
    seeds, conditioning, callback = _prepare(
        cache, pipe, preset, spec, init.size, loras, on_step, want_preview, should_cancel
    )

    # 4-5. Denoise and decode
    images, gpu_ms = run_pipeline(
        cache,
        family,
        pipe,
        callback,
        tile=spec.tile,
        image=[init] * len(seeds),
        strength=strength,
        num_inference_steps=img2img_steps(spec.steps, strength),
        generator=_generators(seeds),
        **(dict(width=init.width, height=init.height) if family.image_to_image_takes_size else {}),
        **family.image_to_image_kwargs(init, len(seeds)),
        **conditioning.as_kwargs(spec),
    )
    return RenderResult(images=images, seeds=seeds, gpu_ms=gpu_ms, steps_run=callback.steps_run)


def render_inpaint(
    cache: PipelineCache,
    preset: ModelPreset,
    spec: JobSpec,
    image: Image.Image,
    mask: Image.Image,
    *,
    strength: float = 1.0,
    loras: Sequence[tuple[LoraPreset, float]] = (),
    on_step: OnStep | None = None,
    want_preview: WantPreview | None = None,
    should_cancel: ShouldCancel | None = None,
) -> RenderResult:
    """Inpainting: ``spec.images`` versions of ``image`` with the white part of ``mask`` redrawn from the prompt.

    ``image`` and ``mask`` (same size; white = redraw, black = keep) are cropped to multiples of the family's
    pixel step. ``strength`` 1 redraws the masked part from noise; lower keeps more of what was there. The
    pipelines blend the kept part back into the latents, but the VAE round trip still changes its pixels a
    little: a caller that must keep them exactly pastes them back. Raises as :func:`render_variations` does.
    """
    # 1. Check inputs
    family = cache.family(preset)
    check_spec(spec, family.capabilities.pixel_multiple)
    _check_strength(strength)
    if image.size != mask.size:
        raise ValueError(f"the mask is {mask.width}x{mask.height}, the image {image.width}x{image.height}")
    if should_cancel is not None and should_cancel():
        raise JobCancelled(0)

    # 2-3. A fresh scheduler for this job's sampler; the prompt, encoded
    pipe = cache.inpaint(preset)
    init = fit_to_multiple(image.convert("RGB"), family.capabilities.pixel_multiple)
    cover = fit_to_multiple(mask.convert("L"), family.capabilities.pixel_multiple)
    seeds, conditioning, callback = _prepare(
        cache, pipe, preset, spec, init.size, loras, on_step, want_preview, should_cancel
    )

    # 4-5. Denoise and decode
    images, gpu_ms = run_pipeline(
        cache,
        family,
        pipe,
        callback,
        tile=spec.tile,
        image=[init] * len(seeds),
        mask_image=[cover] * len(seeds),
        width=init.width,
        height=init.height,
        strength=strength,
        num_inference_steps=img2img_steps(spec.steps, strength),
        generator=_generators(seeds),
        **conditioning.as_kwargs(spec),
    )
    return RenderResult(images=images, seeds=seeds, gpu_ms=gpu_ms, steps_run=callback.steps_run)


def _check_strength(strength: float) -> None:
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")


def fit_to_multiple(image: Image.Image, multiple: int) -> Image.Image:
    """``image`` cropped (top left kept) so both sides are multiples of ``multiple``; as it is when they are."""
    width, height = image.width - image.width % multiple, image.height - image.height % multiple
    if (width, height) == image.size:
        return image
    if width == 0 or height == 0:
        raise ValueError(f"the image ({image.width}x{image.height}) is smaller than {multiple} pixels a side")
    return image.crop((0, 0, width, height))


def _prepare(
    cache: PipelineCache,
    pipe: Any,
    preset: ModelPreset,
    spec: JobSpec,
    size: tuple[int, int],
    loras: Sequence[tuple[LoraPreset, float]],
    on_step: OnStep | None,
    want_preview: WantPreview | None,
    should_cancel: ShouldCancel | None,
) -> tuple[list[int], Conditioning, StepCallback]:
    """What every kind of render needs before denoising: the job's LoRAs (and their trigger words), a fresh
    scheduler on ``pipe`` for the job's sampler, the per-image seeds, the encoded prompt, and the step
    callback (images of ``size``)."""
    family = cache.family(preset)
    spec = prepare_loras(pipe, preset, spec, loras)
    pipe.scheduler = make_scheduler(
        spec.sampler or preset.scheduler, cache.scheduler_config(preset), family.schedulers
    )
    seeds = [image_seed(spec.seed, i) for i in range(spec.images)]
    conditioning = encode_conditioning(pipe, family, spec, seeds)
    callback = StepCallback(
        family=family,
        size=size,
        stop=spec.stop,
        on_step=on_step,
        want_preview=want_preview,
        should_cancel=should_cancel,
        preview_decoder=_preview_decoder(cache, preset) if want_preview is not None else None,
    )
    return seeds, conditioning, callback


def _preview_decoder(cache: PipelineCache, preset: ModelPreset) -> Any | None:
    """``preset``'s TAESD, or ``None`` when it has none or it cannot be loaded (previews are cosmetic)."""
    try:
        return cache.preview_decoder(preset)
    except Exception:
        log.warning("model %s: the preview decoder %r could not be loaded; no previews", preset.name,
                    preset.preview, exc_info=True)
        return None


def img2img_steps(steps: int, strength: float) -> int:
    """The ``num_inference_steps`` to give an img2img pipeline so that at least one step runs: it runs
    ``int(steps * strength)`` of them, and with none it returns an empty batch."""
    return max(steps, math.ceil(1 / strength))


def run_pipeline(
    cache: PipelineCache, family: Family, pipe: Any, callback: StepCallback, *, tile: bool = False, **call: Any
) -> tuple[list[Image.Image], int]:
    """Call ``pipe(**call)`` with ``callback`` after each step, seamless when ``tile`` (and the family tiles);
    returns the PIL images and the GPU milliseconds."""
    tile = tile and family.capabilities.tile
    modules = (family.denoiser(pipe), pipe.vae, callback.preview_decoder)
    with seamless(tile, *modules), GpuTimer(cache.device) as timer:
        output = pipe(
            **call,
            output_type="pil",
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
        )
    return list(output.images), timer.ms


class StepCallback:
    """``callback_on_step_end`` of the diffusers pipelines: cancel, ``--stop``, progress and previews.

    Parameters
    ----------
    family, size:
        The model's family and the images' ``(width, height)``: previews unpack the latents with them.
    stop:
        Percent of the denoising steps to run (``--stop``, 100 = all). The run ends after that share and
        decodes the model's current estimate of the clean image (``scheduler.denoised``, see
        :mod:`inference.schedulers`): softer and less detailed the earlier it stops, never noisy.
    on_step:
        Called after every step with ``(step, total, preview)``; ``total`` counts the steps that will run.
    want_preview:
        Asked after every step whether to decode a preview for ``on_step``; ``None``: never.
    should_cancel:
        Checked after every step; when it returns true, :class:`JobCancelled` is raised at once from inside
        the loop, so not even the final VAE decode runs (``pipe._interrupt`` alone would still decode).
    preview_decoder:
        TAESD (``AutoencoderTiny``) for previews; without one, ``on_step`` always gets ``None``. A decode
        that raises is logged, and the run goes on without previews.
    """

    def __init__(
        self,
        *,
        family: Family,
        size: tuple[int, int],
        stop: int = 100,
        on_step: OnStep | None = None,
        want_preview: WantPreview | None = None,
        should_cancel: ShouldCancel | None = None,
        preview_decoder: Any | None = None,
    ) -> None:
        self.family = family
        self.size = size
        self.stop = stop
        self.on_step = on_step
        self.want_preview = want_preview
        self.should_cancel = should_cancel
        self.preview_decoder = preview_decoder
        self.previews_failed = False
        self.steps_run = 0

    def steps_to_run(self, scheduled: int) -> int:
        """How many of ``scheduled`` steps run under ``--stop`` (at least one)."""
        return max(1, math.ceil(scheduled * self.stop / 100))

    def __call__(self, pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        self.steps_run = i + 1
        scheduled = pipe.num_timesteps
        total = self.steps_to_run(scheduled)
        outputs: dict[str, Any] = {}

        if self.should_cancel is not None and self.should_cancel():
            pipe._interrupt = True  # diffusers' own stop flag; raising also skips the final decode
            raise JobCancelled(self.steps_run)

        if self.steps_run == total < scheduled:
            # --stop: skip the remaining steps and let the pipeline decode the clean estimate.
            outputs["latents"] = self._estimate(pipe, tensors["latents"])
            pipe._interrupt = True

        if self.on_step is not None:
            preview = None
            wanted = self.want_preview is not None and self.want_preview(self.steps_run)
            if wanted and self.preview_decoder is not None and not self.previews_failed:
                try:
                    preview = self._preview(pipe, self._estimate(pipe, tensors["latents"]))
                except Exception:  # a preview is cosmetic: never fail the job for one
                    log.warning("preview decode failed; going on without previews", exc_info=True)
                    self.previews_failed = True
            self.on_step(self.steps_run, total, preview)
        return outputs

    @staticmethod
    def _estimate(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        denoised = getattr(pipe.scheduler, "denoised", None)
        return latents if denoised is None else denoised.to(latents.dtype)

    @torch.no_grad()
    def _preview(self, pipe: Any, latents: torch.Tensor) -> Image.Image:
        """Decode ``latents`` with TAESD into one grid no longer than :data:`PREVIEW_SIDE` a side."""
        decoder = self.preview_decoder
        assert decoder is not None
        # TAESD decodes the denoiser's (scaled) latents directly, into [-1, 1] like the VAE.
        latents = self.family.preview_latents(pipe, latents, *self.size)
        decoded = decoder.decode(latents.to(decoder.device, decoder.dtype)).sample
        images = pipe.image_processor.postprocess(decoded.float(), output_type="pil")
        grid = compose_grid(images)
        grid.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        return grid


def _generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per image: the initial noise of a seed is the same on every device."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
