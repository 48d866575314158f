"""The tiny model builder: a valid models file, deterministic weights."""

from __future__ import annotations

from pathlib import Path

from domain.catalog import Catalog
from inference.tiny import write_tiny_model


def test_models_file_names_tiny_as_default(catalog: Catalog, tiny_models_file: Path) -> None:
    tiny = catalog.default_preset
    assert (tiny.name, tiny.family, tiny.width, tiny.height) == ("tiny", "sd15", 128, 128)
    assert Path(tiny.source).is_dir() and Path(tiny.preview).is_dir() and Path(tiny.upscaler).is_file()
    assert catalog.get("tiny-xl").family == "sdxl"


def test_same_seed_same_weights(tmp_path: Path) -> None:
    def unet_bytes(folder: Path) -> bytes:
        return next((folder / "tiny-sd" / "unet").glob("*.safetensors")).read_bytes()

    first = write_tiny_model(tmp_path / "a", seed=3, sdxl=False).parent
    second = write_tiny_model(tmp_path / "b", seed=3, sdxl=False).parent
    assert unet_bytes(first) == unet_bytes(second)
    assert (first / "tiny-esrgan-x4.pth").stat().st_size == (second / "tiny-esrgan-x4.pth").stat().st_size
    assert "tiny-xl" not in (first / "models.toml").read_text()
