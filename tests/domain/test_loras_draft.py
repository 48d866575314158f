"""LoRAs, draft mode and memory settings in the models file and the prompt language (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.actions import NOT_A_DRAFT, Action, ButtonError, SourceImage, child_spec
from domain.catalog import Catalog, parse_catalog
from domain.costs import DEFAULT_COSTS, estimate_ms
from domain.draft import job_models
from domain.errors import CatalogError, PromptError
from domain.loras import with_triggers
from domain.prompt import PromptOptions, canonical_prompt, parse_prompt
from domain.spec import JobKind, JobSpec


def models(**extra: dict[str, Any]) -> dict[str, Any]:
    tables: dict[str, Any] = {
        "xl": {
            "source": "x/xl", "family": "sdxl", "steps": 30, "guidance": 6.0, "scheduler": "dpmpp_2m_karras",
            "loras": [
                {"name": "ink", "source": "./ink.safetensors", "weight": 0.8, "triggers": ["ink sketch"]},
                {"name": "film", "source": "org/film-lora", "weight_name": "film.safetensors"},
                {"name": "lightning", "source": "org/lightning", "weight_name": "4step.safetensors"},
            ],
            "draft": {"lora": "lightning", "steps": 4, "guidance": 0.0, "scheduler": "euler"},
        },
        "dev": {"source": "x/dev", "family": "sd15", "steps": 28, "guidance": 3.5, "draft": "schnell"},
        "schnell": {"source": "x/schnell", "family": "sd15", "steps": 4, "guidance": 0.0, "scheduler": "euler"},
        "plain": {"source": "x/plain", "family": "sd15"},
    }
    for name, changes in extra.items():
        tables[name] = {**tables.get(name, {}), **changes}
    return {"default": "xl", "models": tables}


CATALOG = parse_catalog(models(), Path("/srv/models"))


def parse(text: str, options: PromptOptions | None = None, catalog: Catalog = CATALOG) -> JobSpec:
    return parse_prompt(text, catalog, options, random_seed=lambda: 7).specs[0]


# -- the models file ---------------------------------------------------------------------------------------------


def test_loras_and_drafts_are_read_with_their_defaults() -> None:
    xl = CATALOG.get("xl")
    ink, film, _ = xl.loras
    assert (ink.name, ink.weight, ink.triggers) == ("ink", 0.8, ("ink sketch",))
    assert ink.source == "/srv/models/ink.safetensors"  # relative paths resolve against the file's folder
    assert (film.source, film.weight_name, film.weight) == ("org/film-lora", "film.safetensors", 1.0)
    assert xl.draft is not None and (xl.draft.lora, xl.draft.steps) == ("lightning", 4)
    dev = CATALOG.get("dev")
    assert dev.draft is not None and dev.draft.model == "schnell"
    assert CATALOG.get("plain").loras == () and CATALOG.get("plain").draft is None


def test_memory_settings_are_read_and_default_to_none() -> None:
    catalog = parse_catalog(models(dev={"offload": "model", "quantize": "fp8"},
                                   plain={"source": "./plain.safetensors", "config": "./plain-config",
                                          "offload": "sequential"},
                                   schnell={"quantize": "gguf", "gguf": "./schnell-Q4.gguf"}), Path("/m"))
    assert catalog.get("xl").memory.offload == "none" and catalog.get("xl").memory.quantize == "none"
    assert (catalog.get("dev").memory.offload, catalog.get("dev").memory.quantize) == ("model", "fp8")
    plain = catalog.get("plain").memory
    assert (plain.config, plain.quantize, plain.offload) == ("/m/plain-config", "none", "sequential")
    assert catalog.get("schnell").memory.gguf == "/m/schnell-Q4.gguf"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"plain": {"offload": "gpu"}}, "model 'plain': offload 'gpu' is not one of none, model, sequential"),
        ({"plain": {"quantize": "q4"}}, "model 'plain': quantize 'q4' is not one of none, fp8, int8, nf4, gguf"),
        ({"plain": {"quantize": "gguf"}}, "model 'plain': quantize = \"gguf\" needs `gguf`"),
        ({"plain": {"gguf": "a.gguf"}}, "model 'plain': `gguf` is set but quantize is 'none'"),
        ({"plain": {"config": "./cfg"}}, "model 'plain': `config` is for single-file checkpoints"),
        ({"plain": {"quantize": "nf4", "offload": "sequential"}}, "cannot be offloaded layer by layer"),
        ({"plain": {"source": "a.safetensors", "quantize": "int8"}},
         "model 'plain': quantize = 'int8' needs a diffusers folder or Hub id as `source`"),
        ({"plain": {"loras": {"name": "a"}}}, "model 'plain': `loras` must be an array of tables"),
        ({"plain": {"loras": [{"name": "a b", "source": "x"}]}}, "model 'plain': LoRA name 'a b' must be"),
        ({"plain": {"loras": [{"name": "a"}]}}, "model 'plain', LoRA 'a' has no `source`"),
        ({"plain": {"loras": [{"name": "a", "source": "x", "weight": 3}]}},
         "model 'plain', LoRA 'a': weight 3 must be a number from -2 to 2"),
        ({"plain": {"loras": [{"name": "a", "source": "x"}, {"name": "A", "source": "y"}]}}, "listed twice"),
        ({"plain": {"loras": [{"name": "a", "source": "x", "trigger": "t"}]}}, "unknown key(s) trigger"),
        ({"plain": {"draft": "nothing"}}, "model 'plain': draft model 'nothing' is not defined"),
        ({"plain": {"draft": "xl"}}, "draft model 'xl' is a sdxl model, not sd15"),
        ({"plain": {"draft": "plain"}}, "draft model is the model itself"),
        ({"plain": {"draft": {"lora": "ink"}}}, "draft LoRA 'ink' is not one of this model's"),
        ({"plain": {"draft": {"guidance": 4}}}, "draft needs `model` (another model), `lora` (a few-step LoRA) or"),
        ({"plain": {"draft": {"steps": 30}}}, "model 'plain': draft steps 30 must be fewer than the model's 30"),
        ({"xl": {"draft": {"model": "dev", "lora": "ink"}}}, "draft takes `model` (another model) or `lora`, not"),
        ({"dev": {"draft": {"model": "schnell", "scheduler": "magic"}}}, "draft scheduler 'magic' is not one"),
        ({"dev": {"draft": {"model": "schnell", "steps": 0}}}, "draft steps must be at least 1"),
    ],
)
def test_bad_settings_name_the_model_and_the_key(changes: dict[str, dict[str, Any]], message: str) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog(models(**changes), Path("."))
    assert message in str(error.value)


# -- --lora ------------------------------------------------------------------------------------------------------


def test_lora_takes_the_file_weight_or_the_given_one_and_several_at_once() -> None:
    assert parse("a fox --lora ink").loras == (("ink", 0.8),)
    assert parse("a fox --lora ink:0.5 --lora film").loras == (("ink", 0.5), ("film", 1.0))
    assert parse("a fox --lora INK:1.5,film:-0.5").loras == (("ink", 1.5), ("film", -0.5))
    assert parse("a fox --lora film", PromptOptions(lora="ink:0.3")).loras == (("ink", 0.3), ("film", 1.0))
    assert parse("a fox").loras == ()


def test_a_lora_picked_twice_keeps_the_later_weight_with_a_note() -> None:
    parsed = parse_prompt("a fox --lora ink:0.2 --lora ink:0.6", CATALOG, random_seed=lambda: 7)
    assert parsed.specs[0].loras == (("ink", 0.6),)
    assert "`--lora ink` is given twice; the later weight is used." in parsed.notes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a fox --lora pixel", "The model `xl` has no LoRA called `pixel`; use one of: `ink`, `film`, `lightning`."),
        ("a fox --lora ink:3", "`--lora ink:3`: the weight 3 of `ink` is out of range; use -2 to 2"),
        ("a fox --lora ink:lots", "`--lora ink:lots`: the weight of `ink` must be a number from -2 to 2"),
        ("a fox --lora ./evil.safetensors", "`./evil.safetensors` is not a LoRA name"),
        ("a fox --lora https://x/y.safetensors", "is not a LoRA name"),
        ("a fox --model plain --lora ink", "The model `plain` has no LoRAs here; remove `--lora`"),
        ("a fox --lora", "`--lora` needs a value, like `--lora ink:0.8`."),
    ],
)
def test_bad_loras_are_refused_with_what_to_change(text: str, message: str) -> None:
    with pytest.raises(PromptError) as error:
        parse(text)
    assert message in str(error.value)


def test_the_lora_option_is_checked_like_the_parameter() -> None:
    with pytest.raises(PromptError, match=r"`lora: ink:9`: the weight 9 of `ink` is out of range"):
        parse("a fox", PromptOptions(lora="ink:9"))


def test_canonical_prompts_with_loras_and_drafts_read_back_as_the_same_spec() -> None:
    for text in ("a fox --lora ink:0.5,film --seed 3", "a fox --draft --lora film:0.25", "a fox --model dev --draft",
                 "a fox --model dev --draft --steps 6 --q 2", "a fox --draft --s 300 --sampler ddim"):
        spec = parse(text)
        canonical = canonical_prompt(spec, CATALOG)
        assert parse(canonical) == spec.replace(notes=()), canonical
    assert canonical_prompt(parse("a fox --lora ink --draft"), CATALOG) == "a fox --seed 7 --lora ink:0.8 --draft"


def test_trigger_words_are_added_once() -> None:
    assert with_triggers("a fox", ["ink sketch"]) == "a fox, ink sketch"
    assert with_triggers("a fox, Ink Sketch style", ["ink sketch"]) == "a fox, Ink Sketch style"
    assert with_triggers("a fox", []) == "a fox"


# -- --draft -----------------------------------------------------------------------------------------------------


def test_draft_runs_fewer_steps_at_a_lower_estimate() -> None:
    full, draft = parse("a fox --ar 3:2"), parse("a fox --ar 3:2 --draft")
    assert draft.draft and not full.draft
    assert (draft.steps, draft.guidance_scale, draft.sampler) == (4, 0.0, "euler")
    assert (full.steps, full.guidance_scale, full.sampler) == (30, 6.0, "dpmpp_2m_karras")
    costs = DEFAULT_COSTS["sdxl"]
    assert estimate_ms(draft, JobKind.IMAGINE, costs) < estimate_ms(full, JobKind.IMAGINE, costs) / 3
    # The other form: another model's steps, guidance and sampler; --q still scales the steps.
    dev = parse("a fox --model dev --draft --q 2")
    assert (dev.model, dev.steps, dev.guidance_scale, dev.sampler) == ("dev", 8, 0.0, "euler")


def test_a_draft_of_the_model_itself_in_fewer_steps() -> None:
    catalog = parse_catalog(models(plain={"draft": {"steps": 6}}), Path("."))
    spec = parse("a fox --model plain --draft", catalog=catalog)
    assert (spec.steps, spec.guidance_scale, spec.sampler) == (6, 7.0, "dpmpp_2m_karras")
    assert job_models(spec, catalog).preset.name == "plain" and job_models(spec, catalog).loras == ()


def test_draft_on_a_model_without_one_is_refused_naming_those_that_have_one() -> None:
    with pytest.raises(PromptError) as error:
        parse("a fox --model plain --draft")
    assert str(error.value) == (
        "The model `plain` has no draft mode here; remove `--draft` or pick a model that has one: `xl`, `dev`."
    )


def test_a_worker_runs_a_draft_on_the_draft_model_or_with_the_draft_lora() -> None:
    plain = job_models(parse("a fox --lora ink:0.5"), CATALOG)
    assert plain.preset.name == "xl" and [(lora.name, w) for lora, w in plain.loras] == [("ink", 0.5)]
    lora_draft = job_models(parse("a fox --lora ink:0.5 --draft"), CATALOG)
    assert lora_draft.preset.name == "xl"
    assert [(lora.name, w) for lora, w in lora_draft.loras] == [("ink", 0.5), ("lightning", 1.0)]
    both = job_models(parse("a fox --lora lightning:0.5 --draft"), CATALOG)
    assert [(lora.name, w) for lora, w in both.loras] == [("lightning", 0.5)]  # once, at the member's weight
    model_draft = job_models(parse("a fox --model dev --draft"), CATALOG)
    assert model_draft.preset.name == "schnell" and model_draft.loras == ()


def test_a_lora_the_file_no_longer_lists_fails_the_job_with_a_reason() -> None:
    spec = parse("a fox --lora ink")
    smaller = parse_catalog(models(xl={"loras": [], "draft": None}), Path("."))
    with pytest.raises(PromptError, match=r"The LoRA `ink` of model `xl` is no longer served here\."):
        job_models(spec, smaller)


# -- Enhance -----------------------------------------------------------------------------------------------------


def test_enhance_redraws_the_tile_at_full_quality_with_its_seed() -> None:
    draft = parse("a fox --draft --lora ink --q 2 --ar 3:2")
    tile = SourceImage(key="jobs/5/2.png", seed=draft.seed + 2, width=draft.width, height=draft.height)
    kind, spec = child_spec(draft, JobKind.IMAGINE, Action.ENHANCE, source=tile, new_seed=1,
                            preset=CATALOG.get("xl"))
    assert kind is JobKind.IMAGINE
    assert spec == parse(f"a fox --lora ink --q 2 --ar 3:2 --seed {draft.seed + 2}").replace(notes=())
    assert (draft.steps, spec.steps) == (8, 60)


def test_enhance_on_a_full_quality_grid_is_refused() -> None:
    full = parse("a fox")
    tile = SourceImage(key="k", seed=full.seed, width=full.width, height=full.height)
    with pytest.raises(ButtonError, match=NOT_A_DRAFT):
        child_spec(full, JobKind.IMAGINE, Action.ENHANCE, source=tile, new_seed=1, preset=CATALOG.get("xl"))
