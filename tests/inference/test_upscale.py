"""upscale_image: ESRGAN (spandrel), the Lanczos fallback and the creative img2img upscale."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from domain.catalog import ModelPreset
from domain.spec import JobSpec
from inference.pipelines import PipelineCache, RenderResult, upscale_image


def test_subtle_upscale_runs_esrgan(
    cache: PipelineCache, preset: ModelPreset, baseline: RenderResult
) -> None:
    tile = baseline.images[0]
    result = upscale_image(cache, preset, tile, factor=2, mode="subtle")
    assert result.method == "esrgan"
    assert result.image.size == (2 * tile.width, 2 * tile.height)
    assert cache.upscaler(preset) is cache.upscaler(preset)  # loaded once


def test_esrgan_runs_twice_for_factors_above_its_scale(cache: PipelineCache, preset: ModelPreset) -> None:
    result = upscale_image(cache, preset, Image.new("RGB", (8, 8), "white"), factor=6)
    assert (result.method, result.image.size) == ("esrgan", (48, 48))


def test_lanczos_fallback_without_upscaler_weights(
    cache: PipelineCache, preset: ModelPreset, baseline: RenderResult
) -> None:
    tile = baseline.images[0]
    result = upscale_image(cache, dataclasses.replace(preset, upscaler=""), tile, factor=2)
    assert result.method == "lanczos"
    assert result.image.size == (2 * tile.width, 2 * tile.height)
    back = np.asarray(result.image.resize(tile.size, Image.Resampling.LANCZOS), dtype=np.int16)
    difference = np.abs(back - np.asarray(tile, dtype=np.int16))
    # the tiles are noise, the hardest case for a resampling round trip: a few levels on average
    assert difference.mean() < 4 and difference.max() <= 32


def test_creative_upscale_redraws_at_the_new_size(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, baseline: RenderResult
) -> None:
    tile = baseline.images[0]
    result = upscale_image(cache, preset, tile, factor=2, mode="creative", spec=spec.replace(strength=0.5))
    assert result.method == "creative"
    assert result.image.size == (2 * tile.width, 2 * tile.height)
    # 128 px is the tiny model's native size: no VAE tiling, and tiling is off again in any case
    assert not cache.image_to_image(preset).vae.use_tiling


def test_creative_upscale_reports_its_steps(cache: PipelineCache, preset: ModelPreset, spec: JobSpec) -> None:
    steps: list[tuple[int, int, Image.Image | None]] = []
    upscale_image(cache, preset, Image.new("RGB", (64, 64), "white"), mode="creative",
                  spec=spec.replace(steps=4, strength=0.5), on_step=lambda *call: steps.append(call))
    assert steps == [(1, 2, None), (2, 2, None)]  # int(4 * 0.5) steps run; no previews


def test_creative_upscale_of_a_large_image_tiles_the_vae_and_restores_it(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec
) -> None:
    large = Image.new("RGB", (96, 96), (30, 90, 150))
    result = upscale_image(cache, preset, large, factor=2, mode="creative", spec=spec.replace(steps=2))
    assert result.image.size == (192, 192)
    assert not cache.image_to_image(preset).vae.use_tiling


def test_bad_arguments(cache: PipelineCache, preset: ModelPreset) -> None:
    image = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="mode"):
        upscale_image(cache, preset, image, mode="huge")
    with pytest.raises(ValueError, match="spec"):
        upscale_image(cache, preset, image, mode="creative")
    with pytest.raises(ValueError, match="factor"):
        upscale_image(cache, preset, image, factor=0)
