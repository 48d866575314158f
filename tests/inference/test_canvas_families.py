"""Outpainting and region jobs on every family's tiny model: the canvas sizes suit the family (multiples of its
pixel step, which its inpainting pipeline keeps), and the source's pixels come back unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from domain.actions import Action, Edit, SourceImage, child_spec
from domain.canvas import region_boxes
from domain.catalog import Catalog
from domain.spec import JobKind, JobSpec
from inference.canvas import boxes_mask, paste_back, prepare_outpaint, prepare_region, seam_width
from inference.pipelines import PipelineCache, render_inpaint
from tests.inference.test_families import MODELS

SOURCE = Image.fromarray(np.random.default_rng(5).integers(0, 256, (256, 256, 3), dtype=np.uint8))


def _child(catalog: Catalog, family: str, action: Action, edit: Edit | None = None) -> tuple[JobKind, JobSpec]:
    preset = catalog.get(MODELS[family])
    upscale = JobSpec(prompt="a red fox", model=preset.name, width=128, height=128, seed=3, steps=2,
                      guidance_scale=preset.guidance, sampler=preset.scheduler, images=1, upscale_factor=2)
    source = SourceImage(key="jobs/1/0.png", seed=3, width=256, height=256)
    return child_spec(upscale, JobKind.UPSCALE, action, source=source, new_seed=11, preset=preset, edit=edit)


@pytest.mark.parametrize("family", list(MODELS))
def test_a_pan_is_drawn_at_the_familys_sizes_and_keeps_the_source(
    cache: PipelineCache, catalog: Catalog, family: str
) -> None:
    kind, spec = _child(catalog, family, Action.PAN_RIGHT)
    multiple = catalog.get(spec.model).capabilities.pixel_multiple
    assert kind is JobKind.PAN and spec.width % multiple == 0 and spec.height % multiple == 0
    assert spec.source_box is not None
    prepared = prepare_outpaint(SOURCE, spec.width, spec.height, spec.source_box)
    drawn = render_inpaint(cache, catalog.get(spec.model), spec.replace(images=2), prepared.image, prepared.mask)
    assert [image.size for image in drawn.images] == [(spec.width, spec.height)] * 2
    x, y, w, h = spec.source_box
    seam = seam_width(spec.width, spec.height)
    scaled = np.asarray(SOURCE.resize((w, h), Image.Resampling.LANCZOS))
    for image in drawn.images:
        kept = np.asarray(paste_back(image, prepared))
        assert np.array_equal(kept[y + seam:y + h - seam, x:x + w - seam], scaled[seam:h - seam, :w - seam])
        assert not np.array_equal(kept[:, -4:], np.asarray(prepared.image)[:, -4:])  # the new side is drawn


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_a_region_is_repainted_and_the_rest_kept(cache: PipelineCache, catalog: Catalog, family: str) -> None:
    kind, spec = _child(catalog, family, Action.VARY_REGION, Edit(cells=(5,)))
    assert kind is JobKind.REGION
    mask = boxes_mask((spec.width, spec.height), region_boxes(spec.region, spec.width, spec.height))
    prepared = prepare_region(SOURCE, mask)
    [image] = render_inpaint(cache, catalog.get(spec.model), spec.replace(images=1), prepared.image,
                             prepared.mask).images
    kept = np.asarray(paste_back(image, prepared))
    outside = np.asarray(mask) == 0
    assert np.array_equal(kept[outside], np.asarray(prepared.image)[outside])
    centre = spec.height // 2, spec.width // 2
    assert not np.array_equal(kept[centre], np.asarray(prepared.image)[centre])
