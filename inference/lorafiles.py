"""Whether a LoRA file of the models file fits its model, read from the file's header alone.

Kept apart from :mod:`inference.pipelines.lora` (and free of torch and diffusers) so that the worker's start-up
check (:mod:`inference.modelcheck`) can run it in the worker's parent, before any model loads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from domain.catalog import ModelPreset
from domain.loras import LoraPreset

__all__ = ["lora_problem"]

#: Families whose denoiser is a UNet (LoRA keys ``unet.…`` / ``lora_unet_down_blocks…``); the rest are DiTs.
_UNET_FAMILIES = ("sd15", "sdxl")
_UNET_KEY = re.compile(r"^(unet\.|lora_unet_(down|up|mid|input|output|middle)_)")
_DIT_KEY = re.compile(r"^(transformer\.|diffusion_model\.|lora_transformer_|lora_unet_(double|single)_blocks)")
#: The key of a LoRA's cross-attention key projection (its input width is the text encoder's width).
_CROSS_ATTENTION = re.compile(r"attn2[._]to_k.*(lora_A|lora_down)\.weight$")


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a ``.safetensors`` file (names, dtypes, shapes), read without loading a weight."""
    with path.open("rb") as file:
        size = int.from_bytes(file.read(8), "little")
        if not 0 < size < 100_000_000:
            raise ValueError("not a safetensors file")
        header = json.loads(file.read(size))
    return {name: info for name, info in header.items() if name != "__metadata__"}


def lora_problem(preset: ModelPreset, lora: LoraPreset) -> str | None:
    """Why ``lora`` cannot load into ``preset``'s model, in a few words, or ``None`` when it looks right.

    Reads the file's header only (quick, no weights, no CUDA: for the worker's start-up check): the file
    exists; its keys are for this kind of denoiser (a UNet LoRA on a DiT model, or the other way round, is
    another family's); on a UNet model, its cross-attention width is the model's (SD 1.5's 768 vs SDXL's 2048).
    A LoRA on the Hub is checked when it loads.
    """
    path = Path(lora.source)
    if path.is_dir():
        path = path / (lora.weight_name or "pytorch_lora_weights.safetensors")
    if not path.exists():
        looks_local = lora.source.startswith(("/", "./", "../")) or lora.source.endswith(".safetensors")
        return f"LoRA {lora.name!r}: the file {str(path)!r} does not exist" if looks_local else None
    try:
        tensors = _safetensors_header(path)
    except (OSError, ValueError) as exc:
        return f"LoRA {lora.name!r}: {path} cannot be read as .safetensors ({exc})"
    unet_keys = any(_UNET_KEY.match(name) for name in tensors)
    dit_keys = any(_DIT_KEY.match(name) for name in tensors)
    made_for = "a UNet model (SD 1.5 / SDXL)" if unet_keys else "a transformer model (FLUX, SD 3, ...)"
    if (preset.family in _UNET_FAMILIES and dit_keys and not unet_keys) or (
        preset.family not in _UNET_FAMILIES and unet_keys and not dit_keys
    ):
        return f"LoRA {lora.name!r} is made for {made_for}, not this {preset.family} model"
    if preset.family in _UNET_FAMILIES:
        width = _cross_attention_width(preset)
        found = {info["shape"][-1] for name, info in tensors.items() if _CROSS_ATTENTION.search(name)}
        if width is not None and found and found != {width}:
            return (f"LoRA {lora.name!r} is made for another family: its cross-attention takes "
                    f"{', '.join(map(str, sorted(found)))} wide text embeddings, this {preset.family} model's {width}")
    return None


def _cross_attention_width(preset: ModelPreset) -> int | None:
    """The UNet's ``cross_attention_dim`` from a local diffusers folder's config, else ``None``."""
    config = Path(preset.source) / "unet" / "config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text()).get("cross_attention_dim")
    return value if isinstance(value, int) else None
