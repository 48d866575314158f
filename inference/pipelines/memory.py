"""Memory modes of the models file (:mod:`domain.memory`), applied with diffusers' own tools.

* ``quantize``: the denoiser (UNet or transformer, :data:`DENOISERS`) is quantized while it loads:
  ``fp8`` / ``int8`` with torchao's weight-only configs (``TorchAoConfig``), ``nf4`` with bitsandbytes
  (``BitsAndBytesConfig``), both through ``PipelineQuantizationConfig``; ``gguf`` loads the denoiser from a
  GGUF file with ``from_single_file(..., quantization_config=GGUFQuantizationConfig(...))`` and hands it to
  the pipeline. Text encoders and the VAE stay in the pipeline's dtype.
* ``offload``: ``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload`` instead of ``.to(device)``.
* ``config``: single-file checkpoints read their component configs from that local folder, offline.
"""

from __future__ import annotations

from typing import Any

import torch

from domain.catalog import ModelPreset
from domain.memory import MemorySettings
from inference.errors import ModelLoadError

__all__ = [
    "DENOISERS",
    "denoiser_override",
    "place",
    "pretrained_options",
    "quantization_config",
    "single_file_options",
]

#: The component holding most of a family's weights, and its diffusers class: what ``quantize`` applies to.
DENOISERS: dict[str, tuple[str, str]] = {
    "sd15": ("unet", "UNet2DConditionModel"),
    "sdxl": ("unet", "UNet2DConditionModel"),
    "sd3": ("transformer", "SD3Transformer2DModel"),
    "flux": ("transformer", "FluxTransformer2DModel"),
    "flux2": ("transformer", "Flux2Transformer2DModel"),
    "zimage": ("transformer", "ZImageTransformer2DModel"),
    "qwenimage": ("transformer", "QwenImageTransformer2DModel"),
}


def _denoiser(preset: ModelPreset) -> tuple[str, str]:
    try:
        return DENOISERS[preset.family]
    except KeyError:
        raise ModelLoadError(
            f"model {preset.name!r}: quantize is not available for the {preset.family} family here"
        ) from None


def quantization_config(preset: ModelPreset, *, device: torch.device, dtype: torch.dtype) -> Any | None:
    """The ``PipelineQuantizationConfig`` for ``preset``'s ``quantize`` (``fp8``, ``int8``, ``nf4``), else None.

    Raises :class:`ModelLoadError` for ``nf4`` without an NVIDIA GPU (bitsandbytes quantizes on CUDA only).
    """
    mode = preset.memory.quantize
    if mode in ("none", "gguf"):
        return None
    from diffusers import PipelineQuantizationConfig

    component, _ = _denoiser(preset)
    if mode == "nf4":
        if device.type != "cuda":
            raise ModelLoadError(
                f"model {preset.name!r}: quantize = \"nf4\" needs an NVIDIA GPU (bitsandbytes), and this worker "
                f"runs on {device.type}; use quantize = \"int8\" or \"fp8\" here"
            )
        from diffusers import BitsAndBytesConfig
        from diffusers.utils import is_bitsandbytes_available

        if not is_bitsandbytes_available():
            raise ModelLoadError(
                f"model {preset.name!r}: quantize = \"nf4\" needs bitsandbytes; "
                "install it with `pip install --no-deps bitsandbytes`"
            )
        config: Any = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
        )
    else:
        from diffusers import TorchAoConfig
        from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig

        config = TorchAoConfig(Float8WeightOnlyConfig() if mode == "fp8" else Int8WeightOnlyConfig())
    return PipelineQuantizationConfig(quant_mapping={component: config})


def denoiser_override(
    preset: ModelPreset, *, dtype: torch.dtype, local_files_only: bool
) -> dict[str, Any]:
    """``{"transformer": <model from the GGUF file>}`` for ``quantize = "gguf"`` (else ``{}``), to pass to the
    pipeline's loader in place of the source's own denoiser.

    The denoiser's config comes from ``config`` when set, else from the source's own subfolder.
    """
    memory = preset.memory
    if memory.quantize != "gguf":
        return {}
    import diffusers
    from diffusers import GGUFQuantizationConfig

    component, class_name = _denoiser(preset)
    model_class = getattr(diffusers, class_name)
    try:
        model = model_class.from_single_file(
            memory.gguf,
            quantization_config=GGUFQuantizationConfig(compute_dtype=dtype),
            config=memory.config or preset.source,
            subfolder=component,
            dtype=dtype,
            local_files_only=local_files_only or bool(memory.config),
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model {preset.name!r}: the gguf file {memory.gguf!r} cannot be loaded: {exc}") from exc
    return {component: model}


def pretrained_options(
    preset: ModelPreset, *, device: torch.device, dtype: torch.dtype, local_files_only: bool
) -> dict[str, Any]:
    """Extra ``from_pretrained`` options for ``quantize``: a quantization config, or a GGUF denoiser."""
    options = denoiser_override(preset, dtype=dtype, local_files_only=local_files_only)
    config = quantization_config(preset, device=device, dtype=dtype)
    if config is not None:
        options["quantization_config"] = config
    return options


def single_file_options(memory: MemorySettings) -> dict[str, Any]:
    """``from_single_file`` options: the local ``config`` folder (then nothing is fetched), if any."""
    if not memory.config:
        return {}
    return {"config": memory.config, "local_files_only": True}


def place(pipe: Any, preset: ModelPreset, device: torch.device) -> Any:
    """Put ``pipe`` on ``device`` as ``offload`` says: all of it, one component at a time, or layer by layer.

    With offload the weights stay in CPU memory and accelerate's hooks move each part to ``device`` while it
    runs (``device`` may be the CPU itself, where offloading changes nothing but still runs the same hooks).
    """
    mode = preset.memory.offload
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    return pipe
