"""Family capabilities: how a prompt is fitted to its model, and what the negative pass costs."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.capabilities import CAPABILITIES, HOUSE_NEGATIVE, negative_prompt_for, passes_per_step
from domain.catalog import parse_catalog
from domain.costs import DEFAULT_COSTS, estimate_ms
from domain.errors import CatalogError, PromptError
from domain.plans import Plan, PlanBook
from domain.prompt import ParsedPrompt, parse_prompt
from domain.spec import JobKind

CATALOG = parse_catalog(
    {
        "default": "sd",
        "models": {
            "sd": {"source": "x/sd", "family": "sd15"},
            "dev": {"source": "x/dev", "family": "flux", "guidance": 3.5},
            "turbo": {"source": "x/turbo", "family": "zimage", "guidance": 0.0, "steps": 8},
            "klein": {"source": "x/klein", "family": "flux2", "guidance": 1.0, "steps": 4},
            "qwen": {"source": "x/qwen", "family": "qwenimage"},
        },
    },
    Path("."),
)


def parse(text: str) -> ParsedPrompt:
    return parse_prompt(text, CATALOG, random_seed=lambda: 7)


def test_every_family_has_a_cost_model_and_sizes_fit_its_pixel_step() -> None:
    assert set(DEFAULT_COSTS) == set(CAPABILITIES)
    for name in CATALOG.names:
        job = parse(f"a fox --ar 16:9 --model {name}").specs[0]
        step = CATALOG.get(name).capabilities.pixel_multiple
        assert job.width % step == 0 and job.height % step == 0 and job.width > job.height


def test_family_defaults_come_from_the_capabilities() -> None:
    dev, sd = CATALOG.get("dev"), CATALOG.get("sd")
    assert (dev.width, dev.scheduler, dev.guidance) == (1024, "euler", 3.5)
    assert (sd.width, sd.scheduler) == (512, "dpmpp_2m_karras")
    assert CATALOG.get("qwen").width == 1328


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"source": "x", "family": "flux", "scheduler": "ddim"}, "scheduler 'ddim' is not one of euler"),
        ({"source": "x", "family": "flux", "width": 1000}, "multiples of 16"),
        ({"source": "x", "family": "flux", "guidance": 25}, "outside 0 to 10"),
        ({"source": "x", "family": "flux9"}, "family 'flux9' is not one of sd15, sdxl, sd3, flux"),
    ],
)
def test_the_models_file_is_checked_against_the_family(table: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog({"models": {"m": table}}, Path("."))


def test_a_sampler_the_family_lacks_is_refused_with_what_to_use() -> None:
    with pytest.raises(PromptError) as error:
        parse("a fox --model dev --sampler dpmpp_2m")
    assert str(error.value) == (
        "`--sampler dpmpp_2m` is not available on `dev` (FLUX.1); use `--sampler euler`, or leave it out."
    )
    assert parse("a fox --model sd --sampler ddim").specs[0].sampler == "ddim"


def test_guidance_out_of_the_familys_range_is_refused() -> None:
    with pytest.raises(PromptError, match="takes 0 to 10; choose a `--cfg` in that range"):
        parse("a fox --model dev --cfg 12")


def test_a_turbo_model_drops_no_and_stylize_with_notes() -> None:
    parsed = parse("a fox --model turbo --no snow --s 500")
    spec = parsed.specs[0]
    assert spec.negative_prompt == "" and spec.stylize is None and spec.guidance_scale == 0
    assert "`turbo` (Z-Image) runs at guidance 0, without a negative pass, so `--no` was ignored." in parsed.notes
    assert any("`--s` has no effect" in note for note in parsed.notes)
    assert "--no" not in parsed.canonical and "--s " not in parsed.canonical
    assert parse(parsed.canonical).specs[0] == spec.replace(notes=parse(parsed.canonical).specs[0].notes)


def test_tile_is_dropped_on_a_dit_and_kept_on_sd() -> None:
    parsed = parse("a fox --model dev --tile")
    assert not parsed.specs[0].tile and any("`--tile` is not available on `dev`" in n for n in parsed.notes)
    assert parse("a fox --tile").specs[0].tile


def test_a_long_prompt_gets_a_note_for_a_clip_model_only() -> None:
    words = " ".join(["fox"] * 70)
    assert any("reads about 77 tokens" in note for note in parse(words).notes)
    assert not any("tokens" in note for note in parse(f"{words} --model dev").notes)


def test_the_negative_pass_by_family() -> None:
    sd = parse("a fox --no snow").specs[0]
    assert negative_prompt_for(CATALOG.get("sd").capabilities, sd) == f"snow, {HOUSE_NEGATIVE}"
    assert negative_prompt_for(CATALOG.get("sd").capabilities, sd.replace(raw=True)) == "snow"
    assert negative_prompt_for(CATALOG.get("sd").capabilities, sd.replace(negative_prompt="")) == HOUSE_NEGATIVE
    dev_caps = CATALOG.get("dev").capabilities
    plain, negative = parse("a fox --model dev").specs[0], parse("a fox --model dev --no snow").specs[0]
    assert negative_prompt_for(dev_caps, plain) is None  # the house style never turns on FLUX's true CFG
    assert negative_prompt_for(dev_caps, negative) == "snow"
    assert (passes_per_step(dev_caps, plain), passes_per_step(dev_caps, negative)) == (1, 2)
    klein = parse("a fox --model klein").specs[0]
    assert negative_prompt_for(CATALOG.get("klein").capabilities, klein) is None


def test_flux_with_no_costs_twice_and_a_turbo_step_half() -> None:
    book = PlanBook(plans={"p": Plan(name="p", display_name="P", rank=0, fast_ms=10**9)}, default="p")
    dev = CATALOG.get("dev")
    plain = book.estimate_ms(parse("a fox --model dev").specs[0], JobKind.IMAGINE, dev)
    negative = book.estimate_ms(parse("a fox --model dev --no snow").specs[0], JobKind.IMAGINE, dev)
    overhead = DEFAULT_COSTS["flux"].overhead_ms
    assert negative - overhead == pytest.approx(2 * (plain - overhead), abs=2)
    turbo = parse("a fox --model turbo").specs[0]
    model = DEFAULT_COSTS["zimage"]
    full = estimate_ms(turbo, JobKind.IMAGINE, model)
    assert estimate_ms(turbo, JobKind.IMAGINE, model, CATALOG.get("turbo").capabilities) - model.overhead_ms == (
        pytest.approx((full - model.overhead_ms) / 2, abs=2)
    )
