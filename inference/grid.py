"""Grids and upload encoding. Pillow only: the bot imports this module, and it must not import torch."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, features

__all__ = ["LOSSY_QUALITIES", "compose_grid", "encode_for_upload"]

#: Qualities tried, best first, when a PNG is over the upload limit.
LOSSY_QUALITIES = (90, 80, 70, 60, 50)
#: Each downscale step keeps this share of each side.
DOWNSCALE_STEP = 0.75
#: Quality used once downscaling starts.
DOWNSCALE_QUALITY = 75
#: Downscaling stops here; a limit too small even for this gets the smallest encoding made.
MIN_SIDE = 16


def compose_grid(images: Sequence[Image.Image], *, columns: int = 2) -> Image.Image:
    """Tile same-size ``images`` row by row, ``columns`` wide: four images make the 2x2 grid, exactly
    twice as wide and twice as high as one image. Cells without an image stay black."""
    if not images:
        raise ValueError("compose_grid needs at least one image, got none")
    size = images[0].size
    for index, image in enumerate(images):
        if image.size != size:
            raise ValueError(
                f"all images must be {size[0]}x{size[1]}, image {index} is {image.width}x{image.height}"
            )
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    width, height = size
    grid = Image.new("RGB", (columns * width, rows * height))
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid.paste(image.convert("RGB"), (column * width, row * height))
    return grid


def encode_for_upload(image: Image.Image, limit_bytes: int, *, stem: str = "grid") -> tuple[bytes, str]:
    """Encode ``image`` for a Discord upload of at most ``limit_bytes``; returns ``(data, filename)``.

    Tries, in order, until one fits: PNG (lossless); WebP (JPEG where Pillow lacks WebP) at each of
    :data:`LOSSY_QUALITIES`; the same lossy format at ever smaller sizes (sides times
    :data:`DOWNSCALE_STEP`). Never raises for size: when even a :data:`MIN_SIDE` px image is over the
    limit (a limit of a few hundred bytes), the smallest encoding made is returned.
    """
    if limit_bytes <= 0:
        raise ValueError(f"limit_bytes must be positive, got {limit_bytes}")

    png = _encode(image, "PNG")
    if len(png) <= limit_bytes:
        return png, f"{stem}.png"

    lossy = "WEBP" if features.check("webp") else "JPEG"
    filename = f"{stem}.{'webp' if lossy == 'WEBP' else 'jpg'}"
    smallest = png
    for quality in LOSSY_QUALITIES:
        data = _encode(image, lossy, quality)
        smallest = min(smallest, data, key=len)
        if len(data) <= limit_bytes:
            return data, filename

    scaled = image
    while min(scaled.size) > MIN_SIDE:
        width = max(MIN_SIDE, int(scaled.width * DOWNSCALE_STEP))
        height = max(MIN_SIDE, int(scaled.height * DOWNSCALE_STEP))
        scaled = image.resize((width, height), Image.Resampling.LANCZOS)
        data = _encode(scaled, lossy, DOWNSCALE_QUALITY)
        smallest = min(smallest, data, key=len)
        if len(data) <= limit_bytes:
            return data, filename
    return smallest, filename if smallest is not png else f"{stem}.png"


def _encode(image: Image.Image, format: str, quality: int | None = None) -> bytes:
    buffer = io.BytesIO()
    if format == "PNG":
        image.save(buffer, format="PNG")
    elif format == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGB")
        image.save(buffer, format=format, quality=quality, method=4)
    return buffer.getvalue()
