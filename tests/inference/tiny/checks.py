"""What every tiny family must do once loaded back from its folder: draw 4 seeded images, and run its
image-to-image and inpainting siblings on the same modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

#: Small and quick: 64 px (a multiple of every family's pixel multiple), 2 steps.
SIDE = 64
STEPS = 2
PROMPT = "a red fox in the snow"


def render(pipe: Any, seeds: Sequence[int], **kwargs: Any) -> np.ndarray:
    """Four images (one per seed, each with its own generator) as uint8 pixels, shape (4, SIDE, SIDE, 3)."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        prompt=[PROMPT] * len(seeds),
        height=SIDE,
        width=SIDE,
        num_inference_steps=STEPS,
        generator=generators,
        **kwargs,
    ).images
    assert [image.size for image in images] == [(SIDE, SIDE)] * len(seeds)
    return np.stack([np.asarray(image.convert("RGB")) for image in images])


def source_image() -> Image.Image:
    """A picture to start from: a left-to-right colour ramp (not noise, so a change is visible)."""
    ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (SIDE, 1)), np.tile(ramp[::-1], (SIDE, 1)), np.full((SIDE, SIDE), 96.0)], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def left_half_mask() -> Image.Image:
    """White (repaint) on the left half, black (keep) on the right."""
    mask = np.zeros((SIDE, SIDE), dtype=np.uint8)
    mask[:, : SIDE // 2] = 255
    return Image.fromarray(mask)


def check_text_to_image(pipe: Any, **kwargs: Any) -> np.ndarray:
    """Same seeds give the same pixels, other seeds other pixels, and the four images differ."""
    first = render(pipe, [1, 2, 3, 4], **kwargs)
    assert np.array_equal(first, render(pipe, [1, 2, 3, 4], **kwargs))
    other = render(pipe, [5, 6, 7, 8], **kwargs)
    for a, b in zip(first, other, strict=True):
        assert not np.array_equal(a, b)
    assert len({image.tobytes() for image in first}) == 4
    assert first.std() > 1  # noise from random weights, not a flat image
    return first


def check_image_to_image(pipe: Any, **kwargs: Any) -> None:
    """From the source at strength 0.75: seeded like text-to-image, and a lower strength changes the result."""
    image = [source_image()] * 4
    first = render(pipe, [1, 2, 3, 4], image=image, strength=0.75, **kwargs)
    assert np.array_equal(first, render(pipe, [1, 2, 3, 4], image=image, strength=0.75, **kwargs))
    assert not np.array_equal(first, render(pipe, [5, 6, 7, 8], image=image, strength=0.75, **kwargs))
    assert not np.array_equal(first, render(pipe, [1, 2, 3, 4], image=image, strength=0.5, **kwargs))


def check_inpainting(pipe: Any, **kwargs: Any) -> None:
    """Repainting the left half with other seeds changes the left half far more than the kept right edge."""
    image, mask = [source_image()] * 4, [left_half_mask()] * 4
    first = render(pipe, [1, 2, 3, 4], image=image, mask_image=mask, strength=1.0, **kwargs).astype(np.float32)
    other = render(pipe, [5, 6, 7, 8], image=image, mask_image=mask, strength=1.0, **kwargs).astype(np.float32)
    change = np.abs(first - other)
    repainted, kept = change[:, :, : SIDE // 2].mean(), change[:, :, -SIDE // 4 :].mean()
    assert repainted > 4 * kept, (repainted, kept)
