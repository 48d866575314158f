"""The canvas geometry: sizes, where the source goes, reductions and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from domain.aspect import MAX_RATIO
from domain.canvas import (
    Canvas,
    CanvasError,
    Pan,
    max_side,
    pan_canvas,
    parse_zoom,
    region_boxes,
    region_cells,
    square_canvas,
    zoom_canvas,
)

SD15: dict[str, Any] = {"pixel_budget": 512 * 512, "multiple": 8}
TINY: dict[str, Any] = {"pixel_budget": 128 * 128, "multiple": 8}


def _box_inside(canvas: Canvas) -> None:
    x, y, w, h = canvas.source_box
    assert x >= 0 and y >= 0 and x + w <= canvas.width and y + h <= canvas.height


@pytest.mark.parametrize("zoom", [1.0, 1.5, 2.0])
def test_zoom_out_keeps_the_budget_and_puts_the_source_in_the_centre_at_one_over_zoom(zoom: float) -> None:
    canvas = zoom_canvas(1024, 1024, zoom, **SD15)
    assert (canvas.width, canvas.height) == (512, 512)
    x, y, w, h = canvas.source_box
    assert w == h == round(512 / zoom)
    assert x == y == round((512 - w) / 2)
    assert canvas.notes == ()


def test_zoom_of_a_wide_image_keeps_its_shape_and_sides_are_multiples() -> None:
    canvas = zoom_canvas(1536, 1024, 2.0, **SD15)
    assert canvas.width % 8 == 0 and canvas.height % 8 == 0
    assert abs(canvas.width / canvas.height - 1.5) < 0.03
    assert abs(canvas.width * canvas.height - 512 * 512) / (512 * 512) < 0.03
    _box_inside(canvas)


def test_custom_zoom_with_an_aspect_reshapes_the_canvas_and_grows_it_to_hold_the_source() -> None:
    wide = zoom_canvas(512, 512, 1.0, aspect=(2, 1), **SD15)
    assert abs(wide.width / wide.height - 2) < 0.03
    assert wide.source_box[3] == wide.height  # the square source fills the height, new area left and right
    assert wide.notes and "fits in --ar 2:1" in wide.notes[0]
    roomy = zoom_canvas(512, 512, 2.0, aspect=(2, 1), **SD15)
    assert roomy.notes == () and roomy.source_box[3] < roomy.height


def test_a_canvas_where_the_source_would_be_a_few_pixels_is_refused() -> None:
    with pytest.raises(CanvasError, match="closer to"):
        zoom_canvas(48, 256, 2.0, aspect=(4, 1), **TINY)


def test_make_square_puts_the_source_in_the_middle_of_a_square() -> None:
    canvas = square_canvas(1024, 512, **SD15)
    assert canvas.width == canvas.height == 512
    assert canvas.source_box == (0, 128, 512, 256)
    with pytest.raises(CanvasError, match="already square"):
        square_canvas(512, 512, **SD15)


@pytest.mark.parametrize(("direction", "where"), [
    (Pan.LEFT, "right"), (Pan.RIGHT, "left"), (Pan.UP, "bottom"), (Pan.DOWN, "top"),
])
def test_a_pan_grows_the_canvas_by_half_a_side_and_keeps_the_source_on_the_other_side(
    direction: Pan, where: str
) -> None:
    canvas = pan_canvas(256, 256, direction, **TINY)
    x, y, w, h = canvas.source_box
    long, short = (canvas.width, canvas.height) if direction.horizontal else (canvas.height, canvas.width)
    assert abs(long / short - 1.5) < 0.1
    assert {"right": x + w == canvas.width, "left": x == 0, "bottom": y + h == canvas.height,
            "top": y == 0}[where]
    assert (h if direction.horizontal else w) == short  # the source keeps the whole other side
    assert canvas.notes == ()


def test_a_pan_past_the_widest_is_reduced_with_a_note_then_refused() -> None:
    reduced = pan_canvas(3 * 512, 512, Pan.RIGHT, **SD15)  # 3:1 plus half is 4.5:1, over 4:1
    assert reduced.width <= max_side(512 * 512, 8) and abs(reduced.width / reduced.height - MAX_RATIO) < 0.1
    assert reduced.notes and "Panned by 33%" in reduced.notes[0]
    with pytest.raises(CanvasError, match="already as wide"):
        pan_canvas(4 * 512, 512, Pan.LEFT, **SD15)
    assert pan_canvas(4 * 512, 512, Pan.UP, **SD15).height > 0  # the other axis still grows


def test_max_side_is_twice_the_native_side() -> None:
    assert max_side(512 * 512, 8) == 1024 and max_side(1024 * 1024, 16) == 2048


@pytest.mark.parametrize(("text", "zoom"), [("1.5", 1.5), ("2", 2.0), (" 1,25x ", 1.25), ("1", 1.0)])
def test_parse_zoom(text: str, zoom: float) -> None:
    assert parse_zoom(text) == zoom


@pytest.mark.parametrize(("text", "says"), [("", "a number"), ("big", "a number"), ("2.5", "from 1 to 2"),
                                             ("0.5", "from 1 to 2"), ("nan", "from 1 to 2")])
def test_parse_zoom_refuses_what_is_out_of_range(text: str, says: str) -> None:
    with pytest.raises(CanvasError, match=says):
        parse_zoom(text)


def test_region_cells_merge_cells_and_named_regions() -> None:
    assert region_cells(["1", "5"]) == (1, 5)
    assert region_cells([9], ["left half"]) == (1, 4, 7, 9)
    for cells, names, says in (([], [], "at least one"), (range(1, 10), [], "whole image"),
                               ([5], ["border"], "whole image"), ([10], [], "no cell 10"),
                               ([], ["sky"], "no region `sky`")):
        with pytest.raises(CanvasError, match=says):
            region_cells(cells, names)


def test_region_boxes_tile_the_image_in_thirds() -> None:
    boxes = region_boxes(range(1, 10), 128, 96)
    assert sum(w * h for _, _, w, h in boxes) == 128 * 96
    assert region_boxes([1], 128, 96) == ((0, 0, 43, 32),)
    assert region_boxes([9], 128, 96) == ((85, 64, 43, 32),)
