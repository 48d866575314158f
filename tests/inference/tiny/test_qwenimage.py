"""Tiny Qwen-Image loads with QwenImagePipeline and runs text-to-image, image-to-image and inpainting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.tiny.checks import check_image_to_image, check_inpainting, check_text_to_image, render


@pytest.fixture(scope="module")
def pipe(tiny_dir: Path):
    from diffusers import QwenImagePipeline

    return QwenImagePipeline.from_pretrained(tiny_dir / "tiny-qwenimage", local_files_only=True)


def test_text_to_image_with_true_cfg(pipe) -> None:
    plain = check_text_to_image(pipe)
    # true CFG needs a negative prompt; guidance_scale is for guidance-distilled models only
    assert np.array_equal(plain, render(pipe, [1, 2, 3, 4], true_cfg_scale=4.0))
    assert not np.array_equal(plain, render(pipe, [1, 2, 3, 4], true_cfg_scale=4.0, negative_prompt="blur"))


def test_image_to_image(pipe) -> None:
    from diffusers import QwenImageImg2ImgPipeline

    check_image_to_image(QwenImageImg2ImgPipeline.from_pipe(pipe))


def test_inpainting(pipe) -> None:
    from diffusers import QwenImageInpaintPipeline

    check_inpainting(QwenImageInpaintPipeline.from_pipe(pipe))
