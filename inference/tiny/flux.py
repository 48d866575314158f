"""Tiny FLUX.1 [dev]-like: CLIP (pooled) + T5 text encoders, an MMDiT transformer with guidance
embedding, a 16-channel VAE whose latents are packed 2×2 (pixel multiple 16)."""

from __future__ import annotations

from typing import Any

from inference.tiny.parts import TAESD_16, TEXT_WIDTH, autoencoder_kl, clip_text_encoder, seeded, t5_encoder
from inference.tiny.tokenizers import clip_tokenizer, t5_tokenizer

__all__ = ["LATENT_CHANNELS", "T5_MAX_LENGTH", "build", "flow_match_scheduler"]

FOLDER = "tiny-flux"
MODEL: dict[str, Any] = {
    "name": "tiny-flux",
    "width": 128,
    "height": 128,
    "steps": 8,
    "guidance": 3.5,  # distilled guidance, as FLUX.1 [dev]
    "scheduler": "euler",
    "preview": TAESD_16,
    "description": "Tiny random-weight FLUX.1 [dev]-like (noise, for tests)",
}

#: FLUX.1's VAE latent channels (the transformer sees 4× that after 2×2 packing).
LATENT_CHANNELS = 16
#: FLUX.1 [dev] reads up to 512 T5 tokens (schnell: 256).
T5_MAX_LENGTH = 512


def flow_match_scheduler() -> Any:
    """FLUX.1 [dev]'s scheduler: flow-matching Euler with the shift set from the image's token count."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )


def build(seed: int = 0, *, guidance_embeds: bool = True) -> Any:
    """A random-weight ``FluxPipeline``; ``guidance_embeds=False`` makes it [schnell]-like (no distilled guidance)."""
    from diffusers import FluxPipeline, FluxTransformer2DModel

    with seeded(seed):
        tokenizer = clip_tokenizer()
        tokenizer_2 = t5_tokenizer(T5_MAX_LENGTH)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=4 * LATENT_CHANNELS,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=TEXT_WIDTH,
            pooled_projection_dim=TEXT_WIDTH,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(4, 4, 8),  # sums to attention_head_dim
        )
        return FluxPipeline(
            scheduler=flow_match_scheduler(),
            vae=autoencoder_kl(
                scaling_factor=0.3611, shift_factor=0.1159, latent_channels=LATENT_CHANNELS, quant_convs=False
            ),
            text_encoder=clip_text_encoder(tokenizer),
            tokenizer=tokenizer,
            text_encoder_2=t5_encoder(tokenizer_2),
            tokenizer_2=tokenizer_2,
            transformer=transformer,
        )
