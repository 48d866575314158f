"""Stable Diffusion 1.x: a UNet on 4-channel latents, one CLIP-L text encoder, classifier-free guidance."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline

from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import SD_SCHEDULERS

__all__ = ["SD15"]


class SD15(Family):
    name = "sd15"
    text_to_image = StableDiffusionPipeline
    image_to_image = StableDiffusionImg2ImgPipeline
    inpaint = StableDiffusionInpaintPipeline
    schedulers = SD_SCHEDULERS
    image_to_image_takes_size = False

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        embeds, _ = pipe.encode_prompt(
            prompt=texts, device=pipe._execution_device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return Encoded(embeds)

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": positive.embeds,
            "negative_prompt_embeds": None if negative is None else negative.embeds,
            "guidance_scale": spec.guidance_scale,
        }

    def denoiser(self, pipe: Any) -> torch.nn.Module:
        return pipe.unet
