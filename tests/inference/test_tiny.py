"""The tiny model writer: a valid models file naming every family, deterministic weights.

Each family's folder is loaded and run by its own test under ``tests/inference/tiny/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.capabilities import CAPABILITIES
from domain.catalog import Catalog, load_catalog
from inference.tiny import FAMILY_MODULES, write_tiny_model


def test_models_file_names_tiny_as_default(catalog: Catalog, tiny_models_file: Path) -> None:
    tiny = catalog.default_preset
    assert (tiny.name, tiny.family, tiny.width, tiny.height) == ("tiny", "sd15", 128, 128)
    assert Path(tiny.source).is_dir() and Path(tiny.preview).is_dir() and Path(tiny.upscaler).is_file()
    assert catalog.get("tiny-xl").family == "sdxl"


def test_every_family_has_a_model_with_its_own_folder(catalog: Catalog) -> None:
    assert set(FAMILY_MODULES) == set(CAPABILITIES)
    by_family = {preset.family: preset for preset in catalog.models.values()}
    assert set(by_family) == set(FAMILY_MODULES)
    for family, preset in by_family.items():
        assert Path(preset.source).name == FAMILY_MODULES[family].FOLDER
        assert (Path(preset.source) / "model_index.json").is_file(), family
        assert preset.width == preset.height == 128
        assert not preset.preview or Path(preset.preview).is_dir()


def test_same_seed_same_weights(tmp_path: Path) -> None:
    def unet_bytes(folder: Path) -> bytes:
        return next((folder / "tiny-sd" / "unet").glob("*.safetensors")).read_bytes()

    first = write_tiny_model(tmp_path / "a", seed=3, families=["sd15"]).parent
    second = write_tiny_model(tmp_path / "b", seed=3, families=["sd15"]).parent
    assert unet_bytes(first) == unet_bytes(second)
    assert (first / "tiny-esrgan-x4.pth").read_bytes() == (second / "tiny-esrgan-x4.pth").read_bytes()


def test_families_and_sdxl_choose_what_is_written(tmp_path: Path) -> None:
    models = write_tiny_model(tmp_path, families=["sdxl", "flux"], sdxl=False)
    catalog = load_catalog(models)
    assert catalog.names == ["tiny-flux"] and catalog.default == "tiny-flux"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("tiny-")) == [
        "tiny-esrgan-x4.pth", "tiny-flux", "tiny-flux-lora.safetensors", "tiny-taesd", "tiny-taesd-16",
    ]
    with pytest.raises(ValueError, match="unknown tiny model families"):
        write_tiny_model(tmp_path, families=["sd2"])
