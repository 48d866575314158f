"""Tiny Stable Diffusion 1.x: one CLIP text encoder, a two-block UNet, SD's VAE (×8)."""

from __future__ import annotations

from typing import Any

from inference.tiny.parts import TAESD, TEXT_WIDTH, autoencoder_kl, clip_text_encoder, sd_scheduler, seeded
from inference.tiny.tokenizers import clip_tokenizer

__all__ = ["build"]

#: Its folder under the models folder, and its table in ``models.toml`` (the project's default model).
FOLDER = "tiny-sd"
MODEL: dict[str, Any] = {
    "name": "tiny",
    "aliases": ["t"],
    "width": 128,
    "height": 128,
    "steps": 8,
    "guidance": 7.0,
    "scheduler": "dpmpp_2m_karras",
    "preview": TAESD,
    "description": "Tiny random-weight SD 1.5 (noise, for tests)",
}


def tiny_unet() -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=4,
        norm_num_groups=32,
    )


def build(seed: int = 0) -> Any:
    """A random-weight ``StableDiffusionPipeline``; the same ``seed`` gives the same weights."""
    from diffusers import StableDiffusionPipeline

    with seeded(seed):
        tokenizer = clip_tokenizer()
        unet = tiny_unet()
        return StableDiffusionPipeline(
            vae=autoencoder_kl(scaling_factor=0.18215),
            text_encoder=clip_text_encoder(tokenizer),
            tokenizer=tokenizer,
            unet=unet,
            scheduler=sd_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
