"""Stable Diffusion XL: a UNet, two CLIP text encoders (token embeddings side by side, bigG's pooled one)."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)

from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import SD_SCHEDULERS

__all__ = ["SDXL"]


class SDXL(Family):
    name = "sdxl"
    text_to_image = StableDiffusionXLPipeline
    image_to_image = StableDiffusionXLImg2ImgPipeline
    inpaint = StableDiffusionXLInpaintPipeline
    schedulers = SD_SCHEDULERS
    image_to_image_takes_size = False

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=texts, device=pipe._execution_device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return Encoded(embeds, pooled)

    def encode_negative(self, pipe: Any, text: str) -> Encoded:
        """SDXL was trained with an all-zero negative for an empty one (``force_zeros_for_empty_prompt``)."""
        if not text and pipe.config.force_zeros_for_empty_prompt:
            positive = self.encode(pipe, [text])
            assert positive.pooled is not None
            return Encoded(torch.zeros_like(positive.embeds), torch.zeros_like(positive.pooled))
        return self.encode(pipe, [text])

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": positive.embeds,
            "pooled_prompt_embeds": positive.pooled,
            "negative_prompt_embeds": None if negative is None else negative.embeds,
            "negative_pooled_prompt_embeds": None if negative is None else negative.pooled,
            "guidance_scale": spec.guidance_scale,
        }

    def denoiser(self, pipe: Any) -> torch.nn.Module:
        return pipe.unet
