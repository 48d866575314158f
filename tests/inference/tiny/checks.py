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
#: Image-to-image runs ``int(steps * strength)`` of them: with 2, strength 0.75 would start from pure noise.
IMAGE_TO_IMAGE_STEPS = 4
PROMPT = "a red fox in the snow"


def render(pipe: Any, seeds: Sequence[int], *, steps: int = STEPS, **kwargs: Any) -> np.ndarray:
    """Four images (one per seed, each with its own generator) as uint8 pixels, shape (4, SIDE, SIDE, 3)."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        prompt=[PROMPT] * len(seeds),
        height=SIDE,
        width=SIDE,
        num_inference_steps=steps,
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


def mask(repaint: slice) -> Image.Image:
    """White (repaint) on the columns ``repaint``, black (keep) elsewhere."""
    pixels = np.zeros((SIDE, SIDE), dtype=np.uint8)
    pixels[:, repaint] = 255
    return Image.fromarray(pixels)


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
    """From the source at strength 0.75: seeded like text-to-image; another source or a lower strength
    changes the result."""
    image = [source_image()] * 4
    kwargs["steps"] = IMAGE_TO_IMAGE_STEPS
    first = render(pipe, [1, 2, 3, 4], image=image, strength=0.75, **kwargs)
    assert np.array_equal(first, render(pipe, [1, 2, 3, 4], image=image, strength=0.75, **kwargs))
    assert not np.array_equal(first, render(pipe, [5, 6, 7, 8], image=image, strength=0.75, **kwargs))
    assert not np.array_equal(first, render(pipe, [1, 2, 3, 4], image=image, strength=0.5, **kwargs))
    mirrored = [source_image().transpose(Image.Transpose.FLIP_LEFT_RIGHT)] * 4
    # (random decoders damp it: a mean change of 0.2-3 levels here, by family)
    assert not np.array_equal(first, render(pipe, [1, 2, 3, 4], image=mirrored, strength=0.75, **kwargs))


def check_inpainting(pipe: Any, **kwargs: Any) -> None:
    """The mask reaches the pipeline: with nothing to repaint (all black) the seed changes nothing (beyond
    rounding), since the latents are the source's at the last step; with the left half to repaint it does.

    (A random VAE decoder's receptive field and group norms span a whole 64 px picture, so the kept half's
    pixels are not compared with the source's.)
    """
    image = [source_image()] * 4

    def inpaint(seeds: list[int], repaint: slice) -> np.ndarray:
        return render(pipe, seeds, image=image, mask_image=[mask(repaint)] * 4, strength=1.0, **kwargs)

    kept = inpaint([1, 2, 3, 4], slice(0, 0))
    assert np.abs(kept.astype(int) - inpaint([5, 6, 7, 8], slice(0, 0))).max() <= 1
    repainted = inpaint([1, 2, 3, 4], slice(0, SIDE // 2))
    assert np.array_equal(repainted, inpaint([1, 2, 3, 4], slice(0, SIDE // 2)))
    assert not np.array_equal(repainted, inpaint([5, 6, 7, 8], slice(0, SIDE // 2)))
    assert not np.array_equal(repainted, kept)
