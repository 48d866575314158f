"""The tiny models folder of the session (written once by ``tests/inference/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tiny_models_file: Path) -> Path:
    return tiny_models_file.parent
