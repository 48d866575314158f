"""A small models catalog for prompt tests: SD 1.5 (default), SDXL, and an SDXL model aliased "niji"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.catalog import Catalog, parse_catalog

MODELS: dict[str, dict[str, Any]] = {
    "sd15": {
        "source": "test/sd15",
        "family": "sd15",
        "aliases": ["5", "v5", "sd1.5"],
        "steps": 30,
        "guidance": 7.0,
    },
    "sdxl": {
        "source": "test/sdxl",
        "family": "sdxl",
        "aliases": ["xl", "6"],
        "steps": 30,
        "guidance": 6.0,
    },
    "anime": {
        "source": "test/anime",
        "family": "sdxl",
        "aliases": ["niji", "niji 6"],
        "steps": 25,
        "guidance": 5.0,
        "scheduler": "euler_a",
    },
}


def make_catalog(*, niji: bool = True) -> Catalog:
    """The test catalog; ``niji=False`` leaves out the anime model."""
    models = {name: table for name, table in MODELS.items() if niji or name != "anime"}
    return parse_catalog({"default": "sd15", "models": models}, Path("."))
