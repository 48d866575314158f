"""Seconds per 4-image grid through the worker's own inference path, with random full-size weights.

For each model family (SD 1.5 at 512 px, SDXL at 1024 px) the bench

1. writes a random-weight pipeline built from the published full-size configs (UNet, VAE, CLIP text
   encoders; the tokenizer is the tiny byte-level one of ``inference.tiny``: tokenizing costs nothing)
   into a temp dir with ``save_pretrained``; ``--tiny`` writes ``inference.tiny.write_tiny_model``'s
   models instead (a CPU smoke test, not a speed figure);
2. loads it back through :class:`inference.pipelines.PipelineCache` (timed), as a worker does: bf16 on
   CUDA, float32 on the CPU;
3. renders grids with :func:`inference.pipelines.render_grid`, exactly what a job runs: 4 images in one
   batch, classifier-free guidance, the configured sampler, PIL images out. One warm-up grid, then
   ``--runs`` timed ones (median, p90, images/s, peak GPU memory);
4. repeats that for variants side by side on the same loaded pipeline: ``channels_last`` UNet and VAE,
   ``batch1x4`` (the four images as four one-image jobs), and with ``--compile`` a ``torch.compile``d UNet;
5. counts the FLOPs of one grid with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device
   (one UNet forward and one VAE decode per image at the bench's size, multiplied out) and reports the
   achieved TFLOP/s as a share of the bf16 limit (790 TFLOP/s, an H100/H200's measured matrix rate).

Weights are random, so the pictures are noise; the compute is that of the real models.

    python bench/render_grid.py --models sd15,sdxl --runs 5 --json render.json --budget-s 480
    python bench/render_grid.py --tiny --steps 2 --runs 1 --device cpu     # smoke test, not a speed claim
    python bench/render_grid.py --flops-only                               # params and FLOPs, no weights

docs/benchmarks.md says what each number means and how to run this on a lent GPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.flop_counter import FlopCounterMode

from domain.capabilities import CAPABILITIES
from domain.catalog import SCHEDULERS, ModelPreset
from domain.spec import GRID_SIZE, JobSpec, image_seed
from inference.pipelines import PipelineCache, render_grid

#: bf16 dense matrix rate measured on the lent H100 and H200 (8192³ products, random data), TFLOP/s.
PEAK_TFLOPS_BF16 = 790.0
#: UNet parameters of the real checkpoints, in millions: the full-size configs must give exactly these.
PUBLISHED_UNET_PARAMS_M = {"sd15": 859.52, "sdxl": 2567.46, "flux": 11901.41, "zimage": 6154.91}
#: The UNet families; the others are DiTs (a transformer on packed latent patches).
UNET_FAMILIES = ("sd15", "sdxl")
PROMPT = "a red fox in fresh snow at golden hour, 35mm photograph"
SEED = 1234
GUIDANCE = 7.0
#: Side of the tiny models' pictures (their models file's width and height).
TINY_SIDE = 128
#: Variants in the order they run; "compile" only with --compile.
VARIANTS = ("default", "channels_last", "batch1x4", "compile")
#: Variants that load the model again with other settings (after the ones above, on a fresh cache).
LOADED_VARIANTS = ("diffusers", "fastpath", "offload-model", "offload-sequential", "quantize-fp8")
#: Memory modes (issue 8) measured on the DiT families only (SD fits any card).
MEMORY_VARIANTS = ("offload-model", "offload-sequential", "quantize-fp8")
VARIANT_DESCRIPTIONS = {
    "diffusers": "plain diffusers defaults: fp32 for the SD UNets (the DiTs' default is bf16, as the worker's)",
    "fastpath": "the models file's fastpath = \"quality\" (+ fp8 compute on 8.9+ cards; no compile on a CPU); "
                "warm-up includes compiling",
    "offload-model": "offload = \"model\": each component on the card only while it runs",
    "offload-sequential": "offload = \"sequential\": one layer at a time",
    "quantize-fp8": "quantize = \"fp8\": torchao fp8 weight-only denoiser",
    "default": "what the worker runs: one batch of 4, SDPA attention, default memory format",
    "channels_last": "UNet and VAE in channels_last memory format",
    "batch1x4": "the 4 images as 4 one-image jobs, one after another",
    "compile": "UNet wrapped in torch.compile (compile time is in warmup_s)",
}
#: Rough compile time of the full-size SD 1.5 UNet, scaled by parameters for others (a guess, for the budget).
COMPILE_GUESS_S = 90.0


# -- full-size configs (public facts: the published models' config.json files) -------------------------

#: Keyword arguments of a module's or config's constructor, as in a published ``config.json``.
ConfigArgs = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FamilyConfig:
    """Constructor arguments of one family's modules: ``UNet2DConditionModel``, ``AutoencoderKL``,
    ``CLIPTextConfig`` of the first text encoder and, for SDXL, of the second (with projection)."""

    unet: ConfigArgs
    vae: ConfigArgs
    text: ConfigArgs
    text_2: ConfigArgs | None = None


_VAE: ConfigArgs = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
}
_CLIP_L: ConfigArgs = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
_CLIP_BIG_G: ConfigArgs = {
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}

FULL_SIZE: dict[str, FamilyConfig] = {
    "sd15": FamilyConfig(
        unet={
            "sample_size": 64,
            "in_channels": 4,
            "out_channels": 4,
            "layers_per_block": 2,
            "block_out_channels": (320, 640, 1280, 1280),
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
        },
        vae={**_VAE, "sample_size": 512, "scaling_factor": 0.18215},
        text=_CLIP_L,
    ),
    "sdxl": FamilyConfig(
        unet={
            "sample_size": 128,
            "in_channels": 4,
            "out_channels": 4,
            "layers_per_block": 2,
            "block_out_channels": (320, 640, 1280),
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            "attention_head_dim": (5, 10, 20),
            "transformer_layers_per_block": (1, 2, 10),
            "cross_attention_dim": 2048,
            "use_linear_projection": True,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
        },
        vae={**_VAE, "sample_size": 1024, "scaling_factor": 0.13025},
        text=_CLIP_L,
        text_2=_CLIP_BIG_G,
    ),
}


#: FLUX.1's and Z-Image's VAE (16 latent channels, no quant convs).
_VAE_16: ConfigArgs = {**_VAE, "latent_channels": 16, "use_quant_conv": False, "use_post_quant_conv": False,
                       "scaling_factor": 0.3611, "shift_factor": 0.1159}
_T5_XXL: ConfigArgs = {"vocab_size": 32128, "d_model": 4096, "d_ff": 10240, "d_kv": 64, "num_heads": 64,
                       "num_layers": 24, "feed_forward_proj": "gated-gelu", "pad_token_id": 0, "eos_token_id": 1,
                       "decoder_start_token_id": 0}
_QWEN3_4B: ConfigArgs = {"vocab_size": 151936, "hidden_size": 2560, "intermediate_size": 9728,
                         "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                         "max_position_embeddings": 40960, "rope_theta": 1000000.0, "tie_word_embeddings": True}


@dataclass(frozen=True, slots=True)
class DitConfig:
    """A DiT family's full-size transformer, VAE and text encoder configs, and its defaults."""

    transformer: ConfigArgs
    vae: ConfigArgs
    steps: int
    guidance: float
    #: Denoiser passes per step: 1 for guidance-distilled FLUX.1 and Z-Image Turbo at guidance 0.
    passes: int = 1
    #: Text tokens the transformer attends to (FLUX.1 [dev]: 512 T5 tokens; Z-Image: up to 512).
    text_tokens: int = 512


DIT_FULL_SIZE: dict[str, DitConfig] = {
    "flux": DitConfig(  # black-forest-labs/FLUX.1-dev transformer/config.json
        transformer={"patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38,
                     "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
                     "pooled_projection_dim": 768, "guidance_embeds": True, "axes_dims_rope": (16, 56, 56)},
        vae={**_VAE_16, "sample_size": 1024}, steps=28, guidance=3.5,
    ),
    "zimage": DitConfig(  # Tongyi-MAI/Z-Image-Turbo transformer/config.json
        transformer={"all_patch_size": (2,), "all_f_patch_size": (1,), "in_channels": 16, "dim": 3840,
                     "n_layers": 30, "n_refiner_layers": 2, "n_heads": 30, "n_kv_heads": 30, "norm_eps": 1e-5,
                     "qk_norm": True, "cap_feat_dim": 2560, "rope_theta": 256.0, "t_scale": 1000.0,
                     "axes_dims": [32, 48, 48], "axes_lens": [1536, 512, 512]},
        vae={**_VAE_16, "sample_size": 1024}, steps=8, guidance=0.0,
    ),
}
FAMILIES = (*FULL_SIZE, *DIT_FULL_SIZE)


def denoiser_key(family: str) -> str:
    return "unet" if family in UNET_FAMILIES else "transformer"


def build_dit_components(family: str, *, device: str | torch.device, dtype: torch.dtype | None = None,
                         token_ids: dict[str, int] | None = None) -> dict[str, torch.nn.Module]:
    """``family``'s full-size transformer, VAE and text encoders, random weights, on ``device``; each is cast
    to ``dtype`` as soon as it is built (the FLUX.1 transformer alone is 48 GB in float32)."""
    # From diffusers.models, not diffusers: to mypy the top-level names are the torch-less placeholders
    # (diffusers.utils.dummy_pt_objects), which are no torch.nn.Module.
    from diffusers.models import AutoencoderKL, FluxTransformer2DModel, ZImageTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, Qwen3Config, Qwen3Model, T5Config, T5EncoderModel

    config = DIT_FULL_SIZE[family]
    ids: dict[str, Any] = {f"{name}_token_id": value for name, value in (token_ids or {}).items()}
    cls = FluxTransformer2DModel if family == "flux" else ZImageTransformer2DModel
    builders: dict[str, Callable[[], torch.nn.Module]] = {
        "transformer": lambda: cls(**config.transformer),
        "vae": lambda: AutoencoderKL(**config.vae),
    }
    if family == "flux":
        builders["text_encoder"] = lambda: CLIPTextModel(CLIPTextConfig(**_CLIP_L, **ids))
        builders["text_encoder_2"] = lambda: T5EncoderModel(T5Config(**_T5_XXL))
    else:
        builders["text_encoder"] = lambda: Qwen3Model(Qwen3Config(**_QWEN3_4B))
    parts: dict[str, torch.nn.Module] = {}
    with torch.device(device):
        for name, build in builders.items():
            module = build()
            parts[name] = module.to(dtype) if dtype is not None else module
    return parts


def build_components(family: str, config: FamilyConfig, *, device: str | torch.device,
                     token_ids: dict[str, int] | None = None) -> dict[str, torch.nn.Module]:
    """The UNet, VAE and text encoder(s) of ``config``, random weights, created on ``device``
    (``"meta"``: shapes only, no memory). ``token_ids``: bos/eos/pad ids of the tokenizer they go with."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    ids: dict[str, Any] = {f"{name}_token_id": value for name, value in (token_ids or {}).items()}
    with torch.device(device):
        parts: dict[str, Any] = {
            "unet": UNet2DConditionModel(**config.unet),
            "vae": AutoencoderKL(**config.vae),
            "text_encoder": CLIPTextModel(CLIPTextConfig(**config.text, **ids)),
        }
        if family == "sdxl":
            if config.text_2 is None:
                raise ValueError("an sdxl FamilyConfig needs text_2 (the second text encoder)")
            parts["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig(**config.text_2, **ids))
    return parts


def write_random_pipeline(family: str, folder: Path, *, config: FamilyConfig, device: str | torch.device,
                          dtype: torch.dtype, seed: int = 0) -> Path:
    """Build ``config``'s modules with random weights on ``device``, cast them to ``dtype`` and
    ``save_pretrained`` the whole pipeline into ``folder``; returns ``folder``. (DiT families:
    :func:`write_random_dit_pipeline`.)"""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    # The tiny byte-level CLIP tokenizer of inference.tiny: the text encoders read 77 token ids whatever
    # the vocabulary, so tokenizing is not what is measured.
    from inference.tiny.tokenizers import clip_tokenizer

    tokenizer = clip_tokenizer()
    token_ids = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
    torch.manual_seed(seed)
    parts = build_components(family, config, device=device, token_ids=token_ids)
    for module in parts.values():
        module.to(dtype)
    # The SD 1.5 / SDXL noise schedule; each job installs its own sampler from this config.
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading",
    )
    pipe: Any
    if family == "sdxl":
        pipe = StableDiffusionXLPipeline(
            **parts, tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=scheduler, add_watermarker=False
        )
    else:
        pipe = StableDiffusionPipeline(
            **parts, tokenizer=tokenizer, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.save_pretrained(folder)
    return folder


def write_random_dit_pipeline(family: str, folder: Path, *, device: str | torch.device, dtype: torch.dtype,
                              seed: int = 0) -> Path:
    """:func:`write_random_pipeline` for FLUX.1 and Z-Image, with the tiny tokenizers of ``inference.tiny``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, ZImagePipeline

    from inference.tiny.flux import flow_match_scheduler
    from inference.tiny.tokenizers import clip_tokenizer, qwen_tokenizer, t5_tokenizer

    torch.manual_seed(seed)
    pipe: Any
    if family == "flux":
        tokenizer = clip_tokenizer()
        ids = {"bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
        parts = build_dit_components(family, device=device, dtype=dtype, token_ids=ids)
        pipe = FluxPipeline(scheduler=flow_match_scheduler(), tokenizer=tokenizer, tokenizer_2=t5_tokenizer(512),
                            **parts)
    else:
        parts = build_dit_components(family, device=device, dtype=dtype)
        pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), tokenizer=qwen_tokenizer(512),
                              **parts)
    pipe.save_pretrained(folder)
    del pipe, parts
    return folder


def meta_components_from_folder(family: str, folder: Path) -> dict[str, torch.nn.Module]:
    """The modules of a saved pipeline, rebuilt from its configs on the meta device (no weights)."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoConfig, AutoModel, CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if family not in UNET_FAMILIES:
        cls = diffusers.FluxTransformer2DModel if family == "flux" else diffusers.ZImageTransformer2DModel
        with torch.device("meta"):
            dit: dict[str, torch.nn.Module] = {
                "transformer": cls.from_config(cls.load_config(folder / "transformer")),
                "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
            }
            for name in ("text_encoder", "text_encoder_2"):
                if (folder / name).is_dir():
                    dit[name] = AutoModel.from_config(AutoConfig.from_pretrained(folder / name))
        return dit

    with torch.device("meta"):
        parts: dict[str, torch.nn.Module] = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")),
        }
        if family == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(folder / "text_encoder_2")
            )
    return parts


# -- FLOPs ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Flops:
    """FLOPs of one grid: ``steps`` UNet forwards of ``2 * images`` samples (classifier-free guidance),
    then one VAE decode per image. Text encoding (under 0.1 TFLOP a prompt) is left out."""

    #: One forward of the denoiser (the UNet, or a DiT's transformer) for one image.
    unet_forward_per_image: float
    vae_decode_per_image: float
    steps: int
    images: int
    source: str = "torch.utils.flop_counter.FlopCounterMode on the meta device, at the bench's size"
    #: Denoiser passes per step: 2 with classifier-free guidance, 1 for the distilled DiTs.
    passes: int = 2

    @property
    def grid(self) -> float:
        return (self.steps * self.passes * self.images * self.unet_forward_per_image
                + self.images * self.vae_decode_per_image)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grid": self.grid}


def count_flops(family: str, parts: dict[str, torch.nn.Module], *, width: int, height: int, steps: int,
                images: int) -> Flops:
    """Count one UNet forward and one VAE decode of one image with ``FlopCounterMode``; ``parts`` may
    (and for full-size models should) live on the meta device. DiTs: :func:`count_dit_flops`."""
    if family not in UNET_FAMILIES:
        return count_dit_flops(family, parts, width=width, height=height, steps=steps, images=images)
    unet: Any = parts["unet"]
    vae: Any = parts["vae"]
    ucfg, vcfg = unet.config, vae.config
    factor = 2 ** (len(vcfg.block_out_channels) - 1)
    device = next(unet.parameters()).device
    with torch.no_grad(), torch.device(device):
        sample = torch.zeros(1, ucfg.in_channels, height // factor, width // factor)
        context = torch.zeros(1, 77, ucfg.cross_attention_dim)
        extra: dict[str, Any] = {}
        if family == "sdxl":
            text_dim = ucfg.projection_class_embeddings_input_dim - 6 * ucfg.addition_time_embed_dim
            extra["added_cond_kwargs"] = {"text_embeds": torch.zeros(1, text_dim), "time_ids": torch.zeros(1, 6)}
        with FlopCounterMode(display=False) as counter:
            unet(sample, torch.tensor([999]), context, **extra)
        unet_flops = counter.get_total_flops()
        latents = torch.zeros(1, vcfg.latent_channels, height // factor, width // factor)
        with FlopCounterMode(display=False) as counter:
            vae.decode(latents)
        vae_flops = counter.get_total_flops()
    return Flops(float(unet_flops), float(vae_flops), steps, images)


def count_dit_flops(family: str, parts: dict[str, torch.nn.Module], *, width: int, height: int, steps: int,
                    images: int) -> Flops:
    """One transformer forward (with the family's text tokens) and one VAE decode of one image."""
    transformer: Any = parts["transformer"]
    vae: Any = parts["vae"]
    config = DIT_FULL_SIZE.get(family)
    tokens = config.text_tokens if config else 512
    tcfg, vcfg = transformer.config, vae.config
    device = next(transformer.parameters()).device
    h, w = height // 8, width // 8
    with torch.no_grad(), torch.device(device):
        with FlopCounterMode(display=False) as counter:
            if family == "flux":
                packed = (h // 2) * (w // 2)
                transformer(hidden_states=torch.zeros(1, packed, tcfg.in_channels),
                            encoder_hidden_states=torch.zeros(1, tokens, tcfg.joint_attention_dim),
                            pooled_projections=torch.zeros(1, tcfg.pooled_projection_dim),
                            timestep=torch.tensor([1.0]), img_ids=torch.zeros(packed, 3),
                            txt_ids=torch.zeros(tokens, 3),
                            guidance=torch.tensor([3.5]) if tcfg.guidance_embeds else None)
            else:
                transformer(x=[torch.zeros(tcfg.in_channels, 1, h, w)], t=torch.tensor([0.5]),
                            cap_feats=[torch.zeros(tokens, tcfg.cap_feat_dim)])
        forward = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            vae.decode(torch.zeros(1, vcfg.latent_channels, h, w))
        decode = counter.get_total_flops()
    passes = config.passes if config else 1
    return Flops(float(forward), float(decode), steps, images, passes=passes)


def count_params(parts: dict[str, torch.nn.Module]) -> dict[str, int]:
    return {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}


# -- results -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class VariantResult:
    """One variant's grids. Seconds are wall clock around ``render_grid`` (prompt encoding, denoising,
    VAE decode, PIL conversion); ``gpu_s`` is the part the worker bills (``RenderResult.gpu_ms``)."""

    name: str
    description: str
    warmup_s: float | None = None
    runs_s: list[float] = field(default_factory=list)
    gpu_s: list[float] = field(default_factory=list)
    median_s: float | None = None
    p90_s: float | None = None
    images_per_s: float | None = None
    #: median_s / the default variant's median_s (above 1: slower than the worker's way).
    vs_default: float | None = None
    achieved_tflops: float | None = None
    share_of_peak: float | None = None
    #: torch.cuda.max_memory_allocated during the variant (weights included), GiB; None on the CPU.
    peak_gib: float | None = None
    #: Why it did not run, or ran fewer grids than asked (budget, error).
    note: str | None = None


@dataclass(slots=True)
class ModelResult:
    name: str
    family: str
    weights: str
    width: int
    height: int
    params: dict[str, int] = field(default_factory=dict)
    unet_params_m: float | None = None
    flops: dict[str, Any] = field(default_factory=dict)
    #: The grid's FLOPs at the peak rate: no grid can be faster (seconds).
    floor_s: float | None = None
    build_s: float | None = None
    disk_gib: float | None = None
    load_s: float | None = None
    #: torch.cuda.memory_allocated right after loading, GiB.
    weights_gib: float | None = None
    attention: str | None = None
    variants: list[VariantResult] = field(default_factory=list)
    note: str | None = None


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile: with fewer than 10 values, the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- timing --------------------------------------------------------------------------------------------


class Budget:
    """Seconds left of ``--budget-s`` (unlimited when ``None``), and a deadline per model."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.model_deadline = math.inf

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        total = math.inf if self.seconds is None else self.seconds - self.elapsed()
        return min(total, self.model_deadline - time.monotonic())

    def allows(self, estimate_s: float) -> bool:
        return estimate_s <= self.left()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, grid: Callable[[], int]) -> tuple[float, int]:
    """Wall seconds of ``grid()`` (the device drained before and after) and the GPU ms it returned."""
    _sync(device)
    start = time.perf_counter()
    gpu_ms = grid()
    _sync(device)
    return time.perf_counter() - start, gpu_ms


@contextmanager
def _channels_last(pipe: Any) -> Iterator[None]:
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        pipe.unet.to(memory_format=torch.contiguous_format)
        pipe.vae.to(memory_format=torch.contiguous_format)


@contextmanager
def _compiled(pipe: Any, mode: str) -> Iterator[None]:
    original = pipe.unet
    pipe.unet = torch.compile(original, mode=mode)
    try:
        yield
    finally:
        pipe.unet = original


def measure_variant(name: str, *, grid: Callable[[], int], setup: AbstractContextManager[Any], device: torch.device,
                    runs: int, warmup: int, images: int, budget: Budget, estimate_s: float | None,
                    extra_s: float = 0.0) -> VariantResult:
    """Warm up, then time up to ``runs`` grids, stopping early when the next one would overrun the budget.
    ``estimate_s`` (seconds per grid, ``None``: unknown) plus ``extra_s`` decide whether it starts at all."""
    result = VariantResult(name, VARIANT_DESCRIPTIONS[name])
    if estimate_s is not None and not budget.allows(extra_s + (warmup + 1) * estimate_s):
        result.note = f"skipped: needs about {extra_s + (warmup + 1) * estimate_s:.0f} s, {budget.left():.0f} s left"
        _log(f"  {name}: {result.note}")
        return result
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with setup:
            warm = [_timed(device, grid)[0] for _ in range(warmup)]
            result.warmup_s = sum(warm) if warm else None
            for index in range(runs):
                if index > 0 and not budget.allows(result.runs_s[-1]):
                    result.note = f"stopped after {index} of {runs} runs: budget"
                    break
                seconds, gpu_ms = _timed(device, grid)
                result.runs_s.append(seconds)
                result.gpu_s.append(gpu_ms / 1000)
    except Exception as exc:  # one variant failing must not lose the rest of a one-shot GPU run
        result.note = f"error: {type(exc).__name__}: {exc}"
        _log(f"  {name}: {result.note}")
    if result.runs_s:
        result.median_s = statistics.median(result.runs_s)
        result.p90_s = p90(result.runs_s)
        result.images_per_s = images / result.median_s
    if device.type == "cuda":
        result.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
    _log(f"  {name}: warm-up {result.warmup_s or 0:.2f} s, runs " + " ".join(f"{s:.3f}" for s in result.runs_s))
    return result


# -- one model -----------------------------------------------------------------------------------------


def _side(family: str, args: argparse.Namespace) -> int:
    return TINY_SIDE if args.tiny else args.size or CAPABILITIES[family].native_side


def _disk_gib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**30


def _write_model(family: str, folder: Path, *, tiny: bool, device: torch.device, dtype: torch.dtype) -> Path:
    """Write ``family``'s random-weight pipeline under ``folder``; returns the pipeline's own folder."""
    if tiny:
        from inference.tiny import write_tiny_model

        write_tiny_model(folder, families=[family])
        return folder / {"sd15": "tiny-sd", "sdxl": "tiny-sdxl", "flux": "tiny-flux", "zimage": "tiny-zimage"}[family]
    if family in DIT_FULL_SIZE:
        return write_random_dit_pipeline(family, folder / "pipeline", device=device, dtype=dtype)
    return write_random_pipeline(family, folder / "pipeline", config=FULL_SIZE[family], device=device, dtype=dtype)


def bench_model(result: ModelResult, args: argparse.Namespace, budget: Budget, folder: Path,
                on_progress: Callable[[], None]) -> None:
    """Write, load and time ``result.family``, filling in ``result`` as it goes; ``on_progress()`` after
    each step (saves the report so far: a run killed midway keeps what it measured)."""
    family, side, images = result.family, result.width, GRID_SIZE
    cache = PipelineCache(device=args.device)
    device, dtype = cache.device, cache.dtype
    peak = _peak_tflops(args, device)

    # 1. Write the random-weight pipeline
    _log(f"{family}: writing {result.weights} weights ({dtype}) ...")
    start = time.perf_counter()
    source = _write_model(family, folder, tiny=args.tiny, device=device, dtype=dtype)
    result.build_s = time.perf_counter() - start
    result.disk_gib = _disk_gib(source)
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # 2. Parameters and FLOPs, from the saved configs, on the meta device
    parts = meta_components_from_folder(family, source)
    result.params = count_params(parts)
    result.unet_params_m = round(result.params[denoiser_key(family)] / 1e6, 2)
    steps, guidance = family_steps(family, args.steps), family_guidance(family)
    flops = count_flops(family, parts, width=side, height=side, steps=steps, images=images)
    result.flops = flops.as_dict()
    if peak:
        result.floor_s = flops.grid / (peak * 1e12)
    on_progress()

    # 3. Load through the worker's cache
    preset = ModelPreset(
        name=family, source=str(source), family=family, width=side, height=side, steps=steps,
        guidance=guidance, scheduler=args.sampler if family in UNET_FAMILIES else "euler",
    )
    _log(f"{family}: loading on {device} ...")
    _sync(device)
    start = time.perf_counter()
    pipe = cache.text_to_image(preset)
    _sync(device)
    result.load_s = time.perf_counter() - start
    if device.type == "cuda":
        result.weights_gib = torch.cuda.memory_allocated(device) / 2**30
    denoiser = pipe.unet if family in UNET_FAMILIES else pipe.transformer
    processors = {type(m.processor).__name__ for m in denoiser.modules() if getattr(m, "processor", None)}
    result.attention = ", ".join(sorted(processors))
    on_progress()

    # 4. The variants, default first
    spec = JobSpec(
        prompt=PROMPT, model=family, width=side, height=side, seed=SEED, steps=steps,
        guidance_scale=guidance, images=images,
    )
    singles = [spec.replace(images=1, seed=image_seed(SEED, i)) for i in range(images)]

    def batched() -> int:
        return render_grid(cache, preset, spec).gpu_ms

    def one_by_one() -> int:
        return sum(render_grid(cache, preset, single).gpu_ms for single in singles)

    def finish(variant: VariantResult) -> None:
        if variant.median_s is not None:
            variant.vs_default = variant.median_s / default_s if default_s else None
            variant.achieved_tflops = flops.grid / variant.median_s / 1e12
            variant.share_of_peak = variant.achieved_tflops / peak if peak else None
        result.variants.append(variant)
        on_progress()

    default_s: float | None = None
    for name in args.variants:
        setup: AbstractContextManager[Any] = nullcontext()
        grid, estimate, extra = batched, default_s, 0.0
        if name in ("channels_last", "compile") and family not in UNET_FAMILIES:
            finish(VariantResult(name, VARIANT_DESCRIPTIONS[name], note="UNets only (the fastpath variant "
                                 "compiles a DiT's blocks)"))
            continue
        if name == "channels_last":
            setup = _channels_last(pipe)
        elif name == "batch1x4":
            grid = one_by_one
            estimate = None if default_s is None else 2 * default_s
        elif name == "compile":
            setup = _compiled(pipe, args.compile_mode)
            extra = COMPILE_GUESS_S * result.params[denoiser_key(family)] / (PUBLISHED_UNET_PARAMS_M["sd15"] * 1e6)
        variant = measure_variant(
            name, grid=grid, setup=setup, device=device, runs=args.runs, warmup=args.warmup, images=images,
            budget=budget, estimate_s=estimate, extra_s=extra,
        )
        if name == "default":
            default_s = variant.median_s
        finish(variant)

    # 5. Variants that load the model again with other settings, one at a time, the default one released first
    loaded = [name for name in args.variants_loaded if _applies(name, family)]
    if not loaded:
        return
    cache, pipe = PipelineCache(device=args.device), None  # drop the default pipeline before the next loads
    _release(device)
    for name in loaded:
        variant_preset, note = variant_settings(name, preset, device)
        if variant_preset is None:
            finish(VariantResult(name, VARIANT_DESCRIPTIONS[name], note=note))
            continue
        variant_cache = PipelineCache(device=args.device)
        try:
            variant_cache.text_to_image(variant_preset)
        except Exception as exc:  # e.g. a memory mode this card or these packages cannot run
            finish(VariantResult(name, VARIANT_DESCRIPTIONS[name], note=f"error: {type(exc).__name__}: {exc}"))
            del variant_cache
            _release(device)
            continue

        def loaded_grid(cache: PipelineCache = variant_cache, chosen: ModelPreset = variant_preset) -> int:
            return render_grid(cache, chosen, spec).gpu_ms

        finish(measure_variant(
            name, grid=loaded_grid, setup=nullcontext(), device=device, runs=args.runs, warmup=args.warmup,
            images=images, budget=budget, estimate_s=default_s,
        ))
        del variant_cache
        _release(device)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _applies(name: str, family: str) -> bool:
    """The fp32 ``diffusers`` baseline is the SD UNets' (a DiT's is bf16, the default); memory modes the DiTs'."""
    if name == "diffusers":
        return family in UNET_FAMILIES
    return name == "fastpath" or family not in UNET_FAMILIES


def variant_settings(name: str, preset: ModelPreset, device: torch.device) -> tuple[ModelPreset | None, str | None]:
    """The preset a loaded variant runs, or ``None`` and why it cannot run on ``device``."""
    from dataclasses import replace

    from domain.fastpath import FastPath
    from domain.memory import MemorySettings
    from inference.pipelines.fastpath import FP8_CAPABILITY

    if name == "diffusers":
        return replace(preset, fastpath=FastPath(dtype="fp32")), None
    if name == "fastpath":
        fast = FastPath.preset("quality", preset.family)
        if device.type == "cuda" and torch.cuda.get_device_capability(device) >= FP8_CAPABILITY:
            fast = replace(fast, fp8=True)
        if device.type != "cuda":  # compiling takes minutes a size on a CPU (docs/models.md)
            fast = replace(fast, compile=False)
        return replace(preset, fastpath=fast), None
    if device.type != "cuda":
        return None, "skipped: memory modes are measured on a GPU"
    memory = MemorySettings(offload=name.removeprefix("offload-")) if name.startswith("offload-") else \
        MemorySettings(quantize="fp8")
    return replace(preset, memory=memory), None


# -- the whole run -------------------------------------------------------------------------------------


def _peak_tflops(args: argparse.Namespace, device: torch.device) -> float | None:
    if args.peak_tflops is not None:
        return float(args.peak_tflops)
    return PEAK_TFLOPS_BF16 if device.type == "cuda" else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.machine()}, {torch.get_num_threads()} torch threads)"


def _versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "cuda": str(torch.version.cuda),
    }


Counts = dict[str, tuple[dict[str, int], Flops]]


def family_steps(family: str, steps: int | None) -> int:
    """``--steps``, else the family's default (30 for SD, FLUX.1 [dev]'s 28, Z-Image Turbo's 8)."""
    if steps is not None:
        return steps
    return DIT_FULL_SIZE[family].steps if family in DIT_FULL_SIZE else 30


def family_guidance(family: str) -> float:
    return DIT_FULL_SIZE[family].guidance if family in DIT_FULL_SIZE else GUIDANCE


def full_size_counts(families: list[str], *, size: int | None, steps: int | None) -> Counts:
    """Params and grid FLOPs of the full-size configs, built on the meta device (no weights; seconds)."""
    counts: Counts = {}
    for family in families:
        if family in FULL_SIZE:
            parts = build_components(family, FULL_SIZE[family], device="meta")
        else:
            parts = build_dit_components(family, device="meta")
        side = size or CAPABILITIES[family].native_side
        flops = count_flops(family, parts, width=side, height=side, steps=family_steps(family, steps),
                            images=GRID_SIZE)
        counts[family] = (count_params(parts), flops)
    return counts


def _model_share(family: str, remaining: list[str], counts: Counts) -> float:
    """Share of the budget left that ``family`` may spend: in proportion to its grid FLOPs among the models
    still to run, but at least half an equal share (so SD 1.5 before SDXL gets a quarter)."""
    total = sum(counts[f][1].grid for f in remaining)
    return max(counts[family][1].grid / total, 1 / (2 * len(remaining)))


def _estimate_model(previous: ModelResult, family: str, counts: Counts) -> float:
    """Seconds ``family`` needs at least (write, load, warm-up and one grid of the default variant), scaled
    from the model before it: write and load by parameters, grids by FLOPs."""
    before_params, before_flops = counts[previous.family]
    params, flops = counts[family]
    param_ratio = sum(params.values()) / sum(before_params.values())
    flop_ratio = flops.grid / before_flops.grid
    default = next((v for v in previous.variants if v.name == "default"), None)
    grid_s = default.median_s if default is not None and default.median_s else 0.0
    return ((previous.build_s or 0) + (previous.load_s or 0)) * param_ratio + 2 * grid_s * flop_ratio


def flop_text(flops: float) -> str:
    """``1.6646e15`` -> ``"1,664.6 TFLOP"``, ``8.03e11`` -> ``"0.803 TFLOP"``; tiny models' counts in GFLOP."""
    value, unit = (flops / 1e12, "TFLOP") if flops >= 1e11 else (flops / 1e9, "GFLOP")
    return f"{value:,.{3 if value < 10 else 1}f} {unit}"


def print_table(report: dict[str, Any]) -> None:
    peak = report["peak_tflops"]
    print(f"render_grid on {report['device']} ({report['dtype']}); torch {report['versions']['torch']}, "
          f"diffusers {report['versions']['diffusers']}; {report['steps']} steps, {GRID_SIZE} images, CFG "
          f"{GUIDANCE}, {report['sampler']}" + (" [TINY MODELS: not a speed claim]" if report["tiny"] else ""))
    for model in report["models"]:
        f = model["flops"]
        line = (f"{model['name']} {model['width']}x{model['height']}: denoiser {model['unet_params_m']}M params; "
                f"grid {flop_text(f['grid'])} (denoiser {flop_text(f['unet_forward_per_image'])}/image-forward, "
                f"VAE decode {flop_text(f['vae_decode_per_image'])}/image)")
        if model["floor_s"] is not None:
            line += f", floor {model['floor_s']:.3f} s at {peak:g} TFLOP/s"
        line += (f"; write {model['build_s'] or 0:.1f} s ({model['disk_gib'] or 0:.2f} GiB), "
                 f"load {model['load_s'] or 0:.1f} s")
        if model["weights_gib"] is not None:
            line += f", {model['weights_gib']:.2f} GiB on the GPU"
        print(line + (f"; attention {model['attention']}" if model["attention"] else ""))
    print(f"{'model':<6} {'variant':<14} {'warm-up s':>9} {'median s':>9} {'p90 s':>8} {'img/s':>7} "
          f"{'vs default':>10} {'TFLOP/s':>8} {'of peak':>8} {'peak GiB':>8}")

    def cell(value: float | None, spec: str, width: int) -> str:
        return f"{value:>{width}{spec}}" if value is not None else f"{'–':>{width}}"

    for model in report["models"]:
        for v in model["variants"]:
            share = None if v["share_of_peak"] is None else 100 * v["share_of_peak"]
            print(f"{model['name']:<6} {v['name']:<14} {cell(v['warmup_s'], '.3f', 9)} "
                  f"{cell(v['median_s'], '.3f', 9)} {cell(v['p90_s'], '.3f', 8)} {cell(v['images_per_s'], '.2f', 7)} "
                  f"{cell(v['vs_default'], '.2f', 10)} {cell(v['achieved_tflops'], '.3g', 8)} "
                  f"{cell(share, '.1f', 7)}{'%' if share is not None else ' '} {cell(v['peak_gib'], '.2f', 8)}")
    notes = [f"{m['name']}: {m['note']}" for m in report["models"] if m["note"]]
    notes += [f"{m['name']} {v['name']}: {v['note']}" for m in report["models"] for v in m["variants"] if v["note"]]
    notes += report["notes"]
    for note in notes:
        print(f"note: {note}")
    budget = f" of a {report['budget_s']:g} s budget" if report["budget_s"] else ""
    print(f"total {report['elapsed_s']:.1f} s{budget}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="render_grid.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", default="sd15,sdxl,flux,zimage",
                        help="comma-separated families to run, in order (default: sd15,sdxl,flux,zimage)")
    parser.add_argument("--tiny", action="store_true",
                        help="use inference.tiny's tiny random models at 128 px instead of full-size ones "
                             "(a CPU smoke test)")
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps per grid (default: 30 for SD, 28 for FLUX.1, 8 for Z-Image Turbo)")
    parser.add_argument("--runs", type=int, default=5, help="timed grids per variant, after the warm-up (default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed grids before them (default: 1)")
    parser.add_argument("--size", type=int, default=None,
                        help="square side in pixels (default: 512 for sd15, 1024 for sdxl; 128 with --tiny)")
    parser.add_argument("--sampler", choices=SCHEDULERS, default="dpmpp_2m_karras",
                        help="the models file's scheduler for the bench's presets (default: dpmpp_2m_karras)")
    parser.add_argument("--variants", default=",".join(v for v in (*VARIANTS, *LOADED_VARIANTS) if v != "compile"),
                        help="comma-separated, from default, channels_last, batch1x4 (on the loaded pipeline), "
                             f"{', '.join(LOADED_VARIANTS)} (each loads the model again; memory modes on the DiTs "
                             "only, on a GPU); default: all; default always runs first")
    parser.add_argument("--compile", action="store_true", help="also run the torch.compile variant (slow to compile)")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode for --compile (default: default; e.g. max-autotune-no-cudagraphs)")
    parser.add_argument("--device", default=None,
                        help="torch device (default: the worker's choice, the first CUDA GPU, else the CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help=f"the limit for 'of peak' (default: {PEAK_TFLOPS_BF16:g} on CUDA, the bf16 matrix rate "
                             "measured on an H100/H200; none on the CPU)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="end the whole run within this many seconds: variants, runs and models that would "
                             "not fit are skipped with a note (a single step already running is not cut short)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here (also after every step)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write the random weights (default: a temp dir; SDXL takes ~7 GB in bf16)")
    parser.add_argument("--flops-only", action="store_true",
                        help="only count params and FLOPs of the full-size configs on the meta device (no weights)")
    args = parser.parse_args(argv)

    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for family in args.models:
        if family not in FAMILIES:
            parser.error(f"--models: {family!r} is not one of {', '.join(FAMILIES)}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in variants:
        if variant not in (*VARIANTS, *LOADED_VARIANTS) or variant == "compile":
            parser.error(f"--variants: {variant!r} is not one of default, channels_last, batch1x4, "
                         f"{', '.join(LOADED_VARIANTS)} (compile: --compile)")
    args.variants = [v for v in VARIANTS if v == "default" or v in variants or (v == "compile" and args.compile)]
    args.variants_loaded = [v for v in LOADED_VARIANTS if v in variants]
    for name in ("steps", "runs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must not be negative, got {args.warmup}")
    if args.size is not None and (args.size <= 0 or args.size % 8):
        parser.error(f"--size must be a positive multiple of 8, got {args.size}")
    return args


def run_flops_only(args: argparse.Namespace) -> int:
    """``--flops-only``: params and FLOPs of the full-size configs on the meta device."""
    models: dict[str, dict[str, Any]] = {}
    for family, (params, flops) in full_size_counts(args.models, size=args.size, steps=args.steps).items():
        floor_s = flops.grid / (PEAK_TFLOPS_BF16 * 1e12)
        models[family] = {
            "params": params,
            "unet_params_m": round(params[denoiser_key(family)] / 1e6, 2),
            "published_unet_params_m": PUBLISHED_UNET_PARAMS_M[family],
            "flops": flops.as_dict(),
            "floor_s": floor_s,
        }
        print(f"{family} {args.size or CAPABILITIES[family].native_side} px: params "
              + ", ".join(f"{name} {count / 1e6:.2f}M" for name, count in params.items())
              + f"; {denoiser_key(family)} {flop_text(flops.unet_forward_per_image)}/image-forward, VAE decode "
              f"{flop_text(flops.vae_decode_per_image)}/image; {flops.steps}-step grid {flop_text(flops.grid)} "
              f"= {floor_s:.3f} s at {PEAK_TFLOPS_BF16:g} TFLOP/s")
    if args.json:
        report = {"bench": "render_grid", "flops_only": True, "steps": args.steps, "images": GRID_SIZE,
                  "peak_tflops": PEAK_TFLOPS_BF16, "models": models}
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Every model in ``args.models``, in order, within ``args.budget_s``; 1 when any step failed."""
    budget = Budget(args.budget_s)
    device = PipelineCache(device=args.device).device
    if device.type == "cpu" and not args.tiny:
        print("full-size models on the CPU would take hours a grid (and ~14 GB of memory for SDXL): "
              "run on a GPU, or pass --tiny for a smoke test", file=sys.stderr)
        return 2
    counts = full_size_counts(args.models, size=args.size, steps=args.steps)  # for the budget's shares
    report: dict[str, Any] = {
        "bench": "render_grid",
        "device": device_name(device),
        "device_type": device.type,
        "dtype": str(PipelineCache(device=device).dtype).removeprefix("torch."),
        "versions": _versions(),
        "command": sys.argv,
        "tiny": args.tiny,
        "steps": args.steps,
        "runs": args.runs,
        "warmup": args.warmup,
        "images": GRID_SIZE,
        "guidance": GUIDANCE,
        "sampler": args.sampler,
        "peak_tflops": _peak_tflops(args, device),
        "budget_s": args.budget_s,
        "elapsed_s": 0.0,
        "models": [],
        "notes": [],
    }
    _log(f"render_grid on {report['device']} ({report['dtype']}), budget {args.budget_s or 'none'}")
    results: list[ModelResult] = []

    def save() -> None:
        report["models"] = [asdict(r) for r in results]
        report["elapsed_s"] = budget.elapsed()
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))

    root = Path(tempfile.mkdtemp(prefix="render-grid-bench-", dir=args.workdir))
    previous: ModelResult | None = None
    try:
        for index, family in enumerate(args.models):
            budget.model_deadline = math.inf
            if previous is not None and budget.seconds is not None:
                estimate = _estimate_model(previous, family, counts)
                if not budget.allows(estimate):
                    report["notes"].append(f"{family} skipped: needs about {estimate:.0f} s, "
                                           f"{budget.left():.0f} s left of the budget")
                    _log(f"{family}: skipped (budget)")
                    continue
            if budget.seconds is not None:
                share = _model_share(family, args.models[index:], counts)
                budget.model_deadline = time.monotonic() + budget.left() * share
            side = _side(family, args)
            weights = "tiny (inference.tiny)" if args.tiny else "random, full-size configs"
            result = ModelResult(name=family, family=family, weights=weights, width=side, height=side)
            results.append(result)
            try:
                bench_model(result, args, budget, root / family, on_progress=save)
            except Exception as exc:  # e.g. out of memory writing SDXL: keep the figures of the others
                result.note = f"error: {type(exc).__name__}: {exc}"
                _log(f"{family}: {result.note}")
            finally:
                shutil.rmtree(root / family, ignore_errors=True)
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            previous = result if result.load_s is not None else previous
            save()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    save()
    print_table(report)
    errors = [r.note for r in results if r.note] + [v.note for r in results for v in r.variants if v.note]
    return 1 if any(note.startswith("error") for note in errors if note) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="invalid value encountered in cast")  # random weights: NaN pixels
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library_logging in (diffusers_logging, transformers_logging):
        library_logging.set_verbosity_error()
        library_logging.disable_progress_bar()
    return run_flops_only(args) if args.flops_only else run_bench(args)


if __name__ == "__main__":
    sys.exit(main())
