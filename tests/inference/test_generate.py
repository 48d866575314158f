"""generate_grid_png: the function behind `imagine generate`."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from domain.catalog import Catalog
from domain.spec import JobSpec
from inference.generate import generate_grid_png
from inference.pipelines import PipelineCache


def test_writes_the_grid_png(tmp_path: Path, catalog: Catalog, cache: PipelineCache, spec: JobSpec) -> None:
    out = tmp_path / "out" / "grid.png"
    result = generate_grid_png(catalog, spec.replace(model="t"), out, cache=cache)  # "t" is tiny's alias
    with Image.open(out) as grid:
        assert grid.format == "PNG" and grid.size == (2 * spec.width, 2 * spec.height)
    assert len(result.images) == 4
