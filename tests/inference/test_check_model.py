"""check_model: what the worker reports at start-up about a model that cannot load, before loading anything."""

from __future__ import annotations

import shutil
from pathlib import Path

from domain.catalog import Catalog, ModelPreset
from inference.modelcheck import check_model


def test_every_tiny_model_looks_loadable(catalog: Catalog) -> None:
    assert {name: check_model(catalog.get(name)) for name in catalog.names} == dict.fromkeys(catalog.names)


def test_a_folder_of_another_family_is_named(preset: ModelPreset) -> None:
    wrong = ModelPreset(**{**_fields(preset), "family": "flux", "scheduler": "euler"})
    assert check_model(wrong) == (
        f"{preset.source} holds a StableDiffusionPipeline pipeline, not one of family 'flux' (FluxPipeline)"
    )


def test_checking_imports_no_torch() -> None:
    from tests.test_layering import loaded_after_import

    assert not loaded_after_import("inference.modelcheck, imagine.runner") & {"torch", "diffusers"}


def test_missing_weights_and_missing_files(preset: ModelPreset, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(preset.source, copy)
    for weights in (copy / "unet").glob("*.safetensors"):
        weights.unlink()
    assert check_model(_at(preset, str(copy))) == f"its unet weights are missing from {copy / 'unet'}"
    other = tmp_path / "other"
    shutil.copytree(preset.source, other)
    shutil.rmtree(other / "vae")
    assert check_model(_at(preset, str(other))) == f"its vae folder is missing from {other}"
    problem = check_model(_at(preset, str(tmp_path / "nothing-here")))
    assert problem is not None and problem.startswith(f"no pipeline at {tmp_path / 'nothing-here'}")
    assert check_model(_at(preset, str(tmp_path / "model.safetensors"))) == (
        f"there is no checkpoint file at {tmp_path / 'model.safetensors'}"
    )
    klein = ModelPreset(**{**_fields(preset), "family": "flux2", "scheduler": "euler",  # type: ignore[arg-type]
                           "source": str(tmp_path / "klein.safetensors")})
    assert check_model(klein) == (
        "family 'flux2' cannot load a single-file checkpoint; use a diffusers folder or Hub id"
    )


def _fields(preset: ModelPreset) -> dict[str, object]:
    return {name: getattr(preset, name) for name in preset.__slots__}  # type: ignore[attr-defined]


def _at(preset: ModelPreset, source: str) -> ModelPreset:
    return ModelPreset(**{**_fields(preset), "source": source})  # type: ignore[arg-type]
