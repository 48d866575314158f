"""The geometry of the canvas buttons: Zoom Out, Custom Zoom, Make Square, the four pans, and Vary (Region).

Zoom, pan and square are outpainting: the source image is placed on a larger canvas and the new area is
drawn by the model. The canvas is worked out in the source's own pixels first, then scaled to the model's
pixel budget (the area of one native image), each side rounded to the model's pixel multiple::

    Zoom Out 2x / 1.5x   the canvas is 2 / 1.5 times each side; the source sits in its centre
    Custom Zoom          zoom 1.0 to 2.0 and an optional --ar: the canvas has z² times the source's area in
                         that ratio, and grows where it must to hold the source
    Make Square          the canvas is a square as wide as the source's longer side, the source centred
    ⬅️ ➡️ ⬆️ ⬇️            the canvas grows by half a side in that direction; the source keeps the other side

The widest canvas is :data:`~domain.aspect.MAX_RATIO` to 1 (at the pixel budget its longer side is then
:func:`max_side`, twice the native side). A pan that would go past it is reduced to what fits, with a note;
one that cannot grow at all is refused. The result is a :class:`Canvas`: the size the model draws and where
the source goes in it (``source_box``, in output pixels).

Vary (Region) repaints cells of a 3x3 grid over the image (numbered 1 to 9, left to right, top to bottom),
picked one by one or as named regions (:data:`NAMED_REGIONS`); :func:`region_boxes` turns them into
rectangles of the output, from which the worker draws the mask as a plain image.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from domain.aspect import MAX_RATIO
from domain.errors import DomainError

__all__ = [
    "CELL_NAMES",
    "GRID_CELLS",
    "MAX_ZOOM",
    "MIN_ZOOM",
    "NAMED_REGIONS",
    "PAN_GROWTH",
    "Box",
    "Canvas",
    "CanvasError",
    "Pan",
    "max_side",
    "pan_canvas",
    "parse_zoom",
    "region_boxes",
    "region_cells",
    "square_canvas",
    "zoom_canvas",
]

#: Custom Zoom takes a zoom between these (Zoom Out 2x and 1.5x are the usual ones; 1.0 with --ar reshapes).
MIN_ZOOM = 1.0
MAX_ZOOM = 2.0
#: A pan grows the canvas by this share of the side it extends.
PAN_GROWTH = 0.5
#: A pan that cannot add at least this share of a side is refused rather than reduced to a sliver.
_MIN_PAN = 0.125
#: The source must keep at least this many pixel multiples a side in the output.
_MIN_SOURCE_MULTIPLES = 2
#: Vary (Region) cells: a 3x3 grid, numbered 1..9 row by row.
GRID_CELLS = 9
CELL_NAMES = (
    "top left", "top", "top right",
    "left", "centre", "right",
    "bottom left", "bottom", "bottom right",
)
#: Named regions for Vary (Region), as cells of the 3x3 grid.
NAMED_REGIONS: dict[str, frozenset[int]] = {
    "left half": frozenset({1, 4, 7}),
    "right half": frozenset({3, 6, 9}),
    "top half": frozenset({1, 2, 3}),
    "bottom half": frozenset({7, 8, 9}),
    "middle": frozenset({5}),
    "middle band": frozenset({4, 5, 6}),
    "border": frozenset({1, 2, 3, 4, 6, 7, 8, 9}),
}

#: ``(x, y, width, height)`` in pixels.
Box = tuple[int, int, int, int]


class CanvasError(DomainError):
    """A canvas request that cannot be drawn; the message says what to change."""


class Pan(StrEnum):
    """The side a pan extends."""

    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"

    @property
    def horizontal(self) -> bool:
        return self in (Pan.LEFT, Pan.RIGHT)


@dataclass(frozen=True, slots=True)
class Canvas:
    """What the model draws for an outpainting job."""

    #: Output size in pixels, multiples of the model's pixel multiple.
    width: int
    height: int
    #: Where the (scaled) source goes in the output.
    source_box: Box
    #: Things the member should know (a pan reduced to fit).
    notes: tuple[str, ...] = ()


def max_side(pixel_budget: int, multiple: int) -> int:
    """The longest side an outpainted image may have: the long side of a 4:1 image at the pixel budget."""
    return max(multiple, int(math.sqrt(pixel_budget * MAX_RATIO)) // multiple * multiple)


def _round(exact: float, multiple: int) -> int:
    return max(multiple, int(exact / multiple + 0.5) * multiple)


def _fit(
    canvas_w: float, canvas_h: float, source_w: int, source_h: int, anchor: tuple[float, float], *,
    pixel_budget: int, multiple: int, notes: tuple[str, ...] = (),
) -> Canvas:
    """Scale a canvas of ``canvas_w`` x ``canvas_h`` source pixels to the pixel budget and place the source.

    ``anchor`` is where the source sits along each axis: 0 = left/top, 0.5 = centre, 1 = right/bottom.
    """
    scale = math.sqrt(pixel_budget / (canvas_w * canvas_h))
    longest = max_side(pixel_budget, multiple)
    width = min(longest, _round(canvas_w * scale, multiple))
    height = min(longest, _round(canvas_h * scale, multiple))
    # One scale for the source (it keeps its shape); the rounding of the canvas is absorbed by the new area.
    fit = min(width / canvas_w, height / canvas_h)
    box_w, box_h = min(width, round(source_w * fit)), min(height, round(source_h * fit))
    if min(box_w, box_h) < _MIN_SOURCE_MULTIPLES * multiple:
        raise CanvasError("The image would be only a few pixels in the new canvas. Choose an --ar closer to "
                          "the image's shape, or a smaller zoom.")
    x = round((width - box_w) * anchor[0])
    y = round((height - box_h) * anchor[1])
    return Canvas(width, height, (x, y, box_w, box_h), notes)


def parse_zoom(value: str) -> float:
    """Read a Custom Zoom value (``1.5``, ``2``, ``1,25``). Raises :class:`CanvasError` saying what to change."""
    text = value.strip().replace(",", ".").removesuffix("x").strip()
    try:
        zoom = float(text)
    except ValueError:
        raise CanvasError(f"The zoom must be a number from {MIN_ZOOM:g} to {MAX_ZOOM:g}, like `1.5`.") from None
    if not math.isfinite(zoom) or not MIN_ZOOM <= zoom <= MAX_ZOOM:
        raise CanvasError(f"The zoom must be from {MIN_ZOOM:g} to {MAX_ZOOM:g}; `{value.strip()}` is not.")
    return zoom


def zoom_canvas(
    source_w: int, source_h: int, zoom: float, *, aspect: tuple[int, int] | None = None,
    pixel_budget: int, multiple: int,
) -> Canvas:
    """Zoom out by ``zoom`` (1.0 to 2.0), optionally into a new ``aspect`` (W, H): the source in the centre."""
    if not MIN_ZOOM <= zoom <= MAX_ZOOM:
        raise CanvasError(f"The zoom must be from {MIN_ZOOM:g} to {MAX_ZOOM:g}.")
    ratio = aspect[0] / aspect[1] if aspect is not None else source_w / source_h
    area = zoom * zoom * source_w * source_h
    canvas_w = math.sqrt(area * ratio)
    canvas_h = canvas_w / ratio
    notes: tuple[str, ...] = ()
    if aspect is not None and (canvas_w < source_w or canvas_h < source_h):
        # The new ratio needs more room on one side than the zoom gives: grow the canvas to hold the source.
        grow = max(source_w / canvas_w, source_h / canvas_h)
        canvas_w, canvas_h = canvas_w * grow, canvas_h * grow
        notes = (f"Zoomed out {zoom * grow:.2g}x rather than {zoom:g}x, so that the image fits in "
                 f"--ar {aspect[0]}:{aspect[1]}.",)
    return _fit(canvas_w, canvas_h, source_w, source_h, (0.5, 0.5), pixel_budget=pixel_budget,
                multiple=multiple, notes=notes)


def square_canvas(source_w: int, source_h: int, *, pixel_budget: int, multiple: int) -> Canvas:
    """Make Square: a square canvas as wide as the longer side, the source in the centre."""
    if source_w == source_h:
        raise CanvasError("This image is already square.")
    side = max(source_w, source_h)
    return _fit(side, side, source_w, source_h, (0.5, 0.5), pixel_budget=pixel_budget, multiple=multiple)


_PAN_ANCHOR = {Pan.LEFT: (1.0, 0.5), Pan.RIGHT: (0.0, 0.5), Pan.UP: (0.5, 1.0), Pan.DOWN: (0.5, 0.0)}


def pan_canvas(source_w: int, source_h: int, direction: Pan, *, pixel_budget: int, multiple: int) -> Canvas:
    """Extend the canvas by :data:`PAN_GROWTH` of a side towards ``direction``; the source keeps its place.

    Raises :class:`CanvasError` when the image is already as long as this model draws on that axis.
    """
    along, across = (source_w, source_h) if direction.horizontal else (source_h, source_w)
    growth = PAN_GROWTH
    notes: tuple[str, ...] = ()
    widest = MAX_RATIO * across
    if along * (1 + growth) > widest:
        growth = widest / along - 1
        shape = "wide" if direction.horizontal else "tall"
        other = "up or down" if direction.horizontal else "left or right"
        if growth < _MIN_PAN:
            raise CanvasError(
                f"This image is already as {shape} as this model draws ({MAX_RATIO}:1), so it can't pan "
                f"{direction.value}. Pan {other}, or use Make Square or Zoom Out."
            )
        notes = (f"Panned by {growth:.0%} of the image instead of {PAN_GROWTH:.0%}: the result is as {shape} "
                 f"as this model draws ({MAX_RATIO}:1).",)
    longer = along * (1 + growth)
    canvas_w, canvas_h = (longer, across) if direction.horizontal else (across, longer)
    return _fit(canvas_w, canvas_h, source_w, source_h, _PAN_ANCHOR[direction], pixel_budget=pixel_budget,
                multiple=multiple, notes=notes)


def region_cells(cells: Iterable[int | str], names: Iterable[str] = ()) -> tuple[int, ...]:
    """The cells (1..9) of a Vary (Region) request: the cells picked plus the named regions, sorted.

    Raises :class:`CanvasError` for a region that covers nothing or the whole image.
    """
    picked: set[int] = set()
    for cell in cells:
        number = int(cell)
        if not 1 <= number <= GRID_CELLS:
            raise CanvasError(f"There is no cell {number}; the cells are 1 to {GRID_CELLS}.")
        picked.add(number)
    for name in names:
        region = NAMED_REGIONS.get(name.strip().lower())
        if region is None:
            raise CanvasError(f"There is no region `{name}`; choose from {', '.join(NAMED_REGIONS)}.")
        picked |= region
    if not picked:
        raise CanvasError("Pick at least one part of the image to vary (a cell or a named region).")
    if len(picked) == GRID_CELLS:
        raise CanvasError("That is the whole image. Leave some of it out, or use Vary (Strong) to vary it all.")
    return tuple(sorted(picked))


def region_boxes(cells: Iterable[int], width: int, height: int) -> tuple[Box, ...]:
    """The rectangles of ``cells`` (1..9) on a ``width`` x ``height`` image (cell edges at the thirds)."""
    xs = [round(width * i / 3) for i in range(4)]
    ys = [round(height * i / 3) for i in range(4)]
    boxes = []
    for cell in sorted(set(cells)):
        row, col = divmod(cell - 1, 3)
        boxes.append((xs[col], ys[row], xs[col + 1] - xs[col], ys[row + 1] - ys[row]))
    return tuple(boxes)
