"""Tiny Z-Image (Turbo-like): a Qwen3 LLM text encoder (its second-to-last hidden states), a single-stream
DiT over 2×2 patches of FLUX.1's 16-channel VAE latents (pixel multiple 16), distilled: guidance 0."""

from __future__ import annotations

from typing import Any

from inference.tiny.flux import LATENT_CHANNELS
from inference.tiny.parts import TAESD_16, TEXT_WIDTH, autoencoder_kl, qwen3_encoder, seeded
from inference.tiny.tokenizers import qwen_tokenizer

__all__ = ["MAX_LENGTH", "build"]

FOLDER = "tiny-zimage"
MODEL: dict[str, Any] = {
    "name": "tiny-zimage",
    "width": 128,
    "height": 128,
    "steps": 4,
    "guidance": 0.0,  # Turbo is distilled: classifier-free guidance off
    "scheduler": "euler",
    "preview": TAESD_16,
    "description": "Tiny random-weight Z-Image Turbo-like (noise, for tests)",
}

#: Z-Image's prompt token limit (the pipeline's ``max_sequence_length``).
MAX_LENGTH = 512


def build(seed: int = 0) -> Any:
    """A random-weight ``ZImagePipeline``; the same ``seed`` gives the same weights."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel

    with seeded(seed):
        tokenizer = qwen_tokenizer(MAX_LENGTH)
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,),
            all_f_patch_size=(1,),
            in_channels=LATENT_CHANNELS,
            dim=32,
            n_layers=1,
            n_refiner_layers=1,
            n_heads=2,
            n_kv_heads=2,
            cap_feat_dim=TEXT_WIDTH,
            axes_dims=[4, 6, 6],  # sums to dim / n_heads
            axes_lens=[1024, 128, 128],  # caption tokens; patches per side (up to 2048 px)
        )
        return ZImagePipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=autoencoder_kl(
                scaling_factor=0.3611, shift_factor=0.1159, latent_channels=LATENT_CHANNELS, quant_convs=False
            ),
            text_encoder=qwen3_encoder(tokenizer),
            tokenizer=tokenizer,
            transformer=transformer,
        )
