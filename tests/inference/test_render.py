"""render_grid / render_variations on the tiny SD 1.5 (and SDXL) models, on the CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from domain.catalog import Catalog, ModelPreset
from domain.spec import JobSpec, image_seed
from inference.errors import JobCancelled
from inference.grid import compose_grid
from inference.pipelines import PipelineCache, RenderResult, render_grid, render_variations
from inference.pipelines.render import PREVIEW_SIDE


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def same_images(a: RenderResult, b: RenderResult) -> bool:
    return all(np.array_equal(pixels(x), pixels(y)) for x, y in zip(a.images, b.images, strict=True))


def test_grid_has_four_images_of_the_spec_size(baseline: RenderResult, spec: JobSpec) -> None:
    assert len(baseline.images) == 4
    assert all(image.size == (spec.width, spec.height) for image in baseline.images)
    assert baseline.seeds == [image_seed(spec.seed, i) for i in range(4)]
    assert baseline.steps_run == spec.steps
    assert baseline.gpu_ms >= 0
    assert compose_grid(baseline.images).size == (2 * spec.width, 2 * spec.height)


def test_same_seed_gives_identical_pixels(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    assert same_images(render_grid(cache, preset, spec), baseline)


def test_different_seeds_differ(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    other = render_grid(cache, preset, spec.replace(seed=spec.seed + 100))
    assert not np.array_equal(pixels(other.images[0]), pixels(baseline.images[0]))
    # and within one grid, the four images differ from each other
    assert not np.array_equal(pixels(baseline.images[0]), pixels(baseline.images[1]))


def test_on_step_reports_each_step_and_previews_on_request(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    calls: list[tuple[int, int, Image.Image | None]] = []
    result = render_grid(
        cache,
        preset,
        spec,
        on_step=lambda step, total, preview: calls.append((step, total, preview)),
        want_preview=lambda step: step == 2,
    )
    assert [(step, total) for step, total, _ in calls] == [(s, spec.steps) for s in range(1, spec.steps + 1)]
    previews = {step: preview for step, _, preview in calls if preview is not None}
    assert list(previews) == [2]
    assert max(previews[2].size) <= PREVIEW_SIDE
    assert previews[2].width == previews[2].height  # a 2x2 grid of square images
    assert same_images(result, baseline)  # progress and previews do not change the picture


def test_a_preview_that_fails_is_skipped_and_the_job_goes_on(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BrokenDecoder:
        device, dtype = torch.device("cpu"), torch.float32

        def decode(self, latents: torch.Tensor) -> None:
            raise RuntimeError("out of memory")

    def missing_decoder(preset: ModelPreset) -> None:
        raise OSError("no TAESD at ./tiny-taesd")

    previews: list[Image.Image | None] = []
    monkeypatch.setattr(cache, "preview_decoder", lambda preset: BrokenDecoder())
    decoded_badly = render_grid(cache, preset, spec, on_step=lambda s, t, p: previews.append(p),
                                want_preview=lambda step: True)
    monkeypatch.setattr(cache, "preview_decoder", missing_decoder)
    not_loaded = render_grid(cache, preset, spec, on_step=lambda s, t, p: previews.append(p),
                             want_preview=lambda step: True)
    assert previews == [None] * (2 * spec.steps)  # progress still reported, without previews
    assert same_images(decoded_badly, baseline) and same_images(not_loaded, baseline)


def test_should_cancel_stops_the_run(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    steps: list[int] = []
    with pytest.raises(JobCancelled) as raised:
        render_grid(
            cache,
            preset,
            spec,
            on_step=lambda step, total, preview: steps.append(step),
            should_cancel=lambda: len(steps) >= 2,
        )
    assert raised.value.steps_run == 3  # checked after each step: cancelled right after the 3rd
    assert steps == [1, 2]
    # the shared pipeline is fine afterwards
    assert same_images(render_grid(cache, preset, spec), baseline)


def test_cancelled_before_start_loads_nothing(preset: ModelPreset, spec: JobSpec) -> None:
    fresh = PipelineCache(device="cpu")
    with pytest.raises(JobCancelled):
        render_grid(fresh, preset, spec, should_cancel=lambda: True)
    assert not fresh._text_to_image


def test_tile_changes_the_picture_and_restores_the_pipe(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    tiled = render_grid(cache, preset, spec.replace(tile=True))
    assert not same_images(tiled, baseline)
    pipe = cache.text_to_image(preset)
    convs = [m for m in [*pipe.unet.modules(), *pipe.vae.modules()] if isinstance(m, torch.nn.Conv2d)]
    assert {conv.padding_mode for conv in convs} == {"zeros"}
    assert same_images(render_grid(cache, preset, spec), baseline)


def test_stop_ends_early_with_a_clean_estimate(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    long = spec.replace(steps=8, stop=50)
    totals: list[int] = []
    stopped = render_grid(cache, preset, long, on_step=lambda step, total, preview: totals.append(total))
    assert stopped.steps_run == math.ceil(8 * 50 / 100)
    assert set(totals) == {4}
    assert len(stopped.images) == 4
    assert not same_images(stopped, render_grid(cache, preset, long.replace(stop=100)))


def test_weighted_prompts_change_the_picture(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    weighted = spec.replace(weighted_prompts=((spec.prompt, 2.0), ("a blue cat", -0.5)))
    assert not same_images(render_grid(cache, preset, weighted), baseline)


def test_single_weight_prompt_equals_the_plain_prompt(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    single = spec.replace(weighted_prompts=((spec.prompt, 1.0),))
    assert same_images(render_grid(cache, preset, single), baseline)


def test_chaos_spreads_the_images_deterministically(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    chaotic = render_grid(cache, preset, spec.replace(chaos=60))
    assert all(
        not np.array_equal(pixels(a), pixels(b)) for a, b in zip(chaotic.images, baseline.images, strict=True)
    )
    assert same_images(chaotic, render_grid(cache, preset, spec.replace(chaos=60)))


@pytest.mark.parametrize("sampler", ["euler", "euler_a", "dpmpp_2m", "ddim", "unipc"])
def test_every_sampler_renders(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, sampler: str
) -> None:
    quick = spec.replace(sampler=sampler, images=1, steps=3)
    first = render_grid(cache, preset, quick)
    assert first.images[0].size == (64, 64)
    assert same_images(first, render_grid(cache, preset, quick))  # euler_a's per-step noise is seeded too


def test_variations_have_the_source_size(cache: PipelineCache, preset: ModelPreset, spec: JobSpec) -> None:
    source = Image.new("RGB", (72, 56), (200, 120, 40))
    result = render_variations(cache, preset, spec.replace(seed=77), source, strength=0.5)
    assert [image.size for image in result.images] == [source.size] * 4
    assert result.seeds == [77, 78, 79, 80]
    assert result.steps_run == int(spec.steps * 0.5)
    assert not np.array_equal(pixels(result.images[0]), pixels(result.images[1]))


def test_invalid_spec_is_refused_before_loading(preset: ModelPreset, spec: JobSpec) -> None:
    fresh = PipelineCache(device="cpu")
    with pytest.raises(ValueError, match="multiples of 8"):
        render_grid(fresh, preset, spec.replace(width=100))
    with pytest.raises(ValueError, match="strength"):
        render_variations(fresh, preset, spec, Image.new("RGB", (64, 64)), strength=0)
    assert not fresh._text_to_image


def test_sdxl_renders_with_weights_and_chaos(cache: PipelineCache, catalog: Catalog, spec: JobSpec) -> None:
    xl = catalog.get("tiny-xl")
    weights = (("a fox", 1.0), ("snow", 0.5))
    xl_spec = spec.replace(model="tiny-xl", steps=2, weighted_prompts=weights, chaos=20)
    result = render_grid(cache, xl, xl_spec)
    assert [image.size for image in result.images] == [(64, 64)] * 4


def test_bfloat16_cache_keeps_its_dtype_through_img2img(preset: ModelPreset, spec: JobSpec) -> None:
    bf16 = PipelineCache(device="cpu", dtype=torch.bfloat16)
    previews: list[Image.Image | None] = []
    result = render_grid(
        bf16,
        preset,
        spec.replace(steps=2, stop=50),
        on_step=lambda s, t, p: previews.append(p),
        want_preview=lambda step: True,
    )
    assert result.steps_run == 1 and previews[0] is not None
    render_variations(bf16, preset, spec.replace(steps=2), result.images[0], strength=0.5)
    # from_pipe did not cast the shared modules to float32
    assert bf16.text_to_image(preset).unet.dtype == torch.bfloat16
