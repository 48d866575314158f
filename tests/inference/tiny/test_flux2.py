"""Tiny FLUX.2 [klein] loads with Flux2KleinPipeline and runs text-to-image and inpainting; diffusers has
no klein image-to-image class, and the inpainting one with an all-white mask is image-to-image (with the
source as a reference besides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.inference.tiny.checks import (
    SIDE,
    check_image_to_image,
    check_inpainting,
    check_text_to_image,
    mask,
    render,
    source_image,
)


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import Flux2KleinPipeline

    return Flux2KleinPipeline.from_pretrained(tiny_dir / "tiny-flux2", local_files_only=True)


@pytest.fixture(scope="module")
def inpaint(pipe):
    from diffusers import Flux2KleinInpaintPipeline

    return Flux2KleinInpaintPipeline.from_pipe(pipe)


def test_text_to_image_distilled_ignores_guidance(pipe) -> None:
    assert pipe.config.is_distilled
    first = check_text_to_image(pipe)
    assert np.array_equal(first, render(pipe, [1, 2, 3, 4], guidance_scale=4.0))


def test_inpainting(inpaint) -> None:
    check_inpainting(inpaint)


def test_inpainting_with_an_all_white_mask_is_image_to_image(inpaint) -> None:
    # the source is noised to the strength's timestep and the mask keeps nothing of it: image-to-image
    check_image_to_image(inpaint, mask_image=[mask(slice(0, SIDE))] * 4)
    # Unlike image-to-image, klein also reads the source's latents as reference tokens (in-context, as its edits
    # do; twice the image tokens): even at full strength, where the start is pure noise, the source shows.
    white = [mask(slice(0, SIDE))] * 4
    full = render(inpaint, [1, 2, 3, 4], image=[source_image()] * 4, mask_image=white, strength=1.0)
    other = [Image.new("RGB", (SIDE, SIDE), "white")] * 4
    assert not np.array_equal(full, render(inpaint, [1, 2, 3, 4], image=other, mask_image=white, strength=1.0))
