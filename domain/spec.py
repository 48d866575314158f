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
    #: The canvas kinds (:mod:`domain.canvas`): outpainting (zoom, pan, square) and inpainting (a region).
    ZOOM = "zoom"
    PAN = "pan"
    SQUARE = "square"
    REGION = "vary_region"

    @property
    def is_canvas(self) -> bool:
        """Drawn by the model's inpainting pipeline from a source image and a mask."""
        return self in (JobKind.ZOOM, JobKind.PAN, JobKind.SQUARE, JobKind.REGION)

    @property
    def makes_grid(self) -> bool:
        """Four images with U/V/🔄 buttons (everything but an upscale)."""
        return self is not JobKind.UPSCALE


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
    #: ``--lora``: ``(name, weight)`` pairs, names from the model's list in the models file.
    loras: tuple[tuple[str, float], ...] = ()
    #: ``--draft``: drawn by the model's draft variant (steps, guidance and sampler are the draft's).
    draft: bool = False
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
    #: Zoom, pan and square: where the source goes in the output, ``(x, y, width, height)`` in pixels.
    source_box: tuple[int, int, int, int] | None = None
    #: Vary (Region): the cells of a 3x3 grid (1..9, row by row) that are repainted.
    region: tuple[int, ...] = ()
    #: What a canvas job was asked, for its message and recipe: the zoom (1 for Make Square), the pan side.
    zoom: float | None = None
    pan: str | None = None

    def replace(self, **changes: Any) -> JobSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["weighted_prompts"] = [list(p) for p in self.weighted_prompts]
        data["loras"] = [list(p) for p in self.loras]
        data["notes"] = list(self.notes)
        data["source_box"] = list(self.source_box) if self.source_box is not None else None
        data["region"] = list(self.region)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["weighted_prompts"] = tuple((str(t), float(w)) for t, w in data.get("weighted_prompts", ()))
        kwargs["loras"] = tuple((str(name), float(weight)) for name, weight in data.get("loras", ()))
        kwargs["notes"] = tuple(data.get("notes", ()))
        if data.get("source_box") is not None:
            kwargs["source_box"] = tuple(int(v) for v in data["source_box"])
        kwargs["region"] = tuple(int(v) for v in data.get("region", ()))
        return cls(**kwargs)


def queue_name(model: str, lane: Lane) -> str:
    """The Celery queue for a model and lane, e.g. ``sdxl.fast``. Workers consume the queues of their models."""
    return f"{model}.{lane.value}"


#: Lanes in the order a worker serves them: turbo first, relax last.
LANE_ORDER = (Lane.TURBO, Lane.FAST, Lane.RELAX)
