"""Tiny LoRA and GGUF files for tests, written from the tiny models with peft and the gguf package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_gguf_denoiser", "write_unet_lora"]


def write_unet_lora(pipeline_class: Any, folder: Path, out: Path, *, seed: int) -> Path:
    """A LoRA for the UNet of the tiny pipeline in ``folder`` (random, non-zero B weights), in diffusers'
    LoRA format, as ``out`` (a ``.safetensors`` file)."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = pipeline_class.from_pretrained(folder, local_files_only=True)
    torch.manual_seed(seed)
    pipe.unet.add_adapter(LoraConfig(
        r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False,
    ))
    pipeline_class.save_lora_weights(
        out.parent, unet_lora_layers=get_peft_model_state_dict(pipe.unet), weight_name=out.name,
    )
    return out


def write_gguf_denoiser(model: Any, out: Path) -> Path:
    """``model``'s weights as a GGUF file in diffusers' key layout: Linear weights whose rows split into
    32-value blocks as Q8_0, everything else as F32 (as llama.cpp's converters do for small tensors)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(out), arch="tiny")
    for key, value in model.state_dict().items():
        array = value.detach().float().numpy()
        if array.ndim == 2 and array.shape[1] % 32 == 0:
            quantized = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(key, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(key, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
