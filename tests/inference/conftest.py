"""Tiny random-weight models, written once per test session, loaded through the real ``from_pretrained``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from domain.catalog import Catalog, ModelPreset, load_catalog
from domain.spec import JobSpec

if TYPE_CHECKING:  # torch is imported by the fixtures, only when a test uses them
    from inference.pipelines import PipelineCache, RenderResult


@pytest.fixture(scope="session")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a shared 2-core machine two torch threads spinning
    against other processes made these tests 2-3x slower (measured). Put back after the session."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models_file(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    from inference.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-models"), seed=0)


@pytest.fixture(scope="session")
def catalog(tiny_models_file: Path) -> Catalog:
    return load_catalog(tiny_models_file)


@pytest.fixture(scope="session")
def preset(catalog: Catalog) -> ModelPreset:
    return catalog.get("tiny")


@pytest.fixture(scope="session")
def cache() -> PipelineCache:
    from inference.pipelines import PipelineCache

    return PipelineCache(device="cpu")


@pytest.fixture(scope="session")
def spec() -> JobSpec:
    """Small and quick: 4 images of 64 px, 4 steps."""
    return JobSpec(
        prompt="a red fox in the snow",
        model="tiny",
        width=64,
        height=64,
        seed=1234,
        steps=4,
        guidance_scale=7.0,
    )


@pytest.fixture(scope="session")
def baseline(cache: PipelineCache, preset: ModelPreset, spec: JobSpec) -> RenderResult:
    """The grid of ``spec``, rendered once; tests compare their renders with it."""
    from inference.pipelines import render_grid

    return render_grid(cache, preset, spec)
