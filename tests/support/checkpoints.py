"""Single-file checkpoints for tests: a diffusers SD 1.x folder rewritten as ONE original-layout ``.safetensors``.

The original (CompVis ``ldm``, as A1111 and Civitai publish it) layout keeps the three models under prefixes:
the UNet under ``model.diffusion_model.``, the VAE under ``first_stage_model.``, CLIP under
``cond_stage_model.transformer.``. Inside them the names differ from diffusers':

* UNet: ``input_blocks.N`` counts the stem (``0``), then per resolution level ``layers_per_block`` blocks of a
  resnet (``.0``) and, in cross-attention levels, a transformer (``.1``), then the downsampler (``.0.op``) but not
  after the last level. ``output_blocks.N`` counts ``layers_per_block + 1`` blocks per level, the upsampler after
  the resnet and transformer of the level's last block (``.1.conv`` or ``.2.conv``). ``middle_block`` is resnet,
  transformer, resnet. Resnets name ``in_layers.0/2``, ``out_layers.0/3``, ``emb_layers.1``, ``skip_connection``.
* VAE: ``down.N.block.M`` / ``up.N.block.M`` with the decoder's levels numbered from the lowest resolution, so
  diffusers' ``up_blocks.i`` is ``up.(levels-1-i)``; ``mid.block_1``, ``mid.attn_1``, ``mid.block_2``; the mid
  attention's ``q``/``k``/``v``/``proj_out`` are 1x1 convolutions (4-D weights), its norm ``norm``.
* CLIP: the transformers ``CLIPTextModel`` names under ``text_model.`` (transformers 5.6+ drops that level from
  the model itself; the file keeps it).

Only SD 1.x is written: diffusers recognises an SDXL file by its second text encoder's tenth layer in OpenCLIP
names, which the two-layer tiny encoders do not have.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["copy_configs", "write_sd15_checkpoint"]

UNET, VAE, CLIP = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
           "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def write_sd15_checkpoint(folder: Path, out: Path) -> Path:
    """The SD 1.x pipeline saved in ``folder`` (diffusers layout) as one original-layout checkpoint ``out``.

    Every weight of the UNet, VAE and text encoder is written, renamed; a name this mapping does not know
    raises :class:`ValueError`, so a model the writer cannot express is never written half.
    """
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, safety_checker=None)
    unet_name = _unet_names(pipe.unet.config)
    vae_name = _vae_names(len(pipe.vae.config.up_block_types))
    tensors: dict[str, torch.Tensor] = {}
    for key, value in pipe.unet.state_dict().items():
        tensors[UNET + unet_name(key)] = value
    for key, value in pipe.vae.state_dict().items():
        name = vae_name(key)
        if ".mid.attn_1." in name and name.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            value = value[:, :, None, None]  # linear in diffusers, a 1x1 convolution in the original
        tensors[VAE + name] = value
    for key, value in pipe.text_encoder.state_dict().items():
        tensors[CLIP + (key if key.startswith("text_model.") else "text_model." + key)] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(out))
    return out


def copy_configs(folder: Path, out: Path) -> Path:
    """``folder``'s configs, tokenizer and scheduler files without any weights, as ``out``: what a single-file
    checkpoint's ``config`` folder holds (so what loads from it can only come from the checkpoint)."""
    import shutil

    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.gguf"))
    return out


def _renamer(rules: list[tuple[str, Callable[[re.Match[str]], str]]], what: str) -> Callable[[str], str]:
    compiled = [(re.compile(pattern), make) for pattern, make in rules]

    def rename(key: str) -> str:
        for pattern, make in compiled:
            if found := pattern.fullmatch(key):
                return make(found)
        raise ValueError(f"no original-layout name for the {what} weight {key!r}")

    return rename


def _resnet(rest: str) -> str:
    part, _, tail = rest.partition(".")
    return f"{_RESNET.get(part, part)}.{tail}"


def _unet_names(config: Any) -> Callable[[str], str]:
    per_level = config.layers_per_block + 1
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    cross_up = ["CrossAttn" in kind for kind in config.up_block_types]

    def upsampler(m: re.Match[str]) -> str:
        level = int(m[1])
        return f"output_blocks.{level * per_level + per_level - 1}.{2 if cross_up[level] else 1}.conv.{m[2]}"

    return _renamer([
        (r"(time_embedding\.linear_[12]|conv_in|conv_norm_out|conv_out)\.(\w+)", lambda m: f"{fixed[m[1]]}.{m[2]}"),
        (r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
         lambda m: f"input_blocks.{1 + int(m[1]) * per_level + int(m[2])}.0." + _resnet(m[3])),
        (r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)",
         lambda m: f"input_blocks.{1 + int(m[1]) * per_level + int(m[2])}.1.{m[3]}"),
        (r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)",
         lambda m: f"input_blocks.{(int(m[1]) + 1) * per_level}.0.op.{m[2]}"),
        (r"mid_block\.resnets\.([01])\.(.+)", lambda m: f"middle_block.{2 * int(m[1])}." + _resnet(m[2])),
        (r"mid_block\.attentions\.0\.(.+)", lambda m: f"middle_block.1.{m[1]}"),
        (r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
         lambda m: f"output_blocks.{int(m[1]) * per_level + int(m[2])}.0." + _resnet(m[3])),
        (r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)",
         lambda m: f"output_blocks.{int(m[1]) * per_level + int(m[2])}.1.{m[3]}"),
        (r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", upsampler),
    ], "UNet")


def _vae_names(levels: int) -> Callable[[str], str]:
    def attention(m: re.Match[str]) -> str:
        return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"

    return _renamer([
        (r"(encoder|decoder)\.(conv_in|conv_out)\.(\w+)", lambda m: f"{m[1]}.{m[2]}.{m[3]}"),
        (r"(encoder|decoder)\.conv_norm_out\.(\w+)", lambda m: f"{m[1]}.norm_out.{m[2]}"),
        (r"(quant_conv|post_quant_conv)\.(\w+)", lambda m: f"{m[1]}.{m[2]}"),
        (r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
         lambda m: f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"),
        (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)",
         lambda m: f"encoder.down.{m[1]}.downsample.conv.{m[2]}"),
        (r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
         lambda m: f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"),
        (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)",
         lambda m: f"decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"),
        (r"(encoder|decoder)\.mid_block\.resnets\.([01])\.(.+)",
         lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"),
        (r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(\w+)", attention),
    ], "VAE")
