"""Tiny LoRAs: random low-rank adapters on a tiny model's attention projections, saved as diffusers saves
LoRAs (``<Pipeline>.save_lora_weights``), so ``pipe.load_lora_weights(dir, weight_name=...)`` reads them as it
reads one published on Civitai or the Hub.

Both LoRA matrices are random (peft's ``init_lora_weights=False``): a freshly initialised LoRA has B = 0 and
would change nothing, which a test of "the LoRA reaches the pixels" must be able to see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.tiny.parts import seeded

__all__ = ["LORA_FILES", "TINY_FLUX_LORA", "TINY_SD_LORA", "write_lora"]

TINY_SD_LORA = "tiny-sd-lora.safetensors"
TINY_FLUX_LORA = "tiny-flux-lora.safetensors"
#: family -> the file name of its tiny LoRA (written next to ``models.toml`` with that family's model).
LORA_FILES = {"sd15": TINY_SD_LORA, "flux": TINY_FLUX_LORA}
#: The attention projections LoRAs usually train (the same names in the UNet's and the transformers' attention).
ATTENTION_PROJECTIONS = ["to_q", "to_k", "to_v", "to_out.0"]
RANK = 4
#: LoRA scale alpha / rank: strong, so that even a two-step render of a random model shows the LoRA.
ALPHA = 8 * RANK


def write_lora(pipe: Any, folder: Path, weight_name: str, *, seed: int) -> Path:
    """Add a random rank-4 LoRA to ``pipe``'s denoiser (its UNet or transformer) and save it in ``folder``.

    The adapter stays in ``pipe``'s modules: call this after the model itself was saved.
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    name = "unet" if hasattr(pipe, "unet") else "transformer"
    denoiser = getattr(pipe, name)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=ATTENTION_PROJECTIONS, init_lora_weights=False)
    with seeded(seed):
        denoiser.add_adapter(config)
    layers = get_peft_model_state_dict(denoiser)
    type(pipe).save_lora_weights(
        folder,
        weight_name=weight_name,
        # the adapter's config (rank, alpha, targets) travels in the file's metadata, read back on loading
        **{f"{name}_lora_layers": layers, f"{name}_lora_adapter_metadata": denoiser.peft_config["default"].to_dict()},
    )
    return folder / weight_name
