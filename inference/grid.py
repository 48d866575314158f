"""Grids and upload encoding. Pillow only: the bot imports this module, and it must not import torch."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, features

__all__ = ["LOSSLESS", "LOSSY_QUALITIES", "Encoded", "Encoding", "compose_grid", "encode_for_upload", "lossy_ladder",
           "pick_encoding"]


@dataclass(frozen=True, slots=True)
class Encoding:
    """One way to encode an upload: a Pillow format and its save options."""

    format: str
    lossless: bool
    quality: int | None = None
    compress_level: int | None = None

    @property
    def label(self) -> str:
        """``png-1``, ``jpeg-90``, ``webp-80``: what the benchmark table shows."""
        return f"{self.format.lower()}-{self.compress_level if self.lossless else self.quality}"

    @property
    def extension(self) -> str:
        return {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[self.format]

    def encode(self, image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        if self.format == "PNG":
            image.save(buffer, format="PNG", compress_level=self.compress_level)
        elif self.format == "JPEG":
            image.convert("RGB").save(buffer, format="JPEG", quality=self.quality)
        else:
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert("RGB")
            image.save(buffer, format="WEBP", quality=self.quality, method=0)
        return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Encoded:
    """The upload :func:`pick_encoding` chose: its bytes, how it was made and the pixel size it has."""

    data: bytes
    encoding: Encoding
    size: tuple[int, int]


#: Lossless first, fastest first: zlib level 1 takes about half the time of Pillow's default level 6 on a
#: 2048x2048 grid for ~10% more bytes (bench/encoding.py); 6 is tried when 1 does not fit. Level 0
#: (no compression) is faster still but 1.5x the bytes, which the member then waits to download.
LOSSLESS = (Encoding("PNG", lossless=True, compress_level=1), Encoding("PNG", lossless=True, compress_level=6))
#: Qualities tried, best first, when no lossless encoding fits.
LOSSY_QUALITIES = (90, 80, 70, 60, 50)
#: Each downscale step keeps this share of each side.
DOWNSCALE_STEP = 0.75
#: Quality used once downscaling starts.
DOWNSCALE_QUALITY = 75
#: Downscaling stops here; a limit too small even for this gets the smallest encoding made.
MIN_SIDE = 16


def lossy_ladder(quality: int) -> tuple[Encoding, ...]:
    """The lossy encodings at ``quality``, fastest first: JPEG (libjpeg-turbo: ~20 ms for 4 MP), then WebP
    (several times slower, a little smaller), when Pillow has it."""
    jpeg = Encoding("JPEG", lossless=False, quality=quality)
    return (jpeg, Encoding("WEBP", lossless=False, quality=quality)) if features.check("webp") else (jpeg,)


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
    """Encode ``image`` for a Discord upload of at most ``limit_bytes``; returns ``(data, filename)``
    (``<stem>.png``, ``.jpg`` or ``.webp``). See :func:`pick_encoding`."""
    encoded = pick_encoding(image, limit_bytes)
    return encoded.data, f"{stem}.{encoded.encoding.extension}"


def pick_encoding(image: Image.Image, limit_bytes: int) -> Encoded:
    """The fastest encoding of ``image`` that fits in ``limit_bytes``, keeping as much as fits.

    Tries, in order, until one fits: the :data:`LOSSLESS` PNGs; at each of :data:`LOSSY_QUALITIES`, the
    encodings of :func:`lossy_ladder`; then the same at :data:`DOWNSCALE_QUALITY` at ever smaller sizes
    (sides times :data:`DOWNSCALE_STEP`). Never raises for size: when even a :data:`MIN_SIDE` px image is
    over the limit (a limit of a few hundred bytes), the smallest encoding made is returned.
    """
    if limit_bytes <= 0:
        raise ValueError(f"limit_bytes must be positive, got {limit_bytes}")
    smallest: Encoded | None = None

    def fits(candidate: Image.Image, encoding: Encoding) -> Encoded | None:
        nonlocal smallest
        made = Encoded(encoding.encode(candidate), encoding, candidate.size)
        if smallest is None or len(made.data) < len(smallest.data):
            smallest = made
        return made if len(made.data) <= limit_bytes else None

    for encoding in LOSSLESS + tuple(e for quality in LOSSY_QUALITIES for e in lossy_ladder(quality)):
        if (made := fits(image, encoding)) is not None:
            return made
    scaled = image
    while min(scaled.size) > MIN_SIDE:
        width = max(MIN_SIDE, int(scaled.width * DOWNSCALE_STEP))
        height = max(MIN_SIDE, int(scaled.height * DOWNSCALE_STEP))
        scaled = image.resize((width, height), Image.Resampling.LANCZOS)
        for encoding in lossy_ladder(DOWNSCALE_QUALITY):
            if (made := fits(scaled, encoding)) is not None:
                return made
    assert smallest is not None
    return smallest
