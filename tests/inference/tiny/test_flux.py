"""Tiny FLUX.1 loads with FluxPipeline and runs text-to-image, image-to-image and inpainting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.tiny.checks import check_image_to_image, check_inpainting, check_text_to_image, render


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import FluxPipeline

    return FluxPipeline.from_pretrained(tiny_dir / "tiny-flux", local_files_only=True)


def test_text_to_image(pipe) -> None:
    assert pipe.transformer.config.guidance_embeds  # [dev]-like: guidance is an input of the transformer
    low = check_text_to_image(pipe, guidance_scale=1.0)
    assert not np.array_equal(low, render(pipe, [1, 2, 3, 4], guidance_scale=3.5))


def test_negative_prompt_needs_true_cfg(pipe) -> None:
    plain = render(pipe, [1, 2, 3, 4])
    assert np.array_equal(plain, render(pipe, [1, 2, 3, 4], negative_prompt="blur"))  # ignored at true_cfg 1
    assert not np.array_equal(plain, render(pipe, [1, 2, 3, 4], negative_prompt="blur", true_cfg_scale=2.0))


def test_image_to_image(pipe) -> None:
    from diffusers import FluxImg2ImgPipeline

    check_image_to_image(FluxImg2ImgPipeline.from_pipe(pipe))


def test_inpainting(pipe) -> None:
    from diffusers import FluxInpaintPipeline

    check_inpainting(FluxInpaintPipeline.from_pipe(pipe))
