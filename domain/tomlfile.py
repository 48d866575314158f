"""Reading the operator's TOML files (models, plans) with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from domain.errors import DomainError

__all__ = ["read_toml"]


def read_toml(path: Path, what: str, error: type[DomainError]) -> dict[str, Any]:
    """The table in ``path``; ``error`` (e.g. ``CatalogError``) says "``what`` file <path> …" otherwise."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} file {path} is not valid TOML: {exc}") from exc
