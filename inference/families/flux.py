"""FLUX.1: a flow-matching MMDiT on packed 16-channel latents, CLIP-L (pooled) + T5 text encoders.

FLUX.1 [dev] and [schnell] are guidance-distilled: ``guidance_scale`` is an input of the transformer (one
pass a step; [schnell] ignores it). ``--no`` therefore needs true classifier-free guidance
(``true_cfg_scale`` > 1 with negative embeddings), a second pass every step: see ``domain.capabilities``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FluxImg2ImgPipeline, FluxInpaintPipeline, FluxPipeline

from domain.capabilities import NEGATIVE_TRUE_CFG
from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import FLOW_SCHEDULERS

__all__ = ["Flux"]


class Flux(Family):
    name = "flux"
    text_to_image = FluxPipeline
    image_to_image = FluxImg2ImgPipeline
    inpaint = FluxInpaintPipeline
    schedulers = FLOW_SCHEDULERS

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        embeds, pooled, _text_ids = pipe.encode_prompt(
            prompt=texts, prompt_2=None, device=pipe._execution_device, num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length(pipe),
        )
        return Encoded(embeds, pooled)

    def max_sequence_length(self, pipe: Any) -> int:
        """T5 tokens read: the family's limit, or fewer when the model's tokenizer says so."""
        return min(self.capabilities.prompt_tokens, pipe.tokenizer_2.model_max_length)

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": positive.embeds,
            "pooled_prompt_embeds": positive.pooled,
            "negative_prompt_embeds": None if negative is None else negative.embeds,
            "negative_pooled_prompt_embeds": None if negative is None else negative.pooled,
            "true_cfg_scale": 1.0 if negative is None else NEGATIVE_TRUE_CFG,
            "guidance_scale": spec.guidance_scale,
        }

    def preview_latents(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """FLUX packs 2x2 latent patches into tokens: unpack them to an image of latents."""
        return pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor)
