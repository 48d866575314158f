"""Aspect ratios: ``--ar W:H`` to a width and height the model renders well.

The rule: both sides are whole numbers above 0 and the ratio lies between 1:4 (tall) and 4:1 (wide). The
image keeps the model's native pixel budget (512 x 512 for SD 1.5, 1024 x 1024 for SDXL), and each side is
the exact side rounded to the nearest multiple of 64, so ``--ar 16:9`` on SDXL is 1344 x 768.
"""

from __future__ import annotations

import itertools
import math
import re

__all__ = ["MAX_RATIO", "SIDE_STEP", "aspect_sizes", "parse_aspect", "size_for_aspect"]

#: Widest (and, upside down, tallest) ratio accepted: 4:1 and 1:4.
MAX_RATIO = 4
#: Both sides of every image are multiples of this (the VAE and UNet downsample by 8, then by 8 again).
SIDE_STEP = 64

_WHOLE = re.compile(r"(\d+):(\d+)")
_NUMBERISH = re.compile(r"[+-]?[\d.]*\d[\d.]*:[+-]?[\d.]*\d[\d.]*")
_ABOVE_ZERO = "both sides of the aspect ratio must be whole numbers above 0, like `--ar 16:9`."


def parse_aspect(value: str) -> tuple[int, int]:
    """Read ``W:H`` and return it reduced (``32:18`` gives ``(16, 9)``).

    Raises
    ------
    ValueError
        With a reason written for the user (no parameter name: the caller adds it).
    """
    match = _WHOLE.fullmatch(value)
    if match is None:
        if _NUMBERISH.fullmatch(value):
            raise ValueError(_ABOVE_ZERO)
        raise ValueError("write the aspect ratio as two whole numbers with a colon, like `--ar 16:9`.")
    width, height = int(match[1]), int(match[2])
    if width == 0 or height == 0:
        raise ValueError(_ABOVE_ZERO)
    if width > MAX_RATIO * height or height > MAX_RATIO * width:
        raise ValueError(
            f"the aspect ratio must be between 1:{MAX_RATIO} and {MAX_RATIO}:1, "
            "like `--ar 9:16` or `--ar 21:9`."
        )
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


def _round_side(exact: float) -> int:
    return max(SIDE_STEP, int(exact / SIDE_STEP + 0.5) * SIDE_STEP)


def size_for_aspect(width: int, height: int, pixel_budget: int) -> tuple[int, int]:
    """Width and height in pixels for a ``width:height`` ratio at about ``pixel_budget`` pixels.

    Each side is rounded to the nearest multiple of :data:`SIDE_STEP`, so the area stays near the budget
    and the ratio near the one asked for.
    """
    return _size_for_ratio(width / height, pixel_budget)


def _size_for_ratio(ratio: float, pixel_budget: int) -> tuple[int, int]:
    return _round_side(math.sqrt(pixel_budget * ratio)), _round_side(math.sqrt(pixel_budget / ratio))


def aspect_sizes(pixel_budget: int) -> list[tuple[int, int]]:
    """Every size :func:`size_for_aspect` gives at ``pixel_budget`` for any ratio ``--ar`` accepts, widest first.

    Each side is a step function of the ratio, changing where the exact side crosses a half step; between
    two such points (and at them) every ratio gives one size, so the sizes at the crossing points and
    between them are all there are (about 40 at 1024 x 1024). A worker with a compiled model draws each
    once when it starts.
    """
    low, high = 1 / MAX_RATIO, float(MAX_RATIO)
    crossings = {low, high}
    for k in range(int(math.sqrt(pixel_budget * high) / SIDE_STEP) + 2):
        edge = ((k + 0.5) * SIDE_STEP) ** 2 / pixel_budget  # the width's crossing; the height's is 1 / edge
        crossings.update(r for r in (edge, 1 / edge) if low <= r <= high)
    points = sorted(crossings)
    ratios = points + [(a + b) / 2 for a, b in itertools.pairwise(points)]
    return sorted({_size_for_ratio(r, pixel_budget) for r in ratios}, key=lambda size: (-size[0] / size[1], size))
