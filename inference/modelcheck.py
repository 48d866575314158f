"""Whether a model of the models file can load, checked when a worker starts, before it serves the model's queues.

Only files are read (``model_index.json`` and the component folders; a Hub id's ``model_index.json`` through
``huggingface_hub``): no torch, no diffusers, no weights in memory, no CUDA. So the worker's parent process can
check every model of its queues in well under a second, and one that cannot load is reported in one line
instead of failing a member's job later. A corrupt weights file is still found only when it is loaded.
"""

from __future__ import annotations

import json
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
        return _config_problem(preset.memory.config, caps) if preset.memory.config else None
    local = Path(source).exists()
    try:
        index = _model_index(source, local)
    except Exception as exc:  # OSError, JSON errors, huggingface_hub's errors
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
    folder = Path(config)
    if not folder.is_dir():
        return f"its config folder {config} does not exist; {fix}"
    try:
        index = _model_index(config, local=True)
    except (OSError, ValueError) as exc:
        return f"its config folder {config} has no readable model_index.json ({_first_line(exc)}); {fix}"
    found = index.get("_class_name")
    if found not in caps.pipelines:
        return (f"its config folder {config} holds a {found} pipeline, not one of family {caps.family!r} "
                f"({caps.pipelines[0]}); {fix}")
    for name, value in index.items():
        if name.startswith("_") or name in _SKIPPED_BY_SINGLE_FILE or not isinstance(value, list) or value[0] is None:
            continue
        if not any((folder / name).glob("*.json")):
            return f"its config folder {config} has no {name} config (no {name}/*.json); {fix}"
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _model_index(source: str, local: bool) -> dict[str, Any]:
    if local:
        path = Path(source) / "model_index.json"
    else:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(source, "model_index.json"))
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("model_index.json is not a table")
    return data
