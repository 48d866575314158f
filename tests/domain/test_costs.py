"""The cost model: estimates by pixels, steps and images; upscales and variations by their work; lanes."""

from __future__ import annotations

import pytest

from domain.costs import DEFAULT_COSTS, CostModel, charge_ms, estimate_ms, reserve_ms
from domain.spec import JobKind, JobSpec, Lane

MODEL = CostModel(ms_per_megapixel_step=100.0, overhead_ms=500.0, upscale_ms_per_megapixel=50.0)


def spec(**changes: object) -> JobSpec:
    values: dict[str, object] = dict(prompt="a fox", model="sd15", width=1000, height=1000, seed=1, steps=30,
                                     guidance_scale=7.0)
    values.update(changes)
    return JobSpec(**values)  # type: ignore[arg-type]


def test_an_imagine_costs_pixels_times_steps_times_images() -> None:
    # 1 megapixel x 30 steps x 4 images x 100 ms + 500 ms
    assert estimate_ms(spec(), JobKind.IMAGINE, MODEL) == 12_500
    assert estimate_ms(spec(), JobKind.REROLL, MODEL) == 12_500
    assert estimate_ms(spec(width=2000), JobKind.IMAGINE, MODEL) == 24_500
    assert estimate_ms(spec(steps=15), JobKind.IMAGINE, MODEL) == 6_500
    assert estimate_ms(spec(images=1), JobKind.IMAGINE, MODEL) == 3_500
    assert estimate_ms(spec(stop=50), JobKind.IMAGINE, MODEL) == 6_500  # --stop 50 runs half the steps


def test_a_variation_reruns_the_strength_share_of_the_steps() -> None:
    assert estimate_ms(spec(strength=0.5), JobKind.VARY, MODEL) == 500 + 100 * 4 * 15
    assert estimate_ms(spec(), JobKind.VARY, MODEL) == 500 + 100 * 4 * 18  # default strength 0.6


@pytest.mark.parametrize("kind", [JobKind.ZOOM, JobKind.PAN, JobKind.SQUARE, JobKind.REGION])
def test_a_canvas_job_costs_its_output_pixels_times_all_its_steps(kind: JobKind) -> None:
    canvas = spec(init_image="jobs/1/0.png", source_box=(250, 250, 500, 500))
    assert estimate_ms(canvas, kind, MODEL) == 12_500  # like a grid of that size: the whole image is denoised
    assert estimate_ms(canvas.replace(width=2000), kind, MODEL) == 24_500
    assert estimate_ms(canvas.replace(steps=15), kind, MODEL) == 6_500


def test_an_upscale_is_priced_by_its_output() -> None:
    out4 = 2048 * 2048 / 1e6
    assert estimate_ms(spec(width=512, height=512, upscale_factor=4, upscale_mode="subtle"), JobKind.UPSCALE,
                       MODEL) == pytest.approx(500 + 50 * out4, abs=1)
    tile = spec(width=512, height=512, upscale_factor=2, upscale_mode="subtle")
    out_mp = 1024 * 1024 / 1e6
    assert estimate_ms(tile, JobKind.UPSCALE, MODEL) == pytest.approx(500 + 50 * out_mp, abs=1)
    creative = tile.replace(upscale_mode="creative", strength=0.3)
    assert estimate_ms(creative, JobKind.UPSCALE, MODEL) == pytest.approx(500 + 50 * out_mp + 100 * out_mp * 9, abs=1)
    bigger = tile.replace(upscale_factor=4)
    assert estimate_ms(bigger, JobKind.UPSCALE, MODEL) > estimate_ms(tile, JobKind.UPSCALE, MODEL)


def test_the_default_model_is_in_the_right_range() -> None:
    sd15 = estimate_ms(spec(width=512, height=512), JobKind.IMAGINE, DEFAULT_COSTS["sd15"])
    sdxl = estimate_ms(spec(width=1024, height=1024), JobKind.IMAGINE, DEFAULT_COSTS["sdxl"])
    assert 3_000 < sd15 < 10_000 and 15_000 < sdxl < 40_000


def test_an_estimate_is_never_zero() -> None:
    free = CostModel(0, 0, 0)
    assert estimate_ms(spec(), JobKind.IMAGINE, free) == 1


def test_lanes_turbo_costs_twice_relax_nothing() -> None:
    assert [reserve_ms(lane, 1_000) for lane in (Lane.TURBO, Lane.FAST, Lane.RELAX)] == [2_000, 1_000, 0]
    assert [charge_ms(lane, 700) for lane in (Lane.TURBO, Lane.FAST, Lane.RELAX)] == [1_400, 700, 0]
    assert charge_ms(Lane.FAST, None) == 0 and charge_ms(Lane.FAST, -5) == 0
