"""Writing the tiny models folder and its ``models.toml`` (see :mod:`inference.tiny`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from inference.tiny import flux, flux2, qwenimage, sd3, sd15, sdxl, zimage
from inference.tiny.lora import LORA_FILES, write_lora
from inference.tiny.parts import ESRGAN, TAESD, TAESD_16, esrgan, no_progress_bars, seeded, taesd

__all__ = ["DRAFT_MODEL", "FAMILY_MODULES", "LORA_TRIGGER", "write_tiny_model"]

#: family name (the models file's ``family``) -> its builder module, in the order the models file lists them.
FAMILY_MODULES: dict[str, ModuleType] = {
    "sd15": sd15,
    "sdxl": sdxl,
    "sd3": sd3,
    "flux": flux,
    "zimage": zimage,
    "flux2": flux2,
    "qwenimage": qwenimage,
}

_HEADER = "# Tiny random-weight models written by inference.tiny.write_tiny_model (for tests and smoke runs).\n"


def write_tiny_model(
    dir: Path, *, seed: int = 0, sdxl: bool = True, families: Iterable[str] | None = None
) -> Path:
    """Write the tiny models and a ``models.toml`` into ``dir``; returns the models file's path.

    Parameters
    ----------
    dir:
        Target folder; created if missing. Existing tiny models in it are overwritten.
    seed:
        Seeds every random weight: the same seed writes the same models.
    sdxl:
        ``False`` leaves ``tiny-sdxl`` (and its ``tiny-xl`` entry) out, whatever ``families`` says.
    families:
        The families to write (names of :data:`FAMILY_MODULES`); all of them by default. The preview
        decoders and the upscaler are always written; the models file's default is ``tiny`` when SD 1.5 is
        written, else the first model written. SD 1.5 and FLUX.1 come with a LoRA (:data:`LORA_FILES`).
    """
    chosen = list(FAMILY_MODULES) if families is None else list(families)
    unknown = [name for name in chosen if name not in FAMILY_MODULES]
    if unknown:
        raise ValueError(f"unknown tiny model families {unknown}; known: {', '.join(FAMILY_MODULES)}")
    if not sdxl:
        chosen = [name for name in chosen if name != "sdxl"]
    if not chosen:
        raise ValueError("write_tiny_model needs at least one family")

    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    with no_progress_bars():
        for name in chosen:
            module = FAMILY_MODULES[name]
            pipe = module.build(seed + _seed_offset(name))
            pipe.save_pretrained(dir / module.FOLDER)
            if name in LORA_FILES:
                write_lora(pipe, dir, LORA_FILES[name], seed=seed + 200 + _seed_offset(name))
    with seeded(seed + 100):
        taesd().save_pretrained(dir / TAESD)
    with seeded(seed + 101):
        taesd(latent_channels=16).save_pretrained(dir / TAESD_16)
    with seeded(seed + 102):
        torch.save(esrgan().state_dict(), dir / ESRGAN)

    path = dir / "models.toml"
    path.write_text(_models_toml(chosen), encoding="utf-8")
    return path


def _seed_offset(family: str) -> int:
    """Each family's weights come from their own seed, so writing only some families changes none of them."""
    return list(FAMILY_MODULES).index(family)


def _models_toml(families: list[str]) -> str:
    names = [FAMILY_MODULES[family].MODEL["name"] for family in families]
    lines = [_HEADER, f'default = {_toml("tiny" if "tiny" in names else names[0])}\n']
    for family, name in zip(families, names, strict=True):
        module = FAMILY_MODULES[family]
        table: dict[str, Any] = {
            "source": f"./{module.FOLDER}",
            "family": family,
            **{key: value for key, value in module.MODEL.items() if key != "name"},
            "upscaler": f"./{ESRGAN}",
        }
        if table.get("preview"):
            table["preview"] = f"./{table['preview']}"
        if family == "sd15":
            table["draft"] = DRAFT_MODEL["name"]
        lines.append(f"\n[models.{name}]\n")
        lines += [f"{key} = {_toml(value)}\n" for key, value in table.items()]
        if family in LORA_FILES:
            lora = {"name": f"{name}-lora", "source": f"./{LORA_FILES[family]}", "weight": 1.0,
                    "triggers": [LORA_TRIGGER], "description": f"Tiny random LoRA for {name}"}
            lines.append(f"\n[[models.{name}.loras]]\n")
            lines += [f"{key} = {_toml(value)}\n" for key, value in lora.items()]
    if "sd15" in families:
        lines.append(_draft_model_toml())
    return "".join(lines)


#: The trigger words of the tiny LoRAs (``--lora tiny-lora`` adds them to the prompt).
LORA_TRIGGER = "tiny style"
#: The few-step variant ``--draft`` on ``tiny`` runs on: the same weights, fewer steps, no scheduler warm-up.
DRAFT_MODEL: dict[str, Any] = {
    "name": "tiny-draft",
    "width": 128,
    "height": 128,
    "steps": 2,
    "guidance": 1.0,
    "scheduler": "euler",
    "description": "Tiny SD 1.5 in 2 steps: what --draft on tiny runs on",
}


def _draft_model_toml() -> str:
    table = {"source": f"./{sd15.FOLDER}", "family": "sd15",
             **{key: value for key, value in DRAFT_MODEL.items() if key != "name"}, "preview": f"./{TAESD}",
             "upscaler": f"./{ESRGAN}"}
    lines = [f"\n[models.{DRAFT_MODEL['name']}]\n", *(f"{key} = {_toml(value)}\n" for key, value in table.items())]
    return "".join(lines)


def _toml(value: Any) -> str:
    """A TOML value for the strings, numbers and string lists of a models table (JSON's forms are TOML's)."""
    if isinstance(value, bool | int | float | str | list):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"no TOML form for {value!r}")
