"""Whether a model of the models file can load, checked when a worker starts, before it serves the model's queues.

Only files are read (``model_index.json`` and the component folders; a Hub id's ``model_index.json`` through
``huggingface_hub``): no torch, no diffusers, no weights in memory, no CUDA. So the worker's parent process can
check every model of its queues in well under a second, and one that cannot load is reported in one line
instead of failing a member's job later. A corrupt weights file is still found only when it is loaded.

A single-file checkpoint without ``config`` takes its pipeline's configs from a Hub repo that diffusers picks by
the checkpoint's keys (:func:`_default_config_repo`, read from the safetensors header): the check finds them in the
local Hugging Face cache, or asks the Hub for that repo's ``model_index.json`` (unless HF_HUB_OFFLINE is set).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from domain.capabilities import Capabilities
from domain.catalog import ModelPreset
from domain.memory import SINGLE_FILE_SUFFIXES
from inference.lorafiles import lora_problem

__all__ = ["check_model"]

#: Components ``from_single_file`` never loads from a checkpoint's config folder.
_SKIPPED_BY_SINGLE_FILE = ("safety_checker",)
#: Files that hold a component's weights in the diffusers layout.
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.gguf")
#: What to do about a single-file checkpoint whose pipeline configs cannot be had from the Hub or its cache.
_CONFIG_FIX = ("set `config` to a local folder with the family's pipeline configs (a diffusers folder of this "
               "model: its model_index.json and component configs; no weights needed)")
#: The Hub repos ``from_single_file`` reads a checkpoint's pipeline configs from when it is given no ``config``,
#: by the model type it infers from the checkpoint's keys: diffusers' ``DIFFUSERS_DEFAULT_PIPELINE_PATHS``
#: (``diffusers.loaders.single_file_utils``), the types of the families that load single files here.
DEFAULT_CONFIG_REPOS = {
    "v1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "v2": "stabilityai/stable-diffusion-2-1",
    "inpainting": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "inpainting_v2": "stabilityai/stable-diffusion-2-inpainting",
    "xl_base": "stabilityai/stable-diffusion-xl-base-1.0",
    "xl_refiner": "stabilityai/stable-diffusion-xl-refiner-1.0",
    "xl_inpaint": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
    "playground-v2-5": "playgroundai/playground-v2.5-1024px-aesthetic",
    "sd3": "stabilityai/stable-diffusion-3-medium-diffusers",
    "sd35_medium": "stabilityai/stable-diffusion-3.5-medium",
    "sd35_large": "stabilityai/stable-diffusion-3.5-large",
    "flux-dev": "black-forest-labs/FLUX.1-dev",
    "flux-schnell": "black-forest-labs/FLUX.1-schnell",
    "flux-fill": "black-forest-labs/FLUX.1-Fill-dev",
    "flux-depth": "black-forest-labs/FLUX.1-Depth-dev",
    "z-image-turbo": "Tongyi-MAI/Z-Image-Turbo",
}
#: Each family's model types, the likeliest first (what a ``.ckpt``, whose keys are not read here, may be).
_FAMILY_MODEL_TYPES = {
    "sd15": ("v1", "v2", "inpainting", "inpainting_v2"),
    "sdxl": ("xl_base", "xl_refiner", "xl_inpaint", "playground-v2-5"),
    "sd3": ("sd3", "sd35_medium", "sd35_large"),
    "flux": ("flux-dev", "flux-schnell", "flux-fill", "flux-depth"),
    "zimage": ("z-image-turbo",),
}


def check_model(preset: ModelPreset) -> str | None:
    """Why ``preset`` cannot be loaded, in a few words, or ``None`` when it looks loadable.

    A single-file checkpoint must exist, its family must load one, and its ``config`` folder, when set, must hold
    the configs of its family's pipeline (:func:`_config_problem`); a diffusers folder (or Hub id) must
    hold a pipeline of its family (``domain.capabilities``' ``pipelines``), and every component of a local
    folder must be there with its weights; each LoRA's file must fit the model (:func:`.lorafiles.lora_problem`).
    """
    problem = _model_problem(preset)
    if problem is None:
        problem = next((found for lora in preset.loras if (found := lora_problem(preset, lora))), None)
    return problem


def _model_problem(preset: ModelPreset) -> str | None:
    caps = preset.capabilities
    source = preset.source
    if source.lower().endswith(SINGLE_FILE_SUFFIXES):
        if not caps.single_file:
            return f"family {caps.family!r} cannot load a single-file checkpoint; use a diffusers folder or Hub id"
        if not Path(source).is_file():
            return f"there is no checkpoint file at {source}"
        if preset.memory.config:
            return _config_problem(preset.memory.config, caps)
        return _hub_config_problem(Path(source), caps)
    local = Path(source).exists()
    try:
        index = _model_index(source, local)
    except _HubUnavailable as unavailable:
        return str(unavailable)
    except Exception as exc:  # OSError, JSON errors, huggingface_hub's errors (no such repo, gated, …)
        return f"no pipeline at {source} ({_first_line(exc)})"
    found = index.get("_class_name")
    if found not in caps.pipelines:
        return f"{source} holds a {found} pipeline, not one of family {caps.family!r} ({caps.pipelines[0]})"
    if not local:
        return None
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        folder = Path(source) / name
        if not folder.is_dir():
            return f"its {name} folder is missing from {source}"
        if (folder / "config.json").is_file() and not any(any(folder.glob(p)) for p in _WEIGHT_FILES):
            return f"its {name} weights are missing from {folder}"
    return None


def _config_problem(config: str, caps: Capabilities) -> str | None:
    """What a single-file checkpoint's ``config`` folder lacks: diffusers reads the pipeline's ``model_index.json``
    and every component's config files from it (the tokenizer's and scheduler's files whole: the checkpoint holds
    only the UNet, VAE and text encoders' weights), and fetches nothing."""
    fix = "set `config` to a local diffusers folder of this model (its model_index.json and component configs)"
    if not Path(config).is_dir():
        return f"its config folder {config} does not exist; {fix}"
    lacks = _configs_problem(Path(config), caps)
    return f"its config folder {config} {lacks}; {fix}" if lacks else None


def _hub_config_problem(checkpoint: Path, caps: Capabilities) -> str | None:
    """Why ``from_single_file`` cannot get ``checkpoint``'s pipeline configs with no ``config`` folder: diffusers
    downloads them from its default repo for the checkpoint (``snapshot_download`` of its json and txt files), or
    with HF_HUB_OFFLINE set takes that snapshot from the local cache. A complete snapshot in the cache is enough;
    else, offline, nothing is; online, the repo's ``model_index.json`` must be there to read (a gated repo needs a
    token); its snapshot is left for diffusers to download."""
    from huggingface_hub import constants, try_to_load_from_cache

    shapes = _safetensors_shapes(checkpoint)
    model_type = default_model_type(shapes) if shapes else None  # a .ckpt: any of the family's types
    types = _FAMILY_MODEL_TYPES.get(caps.family, ())
    candidates = [model_type] if model_type in types else list(types)
    if not candidates:
        return None  # a family diffusers has no default configs for: nothing to find out here
    repos = [DEFAULT_CONFIG_REPOS[name] for name in candidates]
    partly: list[str] = []
    for repo in repos:
        cached = try_to_load_from_cache(repo, "model_index.json")
        if isinstance(cached, str):
            missing = _configs_problem(Path(cached).parent, caps)
            if missing is None:
                return None
            partly.append(f"{repo} {missing}")
    named = " or ".join(repos)
    if partly:
        return (f"it has no `config`, and the pipeline configs diffusers reads for it are only partly in the local "
                f"Hugging Face cache ({'; '.join(partly)}); {_CONFIG_FIX}")
    if constants.HF_HUB_OFFLINE:
        return (f"it has no `config`, and the pipeline configs diffusers reads for it ({named} on the Hugging Face "
                f"Hub) are not in the local cache, with HF_HUB_OFFLINE set; {_CONFIG_FIX}")
    if (error := _ask_hub(repos[0])) is not None:  # unreachable, gated, not found
        return (f"it has no `config`, and the pipeline configs diffusers reads for it cannot be fetched from the "
                f"Hugging Face Hub ({repos[0]}: {_first_line(error)}); {_CONFIG_FIX}")
    return None


def _configs_problem(folder: Path, caps: Capabilities) -> str | None:
    """What ``folder`` (a ``config`` folder, or a cached snapshot of a default config repo) lacks for ``caps``'
    pipeline, as the rest of a sentence about it: diffusers reads the pipeline's ``model_index.json`` and each
    component's config files from it (the tokenizer's and scheduler's files whole)."""
    try:
        index = _model_index(str(folder), local=True)
    except (OSError, ValueError) as exc:
        return f"has no readable model_index.json ({_first_line(exc)})"
    found = index.get("_class_name")
    if found not in caps.pipelines:
        return f"holds a {found} pipeline, not one of family {caps.family!r} ({caps.pipelines[0]})"
    for name, value in index.items():
        if name.startswith("_") or name in _SKIPPED_BY_SINGLE_FILE or not isinstance(value, list) or value[0] is None:
            continue
        if not any((folder / name).glob("*.json")):
            return f"has no {name} config (no {name}/*.json)"
    return None


def default_model_type(shapes: dict[str, list[int]]) -> str | None:
    """The model type diffusers' ``infer_diffusers_model_type`` gives a checkpoint with these tensor shapes, for
    the checkpoints of the families here (the branches of that function that lead to them, in its order);
    ``None`` for an SD 3 file of a size it does not know. Anything else is ``"v1"``, as there."""
    def dim(key: str, index: int) -> int | None:
        shape = shapes.get(key)
        return shape[index] if shape is not None and -len(shape) <= index < len(shape) else None

    unet = "model.diffusion_model."
    v2 = dim(unet + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight", -1) == 1024
    xl_base = "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias" in shapes
    if dim(unet + "input_blocks.0.0.weight", 1) == 9:
        return "inpainting_v2" if v2 else "xl_inpaint" if xl_base else "inpainting"
    if v2:
        return "v2"
    if "edm_mean" in shapes:
        return "playground-v2-5"
    if xl_base:
        return "xl_base"
    if "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias" in shapes:
        return "xl_refiner"
    sd3 = [key for key in ("joint_blocks.0.context_block.adaLN_modulation.1.bias",
                           unet + "joint_blocks.0.context_block.adaLN_modulation.1.bias") if key in shapes]
    if sd3 and any(dim(key, -1) == 9216 for key in sd3):
        positions = dim(unet + "pos_embed" if unet + "pos_embed" in shapes else "pos_embed", 1)
        return {36864: "sd3", 147456: "sd35_medium"}.get(positions or 0)
    if any(key in shapes for key in ("joint_blocks.37.x_block.mlp.fc1.weight",
                                     unet + "joint_blocks.37.x_block.mlp.fc1.weight")):
        return "sd35_large"
    if any(key in shapes for key in ("double_blocks.0.img_attn.norm.key_norm.scale",
                                     unet + "double_blocks.0.img_attn.norm.key_norm.scale")):
        if not any(key in shapes for key in ("guidance_in.in_layer.bias", unet + "guidance_in.in_layer.bias")):
            return "flux-schnell"
        channels = dim(unet + "img_in.weight" if unet + "img_in.weight" in shapes else "img_in.weight", 1)
        return {384: "flux-fill", 128: "flux-depth"}.get(channels or 0, "flux-dev")
    if any(key in shapes for key in ("layers.0.adaLN_modulation.0.weight",
                                     unet + "layers.0.adaLN_modulation.0.weight")):
        return "z-image-turbo"
    return "v1"


def _safetensors_shapes(path: Path) -> dict[str, list[int]] | None:
    """The tensor shapes in a ``.safetensors`` file's header (8 bytes of length, then JSON), without reading the
    weights; ``None`` when ``path`` is no readable safetensors file (a ``.ckpt`` is a pickle)."""
    try:
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > 100_000_000:
                return None
            header = json.loads(file.read(length))
    except (OSError, ValueError, struct.error):
        return None
    if not isinstance(header, dict):
        return None
    return {key: list(value["shape"]) for key, value in header.items()
            if key != "__metadata__" and isinstance(value, dict) and isinstance(value.get("shape"), list)}


def _hub_model_index(repo: str) -> Path:
    """The Hub model ``repo``'s ``model_index.json``: the local cache's copy when there is one, with no request
    (whether it is the newest is diffusers' business when it loads the model); else, once :func:`_ask_hub` finds
    the Hub serving it, the download."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    cached = try_to_load_from_cache(repo, "model_index.json")
    if isinstance(cached, str):
        return Path(cached)
    fetch = f"download it into the Hugging Face cache first (`hf download {repo}`)"
    if constants.HF_HUB_OFFLINE:
        raise _HubUnavailable(f"{repo} is not in the local Hugging Face cache, with HF_HUB_OFFLINE set; {fetch}, "
                              "or unset HF_HUB_OFFLINE")
    error = _ask_hub(repo)
    if isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code < 500:
        raise error  # no such repo or file, gated, no token: huggingface_hub's words say which
    if error is not None:  # refused, timed out, no route, the Hub's own failure
        raise _HubUnavailable(f"{repo} is not in the local Hugging Face cache, and the Hugging Face Hub cannot be "
                              f"reached ({_first_line(error)}); check this machine's network and HF_ENDPOINT, "
                              f"or {fetch}")
    return Path(hf_hub_download(repo, "model_index.json"))


def _ask_hub(repo: str) -> Exception | None:
    """Whether the Hub serves ``repo``'s ``model_index.json`` to this machine: one HEAD request, no retries
    (huggingface_hub's downloads retry a refused connection for about 23 s). Returns its error, if any."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        get_hf_file_metadata(hf_hub_url(repo, "model_index.json"))
    except Exception as exc:  # huggingface_hub's and the network's errors
        return exc
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _HubUnavailable(Exception):
    """A Hub model's ``model_index.json`` is neither in the local cache nor on a Hub this machine can reach."""


def _model_index(source: str, local: bool) -> dict[str, Any]:
    path = Path(source) / "model_index.json" if local else _hub_model_index(source)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("model_index.json is not a table")
    return data
