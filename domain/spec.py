"""The job spec: everything a worker needs to render one job, as plain data.

A spec is stored as JSON in the job row and is the only input of the worker. It is built by the prompt
parser (``domain.prompt``) from what the user typed, and printed back as a canonical prompt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "GRID_SIZE",
    "LANE_ORDER",
    "MAX_SEED",
    "JobKind",
    "JobSpec",
    "JobState",
    "Lane",
    "image_seed",
    "queue_name",
]

#: Images in one grid (2x2).
GRID_SIZE = 4
#: Seeds are unsigned 32-bit, as in Midjourney.
MAX_SEED = 4_294_967_295


class Lane(StrEnum):
    """Which queue a job waits in. Turbo runs first, relax last."""

    TURBO = "turbo"
    FAST = "fast"
    RELAX = "relax"


class JobKind(StrEnum):
    IMAGINE = "imagine"
    REROLL = "reroll"
    UPSCALE = "upscale"
    VARY = "vary"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def image_seed(seed: int, index: int) -> int:
    """Seed of image ``index`` in a grid whose job seed is ``seed`` (wraps at 2**32)."""
    return (seed + index) % (MAX_SEED + 1)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to render. Field values are already resolved against the model's defaults.

    ``prompt`` is the text the text encoder sees; ``weighted_prompts`` holds ``(text, weight)`` pairs when
    the user wrote a multi-prompt (``a::2 b::-0.5``) and is empty otherwise.
    """

    prompt: str
    model: str
    width: int
    height: int
    seed: int
    steps: int
    guidance_scale: float
    negative_prompt: str = ""
    weighted_prompts: tuple[tuple[str, float], ...] = ()
    sampler: str | None = None
    aspect: str = "1:1"
    stylize: int | None = None
    chaos: int = 0
    quality: float = 1.0
    stop: int = 100
    tile: bool = False
    #: ``--style raw``: no house negative prompt (``domain.capabilities.negative_prompt_for``).
    raw: bool = False
    images: int = GRID_SIZE
    #: Source image for img2img kinds (vary, creative upscale): a storage key.
    init_image: str | None = None
    #: img2img strength, 0..1.
    strength: float | None = None
    #: Upscale factor and method for upscale kinds ("subtle" or "creative").
    upscale_factor: int | None = None
    upscale_mode: str | None = None
    #: Things the user should know about how their prompt was read (dropped parameters, ...).
    notes: tuple[str, ...] = field(default=())

    def replace(self, **changes: Any) -> JobSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["weighted_prompts"] = [list(p) for p in self.weighted_prompts]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["weighted_prompts"] = tuple((str(t), float(w)) for t, w in data.get("weighted_prompts", ()))
        kwargs["notes"] = tuple(data.get("notes", ()))
        return cls(**kwargs)


def queue_name(model: str, lane: Lane) -> str:
    """The Celery queue for a model and lane, e.g. ``sdxl.fast``. Workers consume the queues of their models."""
    return f"{model}.{lane.value}"


#: Lanes in the order a worker serves them: turbo first, relax last.
LANE_ORDER = (Lane.TURBO, Lane.FAST, Lane.RELAX)
