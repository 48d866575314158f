"""LoRAs: the ones the models file lists for each model, and the ones a job uses.

The operator lists LoRAs per model; members pick among them with ``--lora NAME[:WEIGHT]`` (several at once:
``--lora ink:0.8 --lora film`` or ``--lora ink:0.8,film``). A member never names a file or a Hub id, only a
name from the list, so the models file decides what the workers load::

    [[models.sdxl.loras]]
    name = "ink"                                  # what members type: letters, digits, - _ .
    source = "./loras/ink-sketch.safetensors"      # local .safetensors (as published on Civitai) or a Hub id
    weight_name = ""                               # the file inside a Hub repo or folder, when it holds several
    weight = 0.8                                   # used when --lora names no weight
    triggers = ["ink sketch"]                      # added to the prompt when the LoRA is used
    description = "Black ink sketches"

A job's spec holds its LoRAs as ``(name, weight)`` pairs (:attr:`domain.spec.JobSpec.loras`); workers look the
names up in the models file again, and set exactly those adapters for each job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.errors import CatalogError, PromptError

__all__ = [
    "LORA_WEIGHT_RANGE",
    "LoraPreset",
    "choose_loras",
    "lora_text",
    "parse_loras",
    "read_lora_value",
    "trigger_words",
    "with_triggers",
]

#: ``--lora NAME:WEIGHT`` and the file's ``weight``: LoRAs are trained for 0..1; sliders go negative, and
#: beyond 2 every LoRA burns the image.
LORA_WEIGHT_RANGE = (-2.0, 2.0)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_WEIGHT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True, slots=True)
class LoraPreset:
    """One LoRA of a model, as the models file lists it."""

    name: str
    source: str
    weight: float = 1.0
    triggers: tuple[str, ...] = ()
    #: The ``.safetensors`` file inside ``source`` when that is a Hub repo or a folder with several.
    weight_name: str = ""
    description: str = ""


def _weight_text(weight: float) -> str:
    return f"{weight:g}"


def parse_loras(model: str, tables: Any, resolve: Callable[[str], str]) -> tuple[LoraPreset, ...]:
    """The ``[[models.<model>.loras]]`` array; :class:`CatalogError` naming the model and key otherwise.

    ``resolve`` makes relative paths absolute against the models file's folder.
    """
    if tables is None:
        return ()
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise CatalogError(f"model {model!r}: `loras` must be an array of tables ([[models.{model}.loras]])")
    loras: list[LoraPreset] = []
    seen: set[str] = set()
    low, high = LORA_WEIGHT_RANGE
    for table in tables:
        name = str(table.get("name", ""))
        if not _NAME.fullmatch(name):
            raise CatalogError(
                f"model {model!r}: LoRA name {name!r} must be 1-64 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit"
            )
        where = f"model {model!r}, LoRA {name!r}"
        if name.lower() in seen:
            raise CatalogError(f"{where}: the name is listed twice")
        seen.add(name.lower())
        unknown = set(table) - {"name", "source", "weight", "triggers", "weight_name", "description"}
        if unknown:
            raise CatalogError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        source = str(table.get("source", ""))
        if not source:
            raise CatalogError(f"{where} has no `source` (a .safetensors file or a Hub id)")
        weight = table.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not low <= weight <= high:
            raise CatalogError(f"{where}: weight {weight!r} must be a number from {low:g} to {high:g}")
        triggers = table.get("triggers", [])
        if isinstance(triggers, str):
            triggers = [triggers]
        if not isinstance(triggers, list) or not all(isinstance(t, str) and t.strip() for t in triggers):
            raise CatalogError(f"{where}: `triggers` must be a list of words, like [\"ink sketch\"]")
        loras.append(LoraPreset(
            name=name,
            source=resolve(source),
            weight=float(weight),
            triggers=tuple(" ".join(t.split()) for t in triggers),
            weight_name=str(table.get("weight_name", "")),
            description=str(table.get("description", "")),
        ))
    return tuple(loras)


def read_lora_value(value: str) -> list[tuple[str, float | None]]:
    """``ink:0.8,film`` as ``[("ink", 0.8), ("film", None)]`` (names checked later, against the model).

    Raises ``ValueError`` with a reason for the user.
    """
    low, high = LORA_WEIGHT_RANGE
    picks: list[tuple[str, float | None]] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if "/" in item or "\\" in item:
            raise ValueError(
                f"`{item}` is not a LoRA name; LoRAs are picked by name from the models file, not by path or URL."
            )
        name, sep, weight_text = item.partition(":")
        if not _NAME.fullmatch(name):
            raise ValueError(f"`{item}` is not a LoRA name; write it like `--lora ink` or `--lora ink:0.8`.")
        if not sep:
            picks.append((name, None))
            continue
        if not _WEIGHT.fullmatch(weight_text):
            raise ValueError(
                f"the weight of `{name}` must be a number from {low:g} to {high:g}, like `--lora {name}:0.8`."
            )
        weight = float(weight_text)
        if not low <= weight <= high:
            raise ValueError(
                f"the weight {weight_text} of `{name}` is out of range; use {low:g} to {high:g}, "
                f"like `--lora {name}:0.8`."
            )
        picks.append((name, weight))
    if not picks:
        raise ValueError("name a LoRA, like `--lora ink` or `--lora ink:0.8`.")
    return picks


def choose_loras(
    model: str, available: tuple[LoraPreset, ...], picks: list[tuple[str, float | None]], notes: list[str]
) -> tuple[tuple[str, float], ...]:
    """The ``(name, weight)`` pairs a job uses: each pick checked against the model's LoRAs.

    A LoRA picked twice keeps the later weight (with a note). Raises :class:`PromptError` naming what to change.
    """
    if not picks:
        return ()
    if not available:
        raise PromptError(f"The model `{model}` has no LoRAs here; remove `--lora`, or pick a model that has some.")
    by_name = {lora.name.lower(): lora for lora in available}
    chosen: dict[str, float] = {}
    for name, weight in picks:
        lora = by_name.get(name.lower())
        if lora is None:
            names = ", ".join(f"`{known.name}`" for known in available)
            raise PromptError(f"The model `{model}` has no LoRA called `{name}`; use one of: {names}.")
        if lora.name in chosen:
            notes.append(f"`--lora {lora.name}` is given twice; the later weight is used.")
            del chosen[lora.name]
        chosen[lora.name] = lora.weight if weight is None else weight
    return tuple(chosen.items())


def lora_text(loras: tuple[tuple[str, float], ...]) -> str:
    """The ``--lora`` parameter of a canonical prompt (``--lora ink:0.8,film:1``), or ``""``."""
    if not loras:
        return ""
    return "--lora " + ",".join(f"{name}:{_weight_text(weight)}" for name, weight in loras)


def trigger_words(available: tuple[LoraPreset, ...], names: list[str]) -> list[str]:
    """The trigger words of the named LoRAs, in order, each once."""
    by_name = {lora.name: lora for lora in available}
    words: list[str] = []
    for name in names:
        lora = by_name.get(name)
        for trigger in lora.triggers if lora else ():
            if trigger not in words:
                words.append(trigger)
    return words


def with_triggers(prompt: str, triggers: list[str]) -> str:
    """``prompt`` with the trigger words it does not already contain (case-insensitive) appended."""
    lowered = prompt.lower()
    missing = [word for word in triggers if word.lower() not in lowered]
    return ", ".join([prompt, *missing]) if missing and prompt else ", ".join(missing) or prompt
