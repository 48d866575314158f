"""``imagine generate``: render one grid from a job spec to a PNG file, without Discord, queue or database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from domain.catalog import Catalog
from domain.draft import job_models
from domain.spec import JobSpec

if TYPE_CHECKING:
    from inference.pipelines import OnStep, PipelineCache, RenderResult

__all__ = ["generate_grid_png"]


def generate_grid_png(
    catalog: Catalog,
    spec: JobSpec,
    out: Path,
    *,
    cache: PipelineCache | None = None,
    on_step: OnStep | None = None,
) -> RenderResult:
    """Render ``spec`` with the model ``catalog`` names for ``spec.model`` and write the 2x2 grid to
    ``out`` as PNG (parent folders are created). Returns the render's images, seeds and timing.

    ``cache`` keeps loaded models between calls (a new one, so a fresh load, when omitted). Raises
    :class:`domain.errors.UnknownModelError` for a model the catalog does not have.
    """
    from inference.grid import compose_grid
    from inference.pipelines import PipelineCache, render_grid  # torch: imported only when rendering

    models = job_models(spec, catalog)  # the draft's model under --draft, and the LoRAs
    result = render_grid(cache or PipelineCache(), models.preset, spec, loras=models.loras, on_step=on_step)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compose_grid(result.images).save(out, format="PNG")
    return result
