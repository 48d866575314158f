"""Tiny random-weight models for tests, demos and smoke runs: real code paths, no downloads.

:func:`write_tiny_model` writes a folder that looks exactly like a real deployment's models folder::

    DIR/
      tiny-sd/              Stable Diffusion 1.x pipeline (save_pretrained layout), 128 px
      tiny-sdxl/            Stable Diffusion XL pipeline, same idea (two text encoders)
      tiny-taesd/           TAESD preview decoder (AutoencoderTiny)
      tiny-esrgan-x4.pth    Real-ESRGAN architecture (RRDBNet), x4, as spandrel loads it
      models.toml           the models file naming "tiny" as the default

The weights are random, so the pictures are noise; what matters is that every loader, scheduler and
decoder runs for real (``from_pretrained(path)``, ``ModelLoader().load_from_file``). The same ``seed``
writes the same weights. Building everything takes well under a second on a laptop CPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch

__all__ = ["write_tiny_model"]

#: Tiny CLIP text encoder width; SDXL concatenates two of them.
TEXT_WIDTH = 32
#: A few BPE merges so that tokens longer than one symbol exist.
MERGES = ("t h", "th e</w>", "o x</w>", "a n", "an d</w>", "c a", "ca t</w>")

MODELS_TOML = """\
# Tiny random-weight models written by inference.tiny.write_tiny_model (for tests and smoke runs).
default = "tiny"

[models.tiny]
source = "./tiny-sd"
family = "sd15"
aliases = ["t"]
width = 128
height = 128
steps = 8
guidance = 7.0
scheduler = "dpmpp_2m_karras"
preview = "./tiny-taesd"
upscaler = "./tiny-esrgan-x4.pth"
description = "Tiny random-weight SD 1.5 (noise, for tests)"

[models.tiny-xl]
source = "./tiny-sdxl"
family = "sdxl"
width = 128
height = 128
steps = 8
guidance = 5.0
scheduler = "euler_a"
preview = "./tiny-taesd"
upscaler = "./tiny-esrgan-x4.pth"
description = "Tiny random-weight SDXL (noise, for tests)"
"""


def write_tiny_model(dir: Path, *, seed: int = 0, sdxl: bool = True) -> Path:
    """Write the tiny models and a ``models.toml`` into ``dir``; returns the models file's path.

    Parameters
    ----------
    dir:
        Target folder; created if missing. Existing tiny models in it are overwritten.
    seed:
        Seeds every random weight: the same seed writes the same models.
    sdxl:
        Also write ``tiny-sdxl`` (about 0.3 s more). Without it, the ``tiny-xl`` entry is left out of
        the models file.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    with TemporaryDirectory() as tmp, _no_progress_bars():
        tokenizer_files = Path(tmp)
        _write_tokenizer_files(tokenizer_files)
        with _seeded(seed):
            _tiny_sd15(tokenizer_files).save_pretrained(dir / "tiny-sd")
        if sdxl:
            with _seeded(seed + 1):
                _tiny_sdxl(tokenizer_files).save_pretrained(dir / "tiny-sdxl")
    with _seeded(seed + 2):
        _tiny_taesd().save_pretrained(dir / "tiny-taesd")
    with _seeded(seed + 3):
        torch.save(_tiny_esrgan().state_dict(), dir / "tiny-esrgan-x4.pth")

    toml = MODELS_TOML if sdxl else MODELS_TOML.split("\n[models.tiny-xl]")[0]
    path = dir / "models.toml"
    path.write_text(toml, encoding="utf-8")
    return path


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator for a block, then put its state back (weights init from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bars for the block (then put the setting back)."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


# -- tokenizer --------------------------------------------------------------------------------------


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP byte-level alphabet: one printable unicode character per byte value."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def _write_tokenizer_files(folder: Path) -> None:
    """``vocab.json`` + ``merges.txt`` for a CLIP BPE tokenizer: the 256 byte symbols, each also as an
    end of word (``</w>``), a few merges, then the start and end tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(m.replace(" ", "") for m in MERGES)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", encoding="utf-8")


def _tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


def _text_encoder(tokenizer, *, with_projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=TEXT_WIDTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config) if with_projection else CLIPTextModel(config)


# -- pipelines --------------------------------------------------------------------------------------


def _vae(scaling_factor: float) -> Any:
    from diffusers import AutoencoderKL

    # Four blocks, so latents are 1/8 of the image side as in the real models.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,  # the tile size when vae tiling is on: small, so tests exercise tiling
        scaling_factor=scaling_factor,
    )


def _scheduler() -> Any:
    from diffusers import DPMSolverMultistepScheduler

    # The noise schedule of SD 1.5 / SDXL.
    return DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
        use_karras_sigmas=True,
    )


def _tiny_sd15(tokenizer_files: Path) -> Any:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    tokenizer = _tokenizer(tokenizer_files)
    unet = UNet2DConditionModel(
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
    return StableDiffusionPipeline(
        vae=_vae(0.18215),
        text_encoder=_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _tiny_sdxl(tokenizer_files: Path) -> Any:
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    tokenizer = _tokenizer(tokenizer_files)
    tokenizer_2 = _tokenizer(tokenizer_files)
    time_embed_dim = 8
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
        addition_time_embed_dim=time_embed_dim,
        transformer_layers_per_block=(1, 1),
        # six micro-conditioning numbers (sizes and crop) plus the pooled text embedding
        projection_class_embeddings_input_dim=6 * time_embed_dim + TEXT_WIDTH,
        cross_attention_dim=2 * TEXT_WIDTH,
        norm_num_groups=32,
    )
    return StableDiffusionXLPipeline(
        vae=_vae(0.13025),
        text_encoder=_text_encoder(tokenizer),
        text_encoder_2=_text_encoder(tokenizer_2, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_scheduler(),
        add_watermarker=False,
    )


def _tiny_taesd() -> Any:
    from diffusers import AutoencoderTiny

    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    )


def _tiny_esrgan() -> torch.nn.Module:
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(num_filters=8, num_blocks=1, scale=4)
