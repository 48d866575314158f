"""Tiny Z-Image loads with ZImagePipeline and runs text-to-image, image-to-image and inpainting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.tiny.checks import check_image_to_image, check_inpainting, check_text_to_image, render


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import ZImagePipeline

    return ZImagePipeline.from_pretrained(tiny_dir / "tiny-zimage", local_files_only=True)


def test_text_to_image_turbo_without_guidance(pipe) -> None:
    turbo = check_text_to_image(pipe, guidance_scale=0.0)
    assert np.array_equal(turbo, render(pipe, [1, 2, 3, 4], guidance_scale=0.0, negative_prompt="blur"))
    # CFG (twice the cost); Z-Image wants one negative prompt per prompt, a lone string is refused
    guided = render(pipe, [1, 2, 3, 4], guidance_scale=2.0, negative_prompt=["blur"] * 4)
    assert not np.array_equal(turbo, guided)


def test_image_to_image(pipe) -> None:
    from diffusers import ZImageImg2ImgPipeline

    check_image_to_image(ZImageImg2ImgPipeline.from_pipe(pipe), guidance_scale=0.0)


def test_inpainting(pipe) -> None:
    from diffusers import ZImageInpaintPipeline

    check_inpainting(ZImageInpaintPipeline.from_pipe(pipe), guidance_scale=0.0)
