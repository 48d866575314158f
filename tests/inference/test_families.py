"""Every family through the family layer, on its tiny random-weight model: grids, multi-prompt weights,
--chaos, --no, variations, inpainting and previews reach the pipeline (the pixels change, or stay)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from domain.catalog import Catalog, ModelPreset
from domain.spec import JobSpec
from inference.families import FAMILIES
from inference.pipelines import PipelineCache, RenderResult, render_grid, render_inpaint, render_variations

#: The tiny model of each family (``inference.tiny``).
MODELS = {
    "sd15": "tiny", "sdxl": "tiny-xl", "sd3": "tiny-sd3", "flux": "tiny-flux", "flux2": "tiny-flux2",
    "zimage": "tiny-zimage", "qwenimage": "tiny-qwenimage",
}
#: The DiT families (flow matching): chaos must reach their conditioning too.
DITS = [family for family in MODELS if family not in ("sd15", "sdxl")]


def pixels(result: RenderResult) -> np.ndarray:
    return np.stack([np.asarray(image.convert("RGB"), dtype=np.int16) for image in result.images])


def same(a: RenderResult, b: RenderResult) -> bool:
    return np.array_equal(pixels(a), pixels(b))


def model(catalog: Catalog, family: str) -> ModelPreset:
    preset = catalog.get(MODELS[family])
    assert preset.family == family
    return preset


def job(preset: ModelPreset, **changes: object) -> JobSpec:
    """4 images of 64 px in 2 steps, at the model's own guidance and sampler."""
    base = JobSpec(prompt="a red fox", model=preset.name, width=64, height=64, seed=21, steps=2,
                   guidance_scale=preset.guidance, sampler=preset.scheduler)
    return base.replace(**changes)


def test_every_family_has_a_tiny_model() -> None:
    assert set(MODELS) == set(FAMILIES)


@pytest.fixture(scope="module")
def grids(cache: PipelineCache, catalog: Catalog) -> dict[str, RenderResult]:
    """One plain grid per family, rendered once."""
    return {family: render_grid(cache, model(catalog, family), job(model(catalog, family))) for family in MODELS}


@pytest.mark.parametrize("family", list(MODELS))
def test_a_grid_is_four_seeded_images(
    cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult], family: str
) -> None:
    preset, grid = model(catalog, family), grids[family]
    assert [image.size for image in grid.images] == [(64, 64)] * 4 and grid.steps_run == 2
    assert len({image.tobytes() for image in grid.images}) == 4
    assert same(render_grid(cache, preset, job(preset)), grid)


@pytest.mark.parametrize("family", list(MODELS))
def test_multi_prompt_weights_reach_the_conditioning(
    cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult], family: str
) -> None:
    preset = model(catalog, family)
    single = render_grid(cache, preset, job(preset, weighted_prompts=(("a red fox", 1.0),)))
    assert same(single, grids[family])  # `a::1` is `a`
    blended = job(preset, prompt="a red fox, a castle", weighted_prompts=(("a red fox", 1.0), ("a castle", 1.0)))
    assert not same(render_grid(cache, preset, blended), grids[family])  # `a::1 b::1` is not `a`


@pytest.mark.parametrize("family", DITS)
def test_chaos_spreads_a_dit_grid(
    cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult], family: str
) -> None:
    preset = model(catalog, family)
    chaotic = render_grid(cache, preset, job(preset, chaos=80))
    for calm, moved in zip(pixels(grids[family]), pixels(chaotic), strict=True):
        assert not np.array_equal(calm, moved)
    assert same(chaotic, render_grid(cache, preset, job(preset, chaos=80)))


def test_no_on_flux_runs_true_cfg(cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult]) -> None:
    preset = model(catalog, "flux")
    negative = render_grid(cache, preset, job(preset, negative_prompt="snow"))
    assert not same(negative, grids["flux"])
    # the house negative alone never turns true CFG on (it would double the cost of every FLUX job), so
    # --style raw changes nothing there; on SD, where the negative pass runs anyway, it drops the house style
    assert same(render_grid(cache, preset, job(preset, raw=True)), grids["flux"])
    sd = model(catalog, "sd15")
    assert not same(render_grid(cache, sd, job(sd, raw=True)), grids["sd15"])


@pytest.mark.parametrize("family", ["sd3", "qwenimage"])
def test_guidance_and_no_reach_a_cfg_dit(
    cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult], family: str
) -> None:
    preset = model(catalog, family)  # SD 3's CFG, Qwen-Image's true CFG
    assert not same(render_grid(cache, preset, job(preset, guidance_scale=preset.guidance + 3)), grids[family])
    assert not same(render_grid(cache, preset, job(preset, negative_prompt="snow")), grids[family])
    assert same(render_grid(cache, preset, job(preset, guidance_scale=1.0)),
                render_grid(cache, preset, job(preset, guidance_scale=1.0, negative_prompt="snow")))


@pytest.mark.parametrize("family", list(MODELS))
def test_variations_start_from_the_image(
    cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult], family: str
) -> None:
    preset, source = model(catalog, family), grids[family].images[0]
    spec = job(preset, steps=4)
    first = render_variations(cache, preset, spec, source, 0.5)
    assert [image.size for image in first.images] == [(64, 64)] * 4 and first.steps_run == 2
    assert same(first, render_variations(cache, preset, spec, source, 0.5))
    other = source.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert not same(first, render_variations(cache, preset, spec, other, 0.5))


@pytest.mark.parametrize("family", list(MODELS))
def test_inpainting_runs_and_follows_the_mask(
    cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult], family: str
) -> None:
    preset, source = model(catalog, family), grids[family].images[0]
    left = Image.new("L", (64, 64), 0)
    left.paste(255, (0, 0, 32, 64))
    spec = job(preset)
    painted = render_inpaint(cache, preset, spec, source, left)
    assert [image.size for image in painted.images] == [(64, 64)] * 4
    assert same(painted, render_inpaint(cache, preset, spec, source, left))
    keep_all = render_inpaint(cache, preset, spec, source, Image.new("L", (64, 64), 0))
    assert not same(painted, keep_all)
    with pytest.raises(ValueError, match="the mask is 32x32"):
        render_inpaint(cache, preset, spec, source, Image.new("L", (32, 32), 0))


@pytest.mark.parametrize("family", ["flux", "sd3", "zimage"])
def test_previews_of_a_dit_decode_with_its_taesd(cache: PipelineCache, catalog: Catalog, family: str) -> None:
    preset = model(catalog, family)
    previews: list[Image.Image | None] = []
    render_grid(cache, preset, job(preset, steps=3, stop=70), on_step=lambda s, t, p: previews.append(p),
                want_preview=lambda step: True)
    assert len(previews) == 3 and all(p is not None and p.size == (128, 128) for p in previews)


def test_tile_on_a_dit_changes_nothing(cache: PipelineCache, catalog: Catalog, grids: dict[str, RenderResult]) -> None:
    preset = model(catalog, "flux")  # the prompt parser drops --tile here with a note; the render ignores it
    assert same(render_grid(cache, preset, job(preset, tile=True)), grids["flux"])


def test_a_dit_refuses_sizes_off_its_pixel_step(cache: PipelineCache, catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        render_grid(cache, model(catalog, "flux"), job(model(catalog, "flux"), width=72))
