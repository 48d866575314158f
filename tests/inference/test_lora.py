"""LoRAs on the tiny SD 1.5 model: they reach the pixels, and never outlive the job that asked for them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from domain.catalog import Catalog, parse_catalog
from domain.draft import job_models
from domain.prompt import parse_prompt
from domain.spec import JobSpec
from inference.errors import ModelLoadError
from inference.modelcheck import check_model
from inference.pipelines import PipelineCache, RenderResult, load_pipeline, render_grid
from inference.pipelines.lora import loaded_adapters, lora_problem
from tests.support.lora_files import write_unet_lora


def same(a: RenderResult, b: RenderResult) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images, strict=True))


@pytest.fixture(scope="module")
def lora_catalog(tiny_models_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The tiny models with three LoRAs on ``tiny``: ``ink`` (trigger words), ``film``, and on ``tiny-wrong``
    (the same model) an SDXL LoRA, made for another family."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    folder = tmp_path_factory.mktemp("loras")
    models = tiny_models_file.parent
    write_unet_lora(StableDiffusionPipeline, models / "tiny-sd", folder / "ink.safetensors", seed=1)
    write_unet_lora(StableDiffusionPipeline, models / "tiny-sd", folder / "film.safetensors", seed=2)
    write_unet_lora(StableDiffusionXLPipeline, models / "tiny-sdxl", folder / "xl.safetensors", seed=3)
    data = tomllib.loads(tiny_models_file.read_text())
    tiny = data["models"]["tiny"]
    tiny["loras"] = [
        {"name": "ink", "source": str(folder / "ink.safetensors"), "weight": 0.9, "triggers": ["ink sketch"]},
        {"name": "film", "source": str(folder / "film.safetensors")},
    ]
    data["models"]["tiny-wrong"] = {
        **{key: value for key, value in tiny.items() if key not in ("loras", "aliases")},
        "loras": [{"name": "xl-style", "source": str(folder / "xl.safetensors")}],
    }
    return parse_catalog(data, models)


@pytest.fixture(scope="module")
def lora_cache() -> PipelineCache:
    return PipelineCache(device="cpu")


@pytest.fixture(scope="module")
def fresh(catalog: Catalog, spec: JobSpec) -> RenderResult:
    """``spec`` drawn by a pipeline that never had a LoRA."""
    return render_grid(PipelineCache(device="cpu"), catalog.get("tiny"), spec)


def render(cache: PipelineCache, catalog: Catalog, spec: JobSpec, lora: str = "") -> RenderResult:
    """``spec`` with ``--lora <lora>`` as a worker renders it (``job_models`` picks the adapters)."""
    text = f"{spec.prompt} --lora {lora}" if lora else spec.prompt
    job_spec = spec.replace(loras=parse_prompt(text, catalog).specs[0].loras)
    models = job_models(job_spec, catalog)
    return render_grid(cache, models.preset, job_spec, loras=models.loras)


def test_a_lora_changes_the_image_weight_zero_equals_none_and_the_next_job_is_clean(
    lora_cache: PipelineCache, lora_catalog: Catalog, spec: JobSpec, fresh: RenderResult
) -> None:
    with_film = render(lora_cache, lora_catalog, spec, "film")
    assert not same(with_film, fresh)
    assert loaded_adapters(lora_cache.text_to_image(lora_catalog.get("tiny"))) == {"ink", "film"}
    assert same(render(lora_cache, lora_catalog, spec, "film:0"), fresh)
    assert same(render(lora_cache, lora_catalog, spec), fresh)  # the next job without it: a fresh pipeline's
    assert same(render(lora_cache, lora_catalog, spec, "film"), with_film)  # and it comes back when asked for
    assert not same(render(lora_cache, lora_catalog, spec, "film:0.5"), with_film)


def test_two_loras_at_once_differ_from_each_alone(
    lora_cache: PipelineCache, lora_catalog: Catalog, spec: JobSpec
) -> None:
    both = render(lora_cache, lora_catalog, spec, "film:1,ink:1")
    film = render(lora_cache, lora_catalog, spec, "film:1")
    ink = render(lora_cache, lora_catalog, spec.replace(prompt=f"{spec.prompt}, ink sketch"), "ink:1")
    assert not same(both, film) and not same(both, ink)
    # The triggers are added once: writing them in the prompt yourself draws the same picture.
    assert same(render(lora_cache, lora_catalog, spec.replace(prompt=f"{spec.prompt}, ink sketch"), "film:1,ink:1"),
                both)


def test_trigger_words_reach_the_text_encoder(
    lora_cache: PipelineCache, lora_catalog: Catalog, spec: JobSpec, fresh: RenderResult
) -> None:
    # At weight 0 the LoRA draws nothing, so only its trigger words ("ink sketch") change the picture.
    triggered = render(lora_cache, lora_catalog, spec, "ink:0")
    assert not same(triggered, fresh)
    assert same(triggered, render(lora_cache, lora_catalog, spec.replace(prompt=f"{spec.prompt}, ink sketch")))


def test_a_lora_made_for_another_family_is_refused_when_the_model_loads(lora_catalog: Catalog) -> None:
    with pytest.raises(ModelLoadError) as error:
        load_pipeline(lora_catalog.get("tiny-wrong"), device=PipelineCache(device="cpu").device,
                      dtype=PipelineCache(device="cpu").dtype)
    message = str(error.value)
    assert message.startswith("model 'tiny-wrong', LoRA 'xl-style': it does not fit this sd15 model")
    assert "size mismatch" in message and "\n" not in message


def test_a_missing_lora_file_is_named(lora_catalog: Catalog) -> None:
    data = {"models": {"m": {"source": lora_catalog.get("tiny").source, "loras": [
        {"name": "gone", "source": "/nowhere/gone.safetensors"}]}}}
    with pytest.raises(ModelLoadError, match=r"model 'm', LoRA 'gone': the file '/nowhere/gone.safetensors' does"):
        load_pipeline(parse_catalog(data, Path(".")).get("m"), device=PipelineCache(device="cpu").device,
                      dtype=PipelineCache(device="cpu").dtype)


def test_the_start_up_check_names_a_lora_of_another_family_from_its_header(
    lora_catalog: Catalog, catalog: Catalog
) -> None:
    assert check_model(lora_catalog.get("tiny")) is None
    assert check_model(lora_catalog.get("tiny-wrong")) == (
        "LoRA 'xl-style' is made for another family: its cross-attention takes 64 wide text embeddings, "
        "this sd15 model's 32"
    )
    flux_lora = catalog.get("tiny-flux").loras[0]  # a transformer LoRA on a UNet model
    on_sd = lora_catalog.get("tiny")
    assert lora_problem(on_sd, flux_lora) == (
        "LoRA 'tiny-flux-lora' is made for a transformer model (FLUX, SD 3, ...), not this sd15 model"
    )
    assert lora_problem(catalog.get("tiny-flux"), on_sd.loras[0]) == (
        "LoRA 'ink' is made for a UNet model (SD 1.5 / SDXL), not this flux model"
    )
