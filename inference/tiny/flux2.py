"""Tiny FLUX.2 [klein]-like (the distilled 4B kind): a Qwen3 causal LM whose hidden states of layers 9, 18 and
27 are stacked as the text, a double- then single-stream transformer, FLUX.2's 32-channel VAE whose latents are
patchified 2×2 (pixel multiple 16) and batch-normalised."""

from __future__ import annotations

from typing import Any

from inference.tiny.flux import flow_match_scheduler
from inference.tiny.parts import TEXT_WIDTH, qwen3_encoder, seeded
from inference.tiny.tokenizers import qwen_tokenizer

__all__ = ["LATENT_CHANNELS", "MAX_LENGTH", "TEXT_LAYERS", "build"]

FOLDER = "tiny-flux2"
MODEL: dict[str, Any] = {
    "name": "tiny-flux2",
    "width": 128,
    "height": 128,
    "steps": 4,
    "guidance": 1.0,  # distilled: the pipeline ignores guidance
    "scheduler": "euler",
    "description": "Tiny random-weight FLUX.2 [klein]-like (noise, for tests)",
}

LATENT_CHANNELS = 32
#: The klein pipeline's prompt token limit (``max_sequence_length``).
MAX_LENGTH = 512
#: The text encoder layers the klein pipeline stacks by default (``text_encoder_out_layers``): the tiny encoder
#: has that many layers, so the pipeline's defaults work unchanged.
TEXT_LAYERS = (9, 18, 27)


def build(seed: int = 0, *, distilled: bool = True) -> Any:
    """A random-weight ``Flux2KleinPipeline``; ``distilled=False`` is the base kind (real CFG with a negative
    prompt)."""
    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Transformer2DModel

    with seeded(seed):
        tokenizer = qwen_tokenizer(MAX_LENGTH)
        transformer = Flux2Transformer2DModel(
            patch_size=1,
            in_channels=4 * LATENT_CHANNELS,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=len(TEXT_LAYERS) * TEXT_WIDTH,
            timestep_guidance_channels=32,
            axes_dims_rope=(4, 4, 4, 4),  # sums to attention_head_dim
            guidance_embeds=False,
        )
        vae = AutoencoderKLFlux2(
            block_out_channels=(8, 16, 16, 16),  # four blocks: ×8, then the 2×2 patches
            layers_per_block=1,
            latent_channels=LATENT_CHANNELS,
            norm_num_groups=8,
            sample_size=32,
        )
        return Flux2KleinPipeline(
            scheduler=flow_match_scheduler(),
            vae=vae,
            text_encoder=qwen3_encoder(tokenizer, causal_lm=True, layers=max(TEXT_LAYERS)),
            tokenizer=tokenizer,
            transformer=transformer,
            is_distilled=distilled,
        )
