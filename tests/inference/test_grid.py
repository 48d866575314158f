"""compose_grid and encode_for_upload (Pillow only)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference.grid import LOSSLESS, compose_grid, encode_for_upload, lossy_ladder, pick_encoding


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


def photo(side: int, seed: int = 0) -> Image.Image:
    """Smooth shapes with fine grain, like a rendered picture (noise alone does not compress)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    coarse = coarse.resize((side, side), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 3, (side, side, 3))
    return Image.fromarray((np.asarray(coarse, dtype=np.float64) + grain).clip(0, 255).astype(np.uint8))


def test_the_fastest_lossless_png_when_it_fits() -> None:
    image = photo(256)
    fast, small = LOSSLESS[0].encode(image), LOSSLESS[1].encode(image)
    assert len(small) < len(fast)  # level 6 packs tighter; level 1 is the faster one

    data, name = encode_for_upload(image, len(fast))
    assert name == "grid.png" and data == fast
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image))  # every pixel kept

    data, name = encode_for_upload(image, len(fast) - 1)  # level 1 is one byte too many: level 6, still lossless
    assert name == "grid.png" and data == small
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image))


def test_jpeg_before_webp_when_no_png_fits() -> None:
    image = photo(256)
    jpeg, webp = lossy_ladder(90)[0], lossy_ladder(90)[-1]
    jpeg_bytes = jpeg.encode(image)
    picked = pick_encoding(image, len(jpeg_bytes))
    assert picked.encoding == jpeg and picked.data == jpeg_bytes and picked.size == (256, 256)
    decoded = np.asarray(Image.open(io.BytesIO(picked.data)).convert("RGB"), dtype=np.int16)
    assert np.abs(decoded - np.asarray(image, dtype=np.int16)).mean() < 4  # quality 90: close to the original

    webp_bytes = webp.encode(image)
    if webp.format == "WEBP" and len(webp_bytes) < len(jpeg_bytes):  # WebP at the same quality, when smaller
        picked = pick_encoding(image, len(webp_bytes))
        assert picked.encoding == webp and picked.data == webp_bytes
