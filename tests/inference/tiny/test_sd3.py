"""Tiny SD 3.5 loads with StableDiffusion3Pipeline and runs text-to-image, image-to-image and inpainting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.tiny.checks import check_image_to_image, check_inpainting, check_text_to_image, render


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import StableDiffusion3Pipeline

    return StableDiffusion3Pipeline.from_pretrained(tiny_dir / "tiny-sd3", local_files_only=True)


def test_text_to_image_with_guidance_and_a_negative_prompt(pipe) -> None:
    guided = check_text_to_image(pipe, guidance_scale=4.5)
    assert not np.array_equal(guided, render(pipe, [1, 2, 3, 4], guidance_scale=4.5, negative_prompt="blur"))
    assert not np.array_equal(guided, render(pipe, [1, 2, 3, 4], guidance_scale=1.0))


def test_image_to_image(pipe) -> None:
    from diffusers import StableDiffusion3Img2ImgPipeline

    check_image_to_image(StableDiffusion3Img2ImgPipeline.from_pipe(pipe), guidance_scale=4.5)


def test_inpainting(pipe) -> None:
    from diffusers import StableDiffusion3InpaintPipeline

    check_inpainting(StableDiffusion3InpaintPipeline.from_pipe(pipe), guidance_scale=4.5)
