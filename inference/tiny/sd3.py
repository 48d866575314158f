"""Tiny Stable Diffusion 3.5 (Medium-like): two projected CLIP encoders + T5, an MMDiT transformer with
QK-norm and one dual-attention layer, a 16-channel VAE, patches of 2×2 latents (pixel multiple 16)."""

from __future__ import annotations

from typing import Any

from inference.tiny.parts import TAESD_16, TEXT_WIDTH, autoencoder_kl, clip_text_encoder, seeded, t5_encoder
from inference.tiny.tokenizers import clip_tokenizer, t5_tokenizer

__all__ = ["LATENT_CHANNELS", "T5_MAX_LENGTH", "build"]

FOLDER = "tiny-sd3"
MODEL: dict[str, Any] = {
    "name": "tiny-sd3",
    "width": 128,
    "height": 128,
    "steps": 8,
    "guidance": 4.5,
    "scheduler": "euler",
    "preview": TAESD_16,
    "description": "Tiny random-weight Stable Diffusion 3.5 (noise, for tests)",
}

LATENT_CHANNELS = 16
#: SD 3 reads up to 512 T5 tokens (its pipeline's default is 256).
T5_MAX_LENGTH = 512
#: The two CLIP outputs side by side; T5's width must be at least that (the CLIP part is zero-padded to it).
JOINT_WIDTH = 2 * TEXT_WIDTH


def build(seed: int = 0) -> Any:
    """A random-weight ``StableDiffusion3Pipeline``; the same ``seed`` gives the same weights."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    with seeded(seed):
        tokenizer, tokenizer_2, tokenizer_3 = clip_tokenizer(), clip_tokenizer(), t5_tokenizer(T5_MAX_LENGTH)
        transformer = SD3Transformer2DModel(
            sample_size=16,  # 128 px / 8
            patch_size=2,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=JOINT_WIDTH,
            caption_projection_dim=32,
            pooled_projection_dim=2 * TEXT_WIDTH,  # both CLIPs' pooled outputs
            pos_embed_max_size=64,  # patches per side: images up to 1024 px
            dual_attention_layers=(0,),
            qk_norm="rms_norm",
        )
        return StableDiffusion3Pipeline(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=autoencoder_kl(
                scaling_factor=1.5305, shift_factor=0.0609, latent_channels=LATENT_CHANNELS, quant_convs=False
            ),
            text_encoder=clip_text_encoder(tokenizer, with_projection=True),
            tokenizer=tokenizer,
            text_encoder_2=clip_text_encoder(tokenizer_2, with_projection=True),
            tokenizer_2=tokenizer_2,
            text_encoder_3=t5_encoder(tokenizer_3, width=JOINT_WIDTH),
            tokenizer_3=tokenizer_3,
        )
