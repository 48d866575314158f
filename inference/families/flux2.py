"""FLUX.2 [klein]: a flow-matching DiT on packed 32-channel latents with a Qwen3 text encoder.

The distilled klein models run at guidance 1 (the pipeline ignores guidance and the negative prompt for
them); the base models guide with classifier-free guidance above 1. diffusers has no klein image-to-image
pipeline: the inpainting one with an all-white mask is image to image (it also reads the source image as
reference tokens, which keeps variations closer to their source), so variations and creative upscales go
through it.
"""

from __future__ import annotations

from typing import Any

from diffusers import Flux2KleinInpaintPipeline, Flux2KleinPipeline
from PIL import Image

from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import FLOW_SCHEDULERS

__all__ = ["Flux2"]


class Flux2(Family):
    name = "flux2"
    text_to_image = Flux2KleinPipeline
    image_to_image = Flux2KleinInpaintPipeline
    inpaint = Flux2KleinInpaintPipeline
    schedulers = FLOW_SCHEDULERS

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        embeds, _text_ids = pipe.encode_prompt(
            prompt=texts, device=pipe._execution_device, num_images_per_prompt=1,
            max_sequence_length=self.capabilities.prompt_tokens,
        )
        return Encoded(embeds)

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": positive.embeds,
            "negative_prompt_embeds": None if negative is None else negative.embeds,
            "guidance_scale": spec.guidance_scale,
        }

    def image_to_image_kwargs(self, image: Image.Image, images: int) -> dict[str, Any]:
        """Image to image through the inpainting pipeline: a mask that repaints everything."""
        return {"mask_image": [Image.new("L", image.size, 255)] * images}
