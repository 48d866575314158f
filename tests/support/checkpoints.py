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

SDXL (:func:`write_sdxl_checkpoint`) keeps the UNet and VAE as above, its ``add_embedding`` as ``label_emb.0.0/2``,
the first text encoder under ``conditioner.embedders.0.transformer.`` (transformers names) and the second under
``conditioner.embedders.1.model.`` in OpenCLIP names: ``token_embedding``, ``positional_embedding``,
``transformer.resblocks.N`` (``ln_1``, ``attn.in_proj_weight`` with q, k and v stacked, ``attn.out_proj``, ``ln_2``,
``mlp.c_fc``, ``mlp.c_proj``), ``ln_final`` and ``text_projection`` (transposed). Without a ``config`` folder diffusers
takes a file for SDXL by that encoder's tenth layer, which tiny encoders lack; with one it reads the configs from
there and tells the two encoders apart by their widths, so :func:`write_tiny_sdxl` gives the second a width of its
own (the tiny SDXL of ``inference.tiny`` has two of the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["copy_configs", "write_sd15_checkpoint", "write_sdxl_checkpoint", "write_tiny_sdxl"]

UNET, VAE, CLIP = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."
#: SDXL's two text encoders: CLIP ViT-L (transformers names), OpenCLIP ViT-bigG (OpenCLIP names).
CLIP_XL, OPEN_CLIP_XL = "conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
           "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def write_sd15_checkpoint(folder: Path, out: Path) -> Path:
    """The SD 1.x pipeline saved in ``folder`` (diffusers layout) as one original-layout checkpoint ``out``.

    Every weight of the UNet, VAE and text encoder is written, renamed; a name this mapping does not know
    raises :class:`ValueError`, so a model the writer cannot express is never written half.
    """
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, safety_checker=None)
    tensors = _unet_and_vae(pipe)
    tensors.update(_clip(pipe.text_encoder, CLIP))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(out))
    return out


def write_sdxl_checkpoint(folder: Path, out: Path) -> Path:
    """The SDXL pipeline saved in ``folder`` (diffusers layout) as one original-layout checkpoint ``out``; every
    weight is written, renamed, as by :func:`write_sd15_checkpoint`."""
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    tensors = _unet_and_vae(pipe)
    tensors.update(_clip(pipe.text_encoder, CLIP_XL))
    tensors.update(_open_clip(pipe.text_encoder_2, OPEN_CLIP_XL))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(out))
    return out


def write_tiny_sdxl(out: Path, *, seed: int = 0, width_2: int = 48) -> Path:
    """A tiny random SDXL saved in ``out`` as ``inference.tiny``'s, but with a second text encoder ``width_2``
    wide (the first is ``inference.tiny.parts.TEXT_WIDTH``), as SDXL's are: a single file of it loads from a
    ``config`` folder (the module docstring says why)."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from inference.tiny.parts import TEXT_WIDTH, autoencoder_kl, clip_text_encoder, sd_scheduler, seeded
    from inference.tiny.sdxl import TIME_EMBED_DIM
    from inference.tiny.tokenizers import clip_tokenizer

    with seeded(seed):
        tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer()
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(tokenizer_2), hidden_size=width_2, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, max_position_embeddings=tokenizer_2.model_max_length, projection_dim=width_2,
            bos_token_id=tokenizer_2.bos_token_id, eos_token_id=tokenizer_2.eos_token_id,
            pad_token_id=tokenizer_2.pad_token_id,
        ))
        unet = UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED_DIM, transformer_layers_per_block=(1, 1),
            projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + width_2,
            cross_attention_dim=TEXT_WIDTH + width_2, norm_num_groups=32,
        )
        pipe: Any = StableDiffusionXLPipeline(
            vae=autoencoder_kl(scaling_factor=0.13025), text_encoder=clip_text_encoder(tokenizer),
            text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
            scheduler=sd_scheduler(), add_watermarker=False,
        )
    pipe.save_pretrained(out)
    return out


def _unet_and_vae(pipe: Any) -> dict[str, Any]:
    """``pipe``'s UNet and VAE weights under their original-layout names."""
    unet_name = _unet_names(pipe.unet.config)
    vae_name = _vae_names(len(pipe.vae.config.up_block_types))
    tensors: dict[str, Any] = {}
    for key, value in pipe.unet.state_dict().items():
        tensors[UNET + unet_name(key)] = value
    for key, value in pipe.vae.state_dict().items():
        name = vae_name(key)
        if ".mid.attn_1." in name and name.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            value = value[:, :, None, None]  # linear in diffusers, a 1x1 convolution in the original
        tensors[VAE + name] = value
    return tensors


def _clip(encoder: Any, prefix: str) -> dict[str, Any]:
    """A transformers CLIP text encoder's weights under ``prefix``, with the ``text_model.`` level kept."""
    return {prefix + (key if key.startswith("text_model.") else "text_model." + key): value
            for key, value in encoder.state_dict().items()}


def _open_clip(encoder: Any, prefix: str) -> dict[str, Any]:
    """A transformers ``CLIPTextModelWithProjection``'s weights under ``prefix`` in OpenCLIP names."""
    import torch

    state = {key.removeprefix("text_model."): value for key, value in encoder.state_dict().items()}
    fixed = {"embeddings.token_embedding.weight": "token_embedding.weight",
             "embeddings.position_embedding.weight": "positional_embedding",
             "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
    parts = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
             "self_attn.out_proj": "attn.out_proj"}
    tensors: dict[str, Any] = {prefix + "text_projection": state.pop("text_projection.weight").T}
    for key, name in fixed.items():
        tensors[prefix + name] = state.pop(key)
    if "embeddings.position_ids" in state:
        state.pop("embeddings.position_ids")  # a buffer, not a weight
    layers = sorted({int(found[1]) for key in state if (found := re.match(r"encoder\.layers\.(\d+)\.", key))})
    for n in layers:
        layer = f"encoder.layers.{n}."
        out = f"{prefix}transformer.resblocks.{n}."
        for kind in ("weight", "bias"):
            tensors[out + f"attn.in_proj_{kind}"] = torch.cat(
                [state.pop(f"{layer}self_attn.{p}_proj.{kind}") for p in ("q", "k", "v")])
        for key in [key for key in state if key.startswith(layer)]:
            rest = key.removeprefix(layer)
            part, _, tail = rest.rpartition(".")
            if part not in parts:
                raise ValueError(f"no original-layout name for the OpenCLIP weight {key!r}")
            tensors[out + f"{parts[part]}.{tail}"] = state.pop(key)
    if state:
        raise ValueError(f"no original-layout name for the OpenCLIP weights {sorted(state)}")
    return tensors


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
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    cross_up = ["CrossAttn" in kind for kind in config.up_block_types]

    def upsampler(m: re.Match[str]) -> str:
        level = int(m[1])
        return f"output_blocks.{level * per_level + per_level - 1}.{2 if cross_up[level] else 1}.conv.{m[2]}"

    return _renamer([
        (r"(time_embedding\.linear_[12]|add_embedding\.linear_[12]|conv_in|conv_norm_out|conv_out)\.(\w+)",
         lambda m: f"{fixed[m[1]]}.{m[2]}"),
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
