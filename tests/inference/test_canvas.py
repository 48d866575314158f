"""The Pillow side of the canvas jobs: the model's input, the mask, and the kept pixels pasted back."""

from __future__ import annotations

import numpy as np
from PIL import Image

from domain.canvas import Pan, pan_canvas, region_boxes, zoom_canvas
from inference.canvas import boxes_mask, paste_back, prepare_outpaint, prepare_region, seam_width


def _noise(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_outpaint_masks_the_new_area_and_a_seam_and_pastes_the_source_back_exactly() -> None:
    source = _noise(256, 256, 1)
    canvas = zoom_canvas(256, 256, 2.0, pixel_budget=128 * 128, multiple=8)
    prepared = prepare_outpaint(source, canvas.width, canvas.height, canvas.source_box)
    x, y, w, h = canvas.source_box
    seam = seam_width(canvas.width, canvas.height)
    mask = np.asarray(prepared.mask)
    assert mask[0, 0] == 255 and mask[y + seam - 1, x + seam] == 0 and mask[y + seam - 2, x + seam] == 255
    assert (mask == 255).sum() == canvas.width * canvas.height - (w - 2 * seam + 2) * (h - 2 * seam + 2)

    generated = Image.new("RGB", (canvas.width, canvas.height), (0, 255, 0))
    result = np.asarray(paste_back(generated, prepared)).astype(int)
    scaled = np.asarray(source.resize((w, h), Image.Resampling.LANCZOS)).astype(int)
    inner = result[y + seam:y + h - seam, x + seam:x + w - seam]
    assert np.array_equal(inner, scaled[seam:-seam, seam:-seam])  # kept exactly
    assert (result[0, 0] == (0, 255, 0)).all()  # the model's pixels outside
    edge = result[y + seam // 2, x + w // 2]
    assert not (edge == (0, 255, 0)).all() and not (edge == scaled[seam // 2, w // 2]).all()  # blended seam


def test_a_pan_keeps_the_source_up_to_the_canvas_edges_it_touches() -> None:
    source = _noise(256, 256, 2)
    canvas = pan_canvas(256, 256, Pan.LEFT, pixel_budget=128 * 128, multiple=8)
    prepared = prepare_outpaint(source, canvas.width, canvas.height, canvas.source_box)
    x, _, w, h = canvas.source_box
    seam = seam_width(canvas.width, canvas.height)
    keep = np.asarray(prepared.keep)
    assert x + w == canvas.width and h == canvas.height
    assert (keep[:, x + seam:] == 255).all()  # no seam along the top, bottom and right edges
    assert (keep[:, : x] == 0).all() and 0 < keep[h // 2, x + seam // 2] < 255


def test_a_region_changes_nothing_outside_it() -> None:
    source = _noise(128, 128, 3)
    mask = boxes_mask((128, 128), region_boxes([1, 2, 5], 128, 128))
    prepared = prepare_region(source, mask)
    assert prepared.mask.tobytes() == mask.tobytes()
    result = np.asarray(paste_back(Image.new("RGB", (128, 128), (255, 0, 255)), prepared))
    outside = np.asarray(mask) == 0
    assert np.array_equal(result[outside], np.asarray(source)[outside])
    assert (result[21, 21] == (255, 0, 255)).all()  # deep inside cell 1: the model's


def test_a_region_of_a_larger_source_works_at_the_masks_size() -> None:
    prepared = prepare_region(_noise(256, 256, 4), boxes_mask((128, 128), region_boxes([5], 128, 128)))
    assert prepared.image.size == prepared.keep.size == (128, 128)
