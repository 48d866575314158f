"""compose_grid and encode_for_upload (Pillow only)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference.grid import compose_grid, encode_for_upload


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_grid_is_twice_the_tile_and_keeps_order() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    grid = compose_grid([Image.new("RGB", (30, 20), c) for c in colours])
    assert grid.size == (60, 40)
    assert [grid.getpixel(p) for p in [(0, 0), (30, 0), (0, 20), (59, 39)]] == colours


def test_grid_refuses_mixed_sizes_and_nothing() -> None:
    with pytest.raises(ValueError, match="image 1 is 8x8"):
        compose_grid([Image.new("RGB", (4, 4)), Image.new("RGB", (8, 8))])
    with pytest.raises(ValueError):
        compose_grid([])


def smooth(size: tuple[int, int]) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(x, (size[1], 1))] * 3, axis=-1))


def test_png_when_it_fits() -> None:
    data, name = encode_for_upload(smooth((64, 64)), 1_000_000)
    assert name == "grid.png" and data.startswith(b"\x89PNG")


def test_lossy_when_the_png_is_too_large() -> None:
    image = noise((128, 128))
    png_size = len(encode_for_upload(image, 10**9)[0])
    data, name = encode_for_upload(image, png_size // 2)
    assert name in ("grid.webp", "grid.jpg") and len(data) <= png_size // 2
    assert Image.open(io.BytesIO(data)).size == (128, 128)  # quality went down, not the size


def test_downscaled_when_even_lossy_is_too_large() -> None:
    data, name = encode_for_upload(noise((256, 256)), 4_000, stem="u1")
    assert len(data) <= 4_000 and name.startswith("u1.")
    assert Image.open(io.BytesIO(data)).width < 256


def test_never_fails_on_an_impossible_limit() -> None:
    data, _ = encode_for_upload(noise((64, 64)), 10)
    assert data and Image.open(io.BytesIO(data)).width >= 16
