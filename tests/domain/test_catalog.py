"""The models file: parsing, aliases, errors an operator can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.catalog import load_catalog, parse_catalog
from domain.errors import CatalogError, UnknownModelError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_the_shipped_models_file_loads_and_names_real_models() -> None:
    catalog = load_catalog(Path(__file__).parents[2] / "imagine" / "models.toml")
    assert catalog.default == "zimage-turbo" and catalog.get("7").family == "zimage"
    assert catalog.get("xl").source == "stabilityai/stable-diffusion-xl-base-1.0"
    assert catalog.get("sdxl").width == 1024 and catalog.get("sd15").width == 512
    # a draft preset: SDXL Lightning on SDXL, fewer steps on the default
    sdxl_draft, default_draft = catalog.get("sdxl").draft, catalog.get(None).draft
    assert sdxl_draft is not None and sdxl_draft.lora == "lightning"
    assert default_draft is not None and default_draft.steps == 4


def test_aliases_are_case_insensitive_and_relative_paths_resolve(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    path = write(tmp_path, 'default = "a"\n[models.a]\nsource = "./weights"\naliases = ["Alpha"]\n')
    catalog = load_catalog(path)
    assert catalog.get("ALPHA").name == "a"
    assert catalog.get(None).source == str((tmp_path / "weights").resolve())


def test_an_unknown_model_lists_the_known_ones() -> None:
    catalog = parse_catalog({"models": {"a": {"source": "x/a"}, "b": {"source": "x/b"}}}, Path("."))
    with pytest.raises(UnknownModelError) as error:
        catalog.get("c")
    assert str(error.value) == "Unknown model `c`. Choose one of: `a`, `b`."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models]\n", "defines no [models.<name>]"),
        ('[models.a]\nfamily = "sd15"\n', "model 'a' has no `source`"),
        ('[models.a]\nsource = "x"\nfamily = "flux9"\n', "family 'flux9' is not one of"),
        ('[models.a]\nsource = "x"\nscheduler = "magic"\n', "scheduler 'magic' is not one of"),
        ('default = "b"\n[models.a]\nsource = "x"\n', "default model 'b' is not defined"),
        ('[models.a]\nsource = "x"\n[models.b]\nsource = "y"\naliases = ["a"]\n', "used by both"),
        ("this is not toml", "is not valid TOML"),
    ],
)
def test_a_broken_models_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(write(tmp_path, text))


def test_a_missing_models_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope.toml")
