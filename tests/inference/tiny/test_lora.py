"""The tiny LoRAs load with diffusers' own LoRA loader and change the pixels; unloaded, the model is itself
again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.tiny import TINY_FLUX_LORA, TINY_SD_LORA
from tests.inference.tiny.checks import render


@pytest.mark.parametrize(
    ("folder", "pipeline", "weight_name", "kwargs"),
    [
        ("tiny-sd", "StableDiffusionPipeline", TINY_SD_LORA, {"guidance_scale": 7.0}),
        ("tiny-flux", "FluxPipeline", TINY_FLUX_LORA, {"guidance_scale": 3.5}),
    ],
)
def test_lora_changes_the_pixels_until_unloaded(
    tiny_dir: Path, folder: str, pipeline: str, weight_name: str, kwargs: dict[str, Any]
) -> None:
    import diffusers

    pipe = getattr(diffusers, pipeline).from_pretrained(tiny_dir / folder, local_files_only=True)
    plain = render(pipe, [1, 2, 3, 4], **kwargs)
    pipe.load_lora_weights(tiny_dir, weight_name=weight_name, adapter_name="tiny")
    assert pipe.get_list_adapters()  # the LoRA found its layers
    with_lora = render(pipe, [1, 2, 3, 4], **kwargs)
    change = np.abs(with_lora.astype(int) - plain).mean()
    assert change > 2, change
    pipe.unload_lora_weights()
    assert np.array_equal(plain, render(pipe, [1, 2, 3, 4], **kwargs))
