"""LoRAs on a shared pipeline: loaded once per process, and exactly the job's adapters active for each job.

Each LoRA of the models file is loaded with diffusers' loader as an adapter named after it
(``pipe.load_lora_weights(source, adapter_name=name)``) when its model loads, so a LoRA that does not fit the
model (made for another family) is reported when the model loads, not when a member first picks it; the
worker's start-up check reads each LoRA file's header before that (:func:`lora_problem`). Before every
render, :func:`use_loras` sets the job's adapters and weights (``set_adapters``), or turns every adapter off
(``disable_lora``) for a job without any: a job never draws with the LoRA of the job before it. Pipelines
made with ``from_pipe`` share the same modules, so setting the adapters on one sets them on its siblings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domain.catalog import ModelPreset
from domain.loras import LoraPreset, trigger_words, with_triggers
from domain.spec import JobSpec
from inference.errors import ModelLoadError
from inference.lorafiles import lora_problem

__all__ = ["load_lora", "load_loras", "loaded_adapters", "lora_problem", "prepare_loras", "use_loras"]

log = logging.getLogger(__name__)


def loaded_adapters(pipe: Any) -> set[str]:
    """Names of the adapters loaded into any component of ``pipe``."""
    if not hasattr(pipe, "get_list_adapters"):
        return set()
    return {name for names in pipe.get_list_adapters().values() for name in names}


def load_lora(pipe: Any, lora: LoraPreset, preset: ModelPreset) -> None:
    """Load ``lora`` into ``pipe`` as the adapter ``lora.name``, once.

    Raises :class:`ModelLoadError` (one line naming the model and LoRA) when the file is missing, or its
    weights do not fit this model: another family's LoRA has other layer shapes, or no layer of this one.
    """
    if lora.name in loaded_adapters(pipe):
        return
    where = f"model {preset.name!r}, LoRA {lora.name!r}"
    if not hasattr(pipe, "load_lora_weights"):
        raise ModelLoadError(f"{where}: the {preset.family} pipeline here cannot load LoRAs; remove it")
    options: dict[str, Any] = {"adapter_name": lora.name}
    if lora.weight_name:
        options["weight_name"] = lora.weight_name
    local = Path(lora.source).exists()
    if local:
        options["local_files_only"] = True
    elif lora.source.startswith(("/", "./", "../")) or lora.source.endswith(".safetensors"):
        raise ModelLoadError(f"{where}: the file {lora.source!r} does not exist")
    try:
        pipe.load_lora_weights(lora.source, **options)
    except (RuntimeError, ValueError, KeyError) as exc:  # shape mismatches, unknown key layouts
        reason = str(exc).strip().splitlines()
        detail = next((line.strip() for line in reason if "mismatch" in line), reason[0] if reason else "")
        raise ModelLoadError(
            f"{where}: it does not fit this {preset.family} model (made for another family?): {detail}"
        ) from exc
    if lora.name not in loaded_adapters(pipe):
        raise ModelLoadError(
            f"{where}: none of its weights belong to this {preset.family} model (made for another family?)"
        )
    log.info("%s: loaded LoRA %s from %s", preset.name, lora.name, lora.source)


def load_loras(pipe: Any, preset: ModelPreset) -> None:
    """Load every LoRA the models file lists for ``preset`` into ``pipe``, turned off."""
    for lora in preset.loras:
        load_lora(pipe, lora, preset)
    if loaded_adapters(pipe):
        pipe.disable_lora()


def use_loras(pipe: Any, preset: ModelPreset, loras: Sequence[tuple[LoraPreset, float]]) -> None:
    """Make exactly ``loras`` (with their weights) active on ``pipe`` for the next call, nothing else.

    A LoRA not loaded into this pipeline yet (a draft model drawing with its full model's LoRA) is loaded first.
    """
    if not loras:
        if loaded_adapters(pipe):
            pipe.disable_lora()
        return
    for lora, _ in loras:
        load_lora(pipe, lora, preset)
    pipe.enable_lora()
    pipe.set_adapters([lora.name for lora, _ in loras], adapter_weights=[weight for _, weight in loras])


def prepare_loras(pipe: Any, preset: ModelPreset, spec: JobSpec, loras: Sequence[tuple[LoraPreset, float]]) -> JobSpec:
    """Set the job's adapters on ``pipe`` (:func:`use_loras`) and return ``spec`` with its LoRAs' trigger
    words added to the prompt (and to each part of a multi-prompt), for the text encoders."""
    use_loras(pipe, preset, loras)
    triggers = trigger_words(tuple(lora for lora, _ in loras), [lora.name for lora, _ in loras])
    if not triggers:
        return spec
    return spec.replace(
        prompt=with_triggers(spec.prompt, triggers),
        weighted_prompts=tuple((with_triggers(text, triggers), weight) for text, weight in spec.weighted_prompts),
    )
