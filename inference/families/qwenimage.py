"""Qwen-Image: a flow-matching MMDiT on packed 16-channel latents with a Qwen2.5-VL text encoder.

Qwen-Image is not guidance-distilled: it guides with "true" classifier-free guidance (``true_cfg_scale``,
which is the job's guidance here) and needs a negative embedding for it, so a guided job always passes one
(the house style, or an empty prompt with ``--style raw``). ``guidance_scale`` is for guidance-distilled
variants only and is left out.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import QwenImageImg2ImgPipeline, QwenImageInpaintPipeline, QwenImagePipeline

from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import FLOW_SCHEDULERS

__all__ = ["QwenImage"]


class QwenImage(Family):
    name = "qwenimage"
    text_to_image = QwenImagePipeline
    image_to_image = QwenImageImg2ImgPipeline
    inpaint = QwenImageInpaintPipeline
    schedulers = FLOW_SCHEDULERS

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        embeds, mask = pipe.encode_prompt(
            prompt=texts, device=pipe._execution_device, num_images_per_prompt=1,
            max_sequence_length=self.capabilities.prompt_tokens,
        )
        return Encoded(embeds, mask=None if mask is None else mask.bool())

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": positive.embeds,
            "prompt_embeds_mask": _mask(positive),
            "negative_prompt_embeds": None if negative is None else negative.embeds,
            "negative_prompt_embeds_mask": None if negative is None else _mask(negative),
            "true_cfg_scale": 1.0 if negative is None else spec.guidance_scale,
        }

    def preview_latents(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Qwen-Image packs 2x2 latent patches into tokens (and keeps a frame axis): unpack to an image."""
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)[:, :, 0]


def _mask(encoded: Encoded) -> torch.Tensor | None:
    """The pipeline's mask (integers; none when every token is real)."""
    if encoded.mask is None or bool(encoded.mask.all()):
        return None
    return encoded.mask.long()
