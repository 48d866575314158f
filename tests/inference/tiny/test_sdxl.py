"""Tiny SDXL loads with StableDiffusionXLPipeline and runs text-to-image, image-to-image and inpainting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.tiny.checks import check_image_to_image, check_inpainting, check_text_to_image, render


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(tiny_dir / "tiny-sdxl", local_files_only=True)


def test_text_to_image_with_guidance_and_a_negative_prompt(pipe) -> None:
    guided = check_text_to_image(pipe, guidance_scale=5.0)
    assert not np.array_equal(guided, render(pipe, [1, 2, 3, 4], guidance_scale=5.0, negative_prompt=["blur"] * 4))


def test_image_to_image(pipe) -> None:
    from diffusers import StableDiffusionXLImg2ImgPipeline

    check_image_to_image(StableDiffusionXLImg2ImgPipeline.from_pipe(pipe), guidance_scale=5.0)


def test_inpainting(pipe) -> None:
    from diffusers import StableDiffusionXLInpaintPipeline

    # a 4-channel UNet: the pipeline blends the kept latents in at each step (no inpainting checkpoint needed)
    check_inpainting(StableDiffusionXLInpaintPipeline.from_pipe(pipe), guidance_scale=5.0)
