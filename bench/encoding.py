"""Row 5: a 2048x2048 grid as PNG (compress levels), WebP and JPEG: time and bytes; and what the bot uploads
(``inference.grid.pick_encoding``: the fastest encoding that fits the upload limit, lossless first).

The grid is four synthetic 1024x1024 "renders" (smooth shapes plus fine grain: random noise alone would
not compress at all, a flat colour far too well), tiled with ``inference.grid.compose_grid``.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from PIL import Image

from bench.common import Row, median
from inference.grid import LOSSLESS, compose_grid, lossy_ladder, pick_encoding

__all__ = ["measure", "row"]

MIB = 1024 * 1024


def render_like(side: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((side, side),
                                                                                       Image.Resampling.BICUBIC)
    detail = Image.fromarray(rng.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)).resize(
        (side, side), Image.Resampling.BICUBIC)
    mixed = np.asarray(coarse, np.float32) * 0.75 + np.asarray(detail, np.float32) * 0.25
    return Image.fromarray((mixed + rng.normal(0, 3, mixed.shape)).clip(0, 255).astype(np.uint8))


def _timed(encode: Any, runs: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(encode())
        times.append((time.perf_counter() - started) * 1000)
    return median(times), size


def measure(*, side: int = 2048, runs: int = 3) -> dict[str, Any]:
    grid = compose_grid([render_like(side // 2, seed) for seed in range(4)])
    candidates: list[tuple[str, Any]] = [
        ("png-0", lambda: _save(grid, "PNG", compress_level=0)),
        *[(e.label, lambda e=e: e.encode(grid)) for e in LOSSLESS],
        ("png-9", lambda: _save(grid, "PNG", compress_level=9)),
        ("webp-lossless", lambda: _save(grid, "WEBP", lossless=True, quality=0, method=0)),
        *[(e.label, lambda e=e: e.encode(grid)) for e in lossy_ladder(90)],
        ("webp-90-m4", lambda: _save(grid, "WEBP", quality=90, method=4)),
    ]
    encodings = []
    for label, encode in candidates:
        ms, size = _timed(encode, runs)
        encodings.append({"encoding": label, "ms": round(ms, 1), "bytes": size})
    lossless_sizes = [len(e.encode(grid)) for e in LOSSLESS]
    limits = {"25 MiB": 25 * MIB, "10 MiB (Discord's default)": 10 * MIB,
              "just under png-1": lossless_sizes[0] - 1, "just under png-6": lossless_sizes[1] - 1, "1 MiB": MIB,
              "256 KiB": 256 * 1024}
    choices = []
    for name, limit in limits.items():
        started = time.perf_counter()
        picked = pick_encoding(grid, limit)
        choices.append({"limit": name, "limit_bytes": limit, "chose": picked.encoding.label,
                        "bytes": len(picked.data), "size": list(picked.size),
                        "ms": round((time.perf_counter() - started) * 1000, 1)})
    return {"side": side, "runs": runs, "encodings": encodings, "choices": choices}


def _save(image: Image.Image, format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def row(figures: dict[str, Any]) -> Row:
    by_label = {e["encoding"]: e for e in figures["encodings"]}
    default = next(c for c in figures["choices"] if c["limit_bytes"] == 10 * MIB)
    # Met: at Discord's default limit the bot keeps every pixel, with the fastest compressing PNG level that
    # fits (level 0, no compression, is left out on purpose: 1.5x the bytes to upload and download).
    levels = [e for label, e in by_label.items() if label in ("png-1", "png-6", "png-9") and e["bytes"] <= 10 * MIB]
    fastest = min(levels, key=lambda e: e["ms"])["encoding"] if levels else None
    side = figures["side"]
    measured = (f"{side}x{side}: png-1 {by_label['png-1']['ms']:.0f} ms {by_label['png-1']['bytes'] / MIB:.1f} MiB, "
                f"png-6 {by_label['png-6']['ms']:.0f} ms {by_label['png-6']['bytes'] / MIB:.1f} MiB, jpeg-90 "
                f"{by_label['jpeg-90']['ms']:.0f} ms {by_label['jpeg-90']['bytes'] / MIB:.2f} MiB; at 10 MiB the bot "
                f"sends {default['chose']} ({default['ms']:.0f} ms)")
    details = [f"{'encoding':<15}{'ms':>9}{'MiB':>9}"]
    details += [f"{e['encoding']:<15}{e['ms']:>9.1f}{e['bytes'] / MIB:>9.2f}" for e in figures["encodings"]]
    details += [f"{'upload limit':<28}{'chosen':>10}{'MiB':>8}{'ms':>8}  pixels"]
    details += [f"{c['limit']:<28}{c['chose']:>10}{c['bytes'] / MIB:>8.2f}{c['ms']:>8.0f}  "
                f"{c['size'][0]}x{c['size'][1]}"
                for c in figures["choices"]]
    return Row(5, "image encoding of a grid, and the bot's choice", measured,
               "fastest encoding that fits, lossless first", default["chose"] == fastest, figures, details)
