"""Draft mode (Midjourney V7's ``--draft``): a quick, cheap grid on a few-step variant of the model.

The operator names the variant per model with a ``draft`` key, in one of three forms::

    [models.flux-dev]
    draft = "flux-schnell"      # another model of the same family: its pipeline, steps, guidance, sampler

    [models.sdxl.draft]         # or a few-step LoRA of this model (SDXL Lightning, LCM, Hyper-SD)
    lora = "lightning"          # one of [[models.sdxl.loras]]
    weight = 1.0                # default: the LoRA's own
    steps = 4
    guidance = 0.0
    scheduler = "euler"

    [models.zimage-turbo.draft] # or the model itself in fewer steps (an already distilled model)
    steps = 4

Every form may set ``steps``, ``guidance`` and ``scheduler``; unset, they come from the draft model (first
form) or from this model (the others). A draft job keeps the model it was asked for in its spec
(``spec.model``, ``spec.draft``) with the draft's steps, guidance and sampler, so its estimate follows the
cost model for fewer steps, its canonical prompt reads back as the same job, and Enhance
(:func:`domain.actions.child_spec`) re-runs it at full quality with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.errors import CatalogError, PromptError

if TYPE_CHECKING:
    from domain.catalog import Catalog, ModelPreset
    from domain.loras import LoraPreset
    from domain.spec import JobSpec

__all__ = ["DraftPreset", "JobModels", "check_draft", "draft_defaults", "job_models", "parse_draft"]

_KEYS = {"model", "lora", "weight", "steps", "guidance", "scheduler"}


@dataclass(frozen=True, slots=True)
class DraftPreset:
    """A model's draft variant: another model (``model``) or one of its LoRAs (``lora``), and overrides."""

    model: str = ""
    lora: str = ""
    weight: float | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None


def parse_draft(model: str, value: Any, schedulers: tuple[str, ...]) -> DraftPreset | None:
    """The ``draft`` key of ``[models.<model>]``: a model name, or a table (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, dict):
        raise CatalogError(f"model {model!r}: `draft` must be a model name or a [models.{model}.draft] table")
    unknown = set(value) - _KEYS
    if unknown:
        raise CatalogError(f"model {model!r}: draft has unknown key(s) {', '.join(sorted(unknown))}")
    if value.get("model") and value.get("lora"):
        raise CatalogError(f"model {model!r}: draft takes `model` (another model) or `lora`, not both")
    if not value.get("model") and not value.get("lora") and "steps" not in value:
        raise CatalogError(
            f"model {model!r}: draft needs `model` (another model), `lora` (a few-step LoRA) or fewer `steps`"
        )
    scheduler = value.get("scheduler")
    if scheduler is not None and scheduler not in schedulers:
        raise CatalogError(
            f"model {model!r}: draft scheduler {scheduler!r} is not one of {', '.join(schedulers)}"
        )
    try:
        steps = int(value["steps"]) if "steps" in value else None
        guidance = float(value["guidance"]) if "guidance" in value else None
        weight = float(value["weight"]) if "weight" in value else None
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"model {model!r}: draft: {exc}") from exc
    if steps is not None and steps < 1:
        raise CatalogError(f"model {model!r}: draft steps must be at least 1, not {steps}")
    if weight is not None and "lora" not in value:
        raise CatalogError(f"model {model!r}: draft `weight` is the weight of a draft `lora`; remove it")
    return DraftPreset(
        model=str(value.get("model", "")), lora=str(value.get("lora", "")), weight=weight, steps=steps,
        guidance=guidance, scheduler=scheduler,
    )


def check_draft(preset: ModelPreset, models: dict[str, ModelPreset]) -> None:
    """Cross-check ``preset.draft`` against the other models (called once the whole file is read)."""
    draft = preset.draft
    if draft is None:
        return
    where = f"model {preset.name!r}: draft"
    if draft.model:
        other = models.get(draft.model)
        if other is None:
            raise CatalogError(f"{where} model {draft.model!r} is not defined under [models]")
        if other.name == preset.name:
            raise CatalogError(f"{where} model is the model itself; name a faster model, or a `lora`")
        if other.family != preset.family:
            raise CatalogError(
                f"{where} model {other.name!r} is a {other.family} model, not {preset.family}; "
                "a draft must be of the same family"
            )
    elif draft.lora:
        if draft.lora not in {lora.name for lora in preset.loras}:
            raise CatalogError(
                f"{where} LoRA {draft.lora!r} is not one of this model's [[models.{preset.name}.loras]]"
            )
    elif draft.steps is not None and draft.steps >= preset.steps:
        raise CatalogError(f"{where} steps {draft.steps} must be fewer than the model's {preset.steps}")


@dataclass(frozen=True, slots=True)
class _Defaults:
    steps: int
    guidance: float
    scheduler: str


def draft_defaults(preset: ModelPreset, catalog: Catalog) -> _Defaults:
    """Steps, guidance and sampler a ``--draft`` job of ``preset`` runs with (before ``--q``, ``--s``)."""
    draft = preset.draft
    assert draft is not None
    base = catalog.models[draft.model] if draft.model else preset
    return _Defaults(
        steps=draft.steps if draft.steps is not None else base.steps,
        guidance=draft.guidance if draft.guidance is not None else base.guidance,
        scheduler=draft.scheduler or base.scheduler,
    )


@dataclass(frozen=True, slots=True)
class JobModels:
    """What a worker runs a job with: the model whose pipeline draws it, and the LoRAs to set on it."""

    preset: ModelPreset
    loras: tuple[tuple[LoraPreset, float], ...]


def job_models(spec: JobSpec, catalog: Catalog) -> JobModels:
    """The pipeline and LoRAs of ``spec``: its model's, or its draft variant's under ``--draft``.

    The spec's LoRAs are looked up in its model's list; a name the file no longer lists raises
    :class:`domain.errors.PromptError` (the job fails with that message).
    """
    preset = catalog.get(spec.model)
    by_name = {lora.name: lora for lora in preset.loras}
    loras: list[tuple[LoraPreset, float]] = []
    for name, weight in spec.loras:
        if name not in by_name:
            raise PromptError(f"The LoRA `{name}` of model `{preset.name}` is no longer served here.")
        loras.append((by_name[name], weight))
    target = preset
    if spec.draft:
        draft = preset.draft
        if draft is None:
            raise PromptError(f"The model `{preset.name}` has no draft mode any more; run it without `--draft`.")
        if draft.model:
            target = catalog.models[draft.model]
        elif draft.lora and draft.lora not in dict(spec.loras):  # picked with --lora too: that weight wins
            lora = by_name[draft.lora]
            loras.append((lora, draft.weight if draft.weight is not None else lora.weight))
    return JobModels(target, tuple(loras))

