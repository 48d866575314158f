"""The GPU fast path of the models file (:mod:`domain.fastpath`), applied with diffusers' and torch's own tools.

:func:`load_dtype` gives the dtype to load with; :func:`apply_before_placing` runs on the loaded pipeline while
its weights are still in CPU memory, :func:`apply_after_placing` once they are on the device, in this order:

1. fused QKV projections (``fuse_qkv_projections``: one matmul instead of three per attention),
2. ``channels_last`` memory format for a UNet and its VAE,
3. the attention backend (diffusers' dispatcher, ``set_attention_backend``: FlashAttention-3 on Hopper),
4. fp8 weights *and* activations through torchao (``Float8DynamicActivationFloat8WeightConfig``, per-row
   scales), on cards of compute capability 8.9 or newer,
5. a step cache (``enable_cache`` with ``FirstBlockCacheConfig`` or ``TaylorSeerCacheConfig``),
6. VAE tiling (``vae.enable_tiling()``: a big creative upscale decodes in tiles),
7. regional ``torch.compile`` of the denoiser's repeated blocks (``compile_repeated_blocks``): seconds to
   compile instead of minutes; :mod:`.warmup` draws every ``--ar`` size once when the worker starts, so no
   member's job waits for a recompile.

What the card cannot do is refused with :class:`~inference.errors.ModelLoadError` when the model loads
(one line naming the model and what to change), never silently skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from domain.aspect import aspect_sizes
from domain.catalog import ModelPreset
from domain.fastpath import FastPath
from inference.errors import ModelLoadError
from inference.families import family_of

__all__ = [
    "ATTENTION_BACKENDS",
    "FP8_CAPABILITY",
    "apply_after_placing",
    "apply_before_placing",
    "attention_backend",
    "load_dtype",
]

log = logging.getLogger(__name__)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
#: The models file's attention names, as diffusers' ``AttentionBackendName`` values.
ATTENTION_BACKENDS = {"sdpa": "native", "flash": "flash", "flash3": "_flash_3", "cudnn": "_native_cudnn"}
#: fp8 matrix products need Ada (8.9) or Hopper (9.0) tensor cores or newer.
FP8_CAPABILITY = (8, 9)


def load_dtype(preset: ModelPreset, default: torch.dtype) -> torch.dtype:
    """The dtype ``preset`` loads in: its ``fastpath.dtype``, else the worker's ``default``."""
    return _DTYPES.get(preset.fastpath.dtype, default)


def attention_backend(fast: FastPath, device: torch.device) -> str | None:
    """The diffusers attention backend for ``fast.attention`` on ``device``; ``None``: leave the default (SDPA).

    ``auto`` takes FlashAttention-3 on a Hopper card where its package (``flash_attn_interface``) is installed.
    """
    if fast.attention == "auto":
        if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] == 9 and _has_flash3():
            return ATTENTION_BACKENDS["flash3"]
        return None
    return ATTENTION_BACKENDS[fast.attention]


def _has_flash3() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn_interface") is not None


def apply_before_placing(pipe: Any, preset: ModelPreset) -> None:
    """Switches that rewrite weights (fused projections), done on the CPU before the pipeline moves."""
    if preset.fastpath.fuse_qkv:
        denoiser: Any = family_of(preset.family).denoiser(pipe)
        denoiser.fuse_qkv_projections()


def apply_after_placing(pipe: Any, preset: ModelPreset, device: torch.device) -> None:
    """Every other switch of ``preset.fastpath``, on the placed pipeline (see the module docstring)."""
    fast = preset.fastpath
    if not fast.enabled:
        return
    denoiser: Any = family_of(preset.family).denoiser(pipe)
    if fast.channels_last:
        denoiser.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    backend = attention_backend(fast, device)
    if backend is not None:
        _set_attention(denoiser, backend, preset, device)
    if fast.fp8:
        _fp8(denoiser, preset, device)
    if fast.cache != "none":
        denoiser.enable_cache(_cache_config(fast))
    if fast.vae_tiling:
        pipe.vae.enable_tiling()
    if fast.compile:
        from torch import _dynamo

        # Room for a graph per warmed size, with and without a negative pass: past the limit torch would run
        # a block uncompiled.
        limit = 2 * len(aspect_sizes(preset.pixel_budget)) + 8
        _dynamo.config.recompile_limit = max(_dynamo.config.recompile_limit, limit)
        # Cache hooks wrap the blocks' forward: let dynamo break the graph around them.
        denoiser.compile_repeated_blocks(fullgraph=fast.cache == "none", dynamic=True, mode=fast.compile_mode)
    log.info("model %s: fast path %s (attention %s)", preset.name, fast, backend or "sdpa")


def _set_attention(denoiser: Any, backend: str, preset: ModelPreset, device: torch.device) -> None:
    name = preset.fastpath.attention
    if device.type != "cuda" and name != "sdpa":
        raise ModelLoadError(f"model {preset.name!r}: fastpath attention {name!r} needs an NVIDIA GPU, and this "
                             f"worker runs on {device.type}; use attention = \"auto\" or \"sdpa\"")
    try:
        denoiser.set_attention_backend(backend)
    except (RuntimeError, ImportError, ValueError) as exc:
        raise ModelLoadError(f"model {preset.name!r}: fastpath attention {name!r} cannot run here ({exc}); "
                             "use attention = \"auto\" or \"sdpa\"") from exc


def _fp8(denoiser: Any, preset: ModelPreset, device: torch.device) -> None:
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    if capability is None or capability < FP8_CAPABILITY:
        where = device.type if capability is None else f"a card of compute capability {capability[0]}.{capability[1]}"
        raise ModelLoadError(
            f"model {preset.name!r}: fastpath fp8 needs an NVIDIA GPU of compute capability 8.9 or newer (Ada, "
            f"Hopper), and this worker runs on {where}; set fp8 = false (quantize = \"fp8\" saves memory anywhere)"
        )
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    quantize_(denoiser, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))


def _cache_config(fast: FastPath) -> Any:
    """diffusers' config for a step cache; TaylorSeer's intervals are those of diffusers' FLUX.1 example."""
    if fast.cache == "first_block":
        from diffusers.hooks import FirstBlockCacheConfig

        return FirstBlockCacheConfig(threshold=fast.cache_threshold)
    from diffusers.hooks import TaylorSeerCacheConfig

    return TaylorSeerCacheConfig(cache_interval=5, disable_cache_before_step=10, max_order=1)
