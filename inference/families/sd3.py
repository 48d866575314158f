"""Stable Diffusion 3 / 3.5: a flow-matching MMDiT, CLIP-L + CLIP-G (pooled) + T5, classifier-free guidance."""

from __future__ import annotations

from typing import Any

from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline, StableDiffusion3Pipeline

from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import FLOW_SCHEDULERS

__all__ = ["SD3"]


class SD3(Family):
    name = "sd3"
    text_to_image = StableDiffusion3Pipeline
    image_to_image = StableDiffusion3Img2ImgPipeline
    inpaint = StableDiffusion3InpaintPipeline
    schedulers = FLOW_SCHEDULERS

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=texts, prompt_2=None, prompt_3=None, device=pipe._execution_device, num_images_per_prompt=1,
            do_classifier_free_guidance=False, max_sequence_length=self.capabilities.prompt_tokens,
        )
        return Encoded(embeds, pooled)

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": positive.embeds,
            "pooled_prompt_embeds": positive.pooled,
            "negative_prompt_embeds": None if negative is None else negative.embeds,
            "negative_pooled_prompt_embeds": None if negative is None else negative.pooled,
            "guidance_scale": spec.guidance_scale,
        }
