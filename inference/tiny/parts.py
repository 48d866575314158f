"""Modules several tiny families share: text encoders, VAEs, the preview decoder, the upscaler, seeding.

Widths are the smallest the libraries accept (heads, groups and rotary axes must divide them), so a
whole pipeline is a few hundred KB and renders in milliseconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = [
    "ESRGAN",
    "TAESD",
    "TAESD_16",
    "TEXT_WIDTH",
    "autoencoder_kl",
    "clip_text_encoder",
    "esrgan",
    "no_progress_bars",
    "qwen3_encoder",
    "sd_scheduler",
    "seeded",
    "sharpen_posterior",
    "t5_encoder",
    "taesd",
]

#: File names of the shared files next to the models, as ``models.toml`` names them.
TAESD = "tiny-taesd"
TAESD_16 = "tiny-taesd-16"
ESRGAN = "tiny-esrgan-x4.pth"
#: Hidden size of every tiny text encoder (CLIP, T5, the LLMs); SDXL concatenates two CLIPs.
TEXT_WIDTH = 32


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator for a block, then put its state back (weights init from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bars for the block (then put the setting back)."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def clip_text_encoder(tokenizer: Any, *, with_projection: bool = False) -> Any:
    """A two-layer CLIP text encoder over ``tokenizer``'s vocabulary (``with_projection``: SDXL's and SD 3's
    second kind, whose pooled output is projected)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=TEXT_WIDTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config) if with_projection else CLIPTextModel(config)


def t5_encoder(tokenizer: Any, *, width: int = TEXT_WIDTH) -> Any:
    """A two-layer T5 encoder (FLUX.1's and SD 3's long-prompt encoder) over ``tokenizer``'s vocabulary."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=width,
        d_ff=37,
        d_kv=8,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return T5EncoderModel(config)


def qwen3_encoder(tokenizer: Any, *, causal_lm: bool = False, layers: int = 2) -> Any:
    """A Qwen3 of ``layers`` layers (Z-Image's and FLUX.2 [klein]'s text encoder; ``causal_lm``: with the LM
    head, as klein's pipeline takes it); the pipelines read its hidden states."""
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=37,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return Qwen3ForCausalLM(config) if causal_lm else Qwen3Model(config)


def autoencoder_kl(
    *,
    scaling_factor: float,
    latent_channels: int = 4,
    shift_factor: float | None = None,
    quant_convs: bool = True,
) -> Any:
    """An ``AutoencoderKL`` with four blocks, so latents are 1/8 of the image side as in the real models.

    ``shift_factor`` and ``quant_convs=False`` are the SD 3 / FLUX.1 variant of the same autoencoder.
    Its posterior is made sharp (:func:`sharpen_posterior`): otherwise image-to-image and inpainting would
    depend on the generator's draw of the *source's* latents more than on anything asked.
    """
    from diffusers import AutoencoderKL

    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=32,  # the tile size when vae tiling is on: small, so tests exercise tiling
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=quant_convs,
        use_post_quant_conv=quant_convs,
    )
    sharpen_posterior(vae.quant_conv if quant_convs else vae.encoder.conv_out, latent_channels)
    return vae


def sharpen_posterior(moments: Any, latent_channels: int) -> None:
    """Make the encoder's last convolution ``moments`` (outputs: means, then log-variances) give every latent a
    near-zero variance, as a trained VAE's is; random weights would give them a spread as large as their values."""
    with torch.no_grad():
        moments.weight[latent_channels:] = 0.0
        moments.bias[latent_channels:] = -30.0  # the lowest log-variance diffusers keeps: std e^-15


def sd_scheduler() -> Any:
    """DPM++ 2M Karras on the noise schedule of SD 1.5 / SDXL."""
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
        use_karras_sigmas=True,
    )


def taesd(latent_channels: int = 4) -> Any:
    """A TAESD preview decoder (``AutoencoderTiny``); 16 latent channels is the SD 3 / FLUX.1 kind."""
    from diffusers import AutoencoderTiny

    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=latent_channels,
    )


def esrgan() -> torch.nn.Module:
    """Real-ESRGAN's architecture (RRDBNet), x4, as spandrel loads it back from a ``.pth``."""
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(num_filters=8, num_blocks=1, scale=4)
