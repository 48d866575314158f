"""Tiny Stable Diffusion XL: two CLIP text encoders (the second projected), a UNet with SDXL's
size-and-crop micro-conditioning, SD's VAE (×8)."""

from __future__ import annotations

from typing import Any

from inference.tiny.parts import TAESD, TEXT_WIDTH, autoencoder_kl, clip_text_encoder, sd_scheduler, seeded
from inference.tiny.tokenizers import clip_tokenizer

__all__ = ["build"]

FOLDER = "tiny-sdxl"
MODEL: dict[str, Any] = {
    "name": "tiny-xl",
    "width": 128,
    "height": 128,
    "steps": 8,
    "guidance": 5.0,
    "scheduler": "euler_a",
    "preview": TAESD,
    "description": "Tiny random-weight SDXL (noise, for tests)",
}

#: Width of each micro-conditioning number's embedding.
TIME_EMBED_DIM = 8


def build(seed: int = 0) -> Any:
    """A random-weight ``StableDiffusionXLPipeline``; the same ``seed`` gives the same weights."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    with seeded(seed):
        tokenizer = clip_tokenizer()
        tokenizer_2 = clip_tokenizer()
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED_DIM,
            transformer_layers_per_block=(1, 1),
            # six micro-conditioning numbers (sizes and crop) plus the pooled text embedding
            projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + TEXT_WIDTH,
            cross_attention_dim=2 * TEXT_WIDTH,
            norm_num_groups=32,
        )
        return StableDiffusionXLPipeline(
            vae=autoencoder_kl(scaling_factor=0.13025),
            text_encoder=clip_text_encoder(tokenizer),
            text_encoder_2=clip_text_encoder(tokenizer_2, with_projection=True),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=unet,
            scheduler=sd_scheduler(),
            add_watermarker=False,
        )
