"""Tiny SD 1.5 loads with StableDiffusionPipeline and runs text-to-image, image-to-image and inpainting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.tiny.checks import check_image_to_image, check_inpainting, check_text_to_image, render


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(tiny_dir / "tiny-sd", local_files_only=True)


def test_text_to_image_with_guidance_and_a_negative_prompt(pipe) -> None:
    guided = check_text_to_image(pipe, guidance_scale=7.0)
    assert not np.array_equal(guided, render(pipe, [1, 2, 3, 4], guidance_scale=7.0, negative_prompt=["blur"] * 4))


def test_image_to_image(pipe) -> None:
    from diffusers import StableDiffusionImg2ImgPipeline

    check_image_to_image(StableDiffusionImg2ImgPipeline.from_pipe(pipe), guidance_scale=7.0)


def test_inpainting(pipe) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    # a 4-channel UNet: the pipeline blends the kept latents in at each step (no inpainting checkpoint needed)
    check_inpainting(StableDiffusionInpaintPipeline.from_pipe(pipe), guidance_scale=7.0)
