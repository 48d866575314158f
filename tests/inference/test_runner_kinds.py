"""The runner's upscale and vary jobs: the source comes from the image store, the results go back to it."""

from __future__ import annotations

import dataclasses
import io
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from domain.catalog import Catalog, ModelPreset
from domain.spec import JobKind, JobSpec, JobState
from inference.context import IMAGE_THREADS
from inference.pipelines import PipelineCache, RenderResult
from inference.runner import _render, _user_error
from inference.storage import ImageNotFoundError, MemoryImageStore

SOURCE_KEY = "jobs/1/1.png"


class _Progress:
    def __call__(self, step: int, total: int, preview: Image.Image | None) -> None:
        pass

    def want_preview(self, step: int) -> bool:
        return False

    def should_cancel(self) -> bool:
        return False


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def context(cache: PipelineCache, preset: ModelPreset, source: Image.Image) -> Any:
    store = MemoryImageStore()
    store.put(SOURCE_KEY, _png(source), "image/png")
    catalog = Catalog(models={preset.name: dataclasses.replace(preset, draft=None)}, default=preset.name)
    threads = ThreadPoolExecutor(max_workers=IMAGE_THREADS)
    return SimpleNamespace(catalog=catalog, store=store, pipeline_cache=lambda: cache, renderer="diffusers",
                           store_threads=lambda: threads)


def run(ctx: Any, kind: JobKind, spec: JobSpec) -> tuple[JobState, dict[str, Any]]:
    return _render(ctx, 9, kind, spec, _Progress())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tile(baseline: RenderResult) -> Image.Image:
    return baseline.images[1]


def upscale_spec(spec: JobSpec, mode: str = "subtle") -> JobSpec:
    return spec.replace(init_image=SOURCE_KEY, seed=1235, images=1, upscale_factor=2, upscale_mode=mode)


def test_an_upscale_job_stores_one_image_twice_the_size(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, tile: Image.Image
) -> None:
    ctx = context(cache, preset, tile)
    state, fields = run(ctx, JobKind.UPSCALE, upscale_spec(spec))
    assert state is JobState.SUCCEEDED
    assert fields["result_key"] == "jobs/9/0.png" and fields["upscale_method"] == "esrgan"
    assert fields["images"] == [{"index": 0, "seed": 1235, "storage_key": "jobs/9/0.png", "width": 128, "height": 128}]
    stored = Image.open(io.BytesIO(ctx.store.get("jobs/9/0.png")))
    assert stored.size == (2 * tile.width, 2 * tile.height)


def test_without_upscaler_weights_the_runner_falls_back_to_lanczos_faithfully(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, tile: Image.Image
) -> None:
    ctx = context(cache, dataclasses.replace(preset, upscaler=""), tile)
    state, fields = run(ctx, JobKind.UPSCALE, upscale_spec(spec))
    assert (state, fields["upscale_method"], fields["gpu_ms"]) == (JobState.SUCCEEDED, "lanczos", 0)
    upscaled = Image.open(io.BytesIO(ctx.store.get(fields["result_key"]))).convert("RGB")
    back = np.asarray(upscaled.resize(tile.size, Image.Resampling.LANCZOS), dtype=np.int16)
    difference = np.abs(back - np.asarray(tile.convert("RGB"), dtype=np.int16))
    assert difference.mean() < 4 and difference.max() <= 32  # noise tiles: the hardest round trip


def test_a_creative_upscale_job_redraws_with_the_model_and_reports_its_steps(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, tile: Image.Image
) -> None:
    steps: list[tuple[int, int]] = []

    class Recording(_Progress):
        def __call__(self, step: int, total: int, preview: Image.Image | None) -> None:
            steps.append((step, total))

    ctx = context(cache, preset, tile)
    state, fields = _render(ctx, 9, JobKind.UPSCALE, upscale_spec(spec, "creative"), Recording())  # type: ignore[arg-type]
    assert (state, fields["upscale_method"]) == (JobState.SUCCEEDED, "creative")
    assert fields["images"][0]["width"] == 128
    total = steps[-1][1]
    assert steps == [(n, total) for n in range(1, total + 1)]  # the message can show a percentage


def test_a_vary_job_draws_four_variations_at_the_spec_size(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, tile: Image.Image
) -> None:
    large = tile.resize((128, 128))  # an upscaled source is drawn from at the model's size
    ctx = context(cache, preset, large)
    state, fields = run(ctx, JobKind.VARY, spec.replace(init_image=SOURCE_KEY, strength=0.75, seed=77))
    assert state is JobState.SUCCEEDED
    assert [(i["index"], i["seed"], i["width"]) for i in fields["images"]] == [(n, 77 + n, 64) for n in range(4)]
    assert Image.open(io.BytesIO(ctx.store.get(fields["result_key"]))).size == (128, 128)  # the 2x2 grid


def test_a_source_no_longer_stored_fails_the_job_with_a_plain_reason(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, tile: Image.Image
) -> None:
    ctx = context(cache, preset, tile)
    with pytest.raises(ImageNotFoundError) as error:
        run(ctx, JobKind.UPSCALE, upscale_spec(spec).replace(init_image="jobs/404/0.png"))
    assert "no longer stored" in _user_error(error.value)
