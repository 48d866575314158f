"""What a button under a job's message asks for: a pure mapping from (parent job, action, image) to a child job.

Buttons carry their whole state in their custom_id, ``job:<job id>:<action>[:<tile>]`` (tiles count from 1,
as the labels U1–U4 / V1–V4 do), so a click on a message posted before a restart still works. The bot reads
the custom_id back with :meth:`ButtonRef.parse`, finds the parent job and the image the action works on
(:func:`source_index`), and asks :func:`child_spec` for the job to submit.

    action            on                      child kind   child spec
    upscale  (U1–U4)  a grid tile             upscale      ×2, the model's upscaler ("subtle" or "creative")
    vary     (V1–V4)  a grid tile             vary         4 images from the tile, new seed, strong strength
    reroll   (🔄)     a grid                  reroll/vary  the same spec, a new seed
    vary_strong       an upscaled image       vary         4 images from it, new seed, strength 0.75
    vary_subtle       an upscaled image       vary         4 images from it, new seed, strength 0.35
    upscale_subtle    an upscaled image       upscale      ×2 with Real-ESRGAN (Lanczos when none is configured)
    upscale_creative  an upscaled image       upscale      ×2, redrawn by the model at low strength
    recipe            an upscaled image       (none)       answered at once with the settings of the image
    cancel            a queued or running job (none)       its owner stops it; the fast time held is refunded

Strengths: img2img re-runs ``strength`` of the denoising schedule from the source image. At 0.75 the
composition and colours stay and the details are redrawn freely (Midjourney's "Vary (Strong)"); at 0.35 only
fine detail changes ("Vary (Subtle)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from domain.aspect import size_for_aspect
from domain.catalog import UPSCALE_MODES, ModelPreset
from domain.errors import DomainError
from domain.spec import GRID_SIZE, JobKind, JobSpec, JobState

__all__ = [
    "CUSTOM_ID_PREFIX",
    "DOUBLE_CLICK_S",
    "STRONG_STRENGTH",
    "SUBTLE_STRENGTH",
    "UPSCALE_FACTOR",
    "UPSCALE_MODES",
    "Action",
    "ButtonError",
    "ButtonRef",
    "SourceImage",
    "check_cancel",
    "check_parent",
    "child_spec",
    "source_index",
]

CUSTOM_ID_PREFIX = "job:"
_CUSTOM_ID = re.compile(r"job:(?P<job_id>[0-9]{1,19}):(?P<action>[a-z_]{1,20})(?::(?P<tile>[0-9]{1,2}))?")
#: Job ids are PostgreSQL bigints.
_MAX_JOB_ID = 2**63 - 1

#: img2img strength of V1–V4 and "Vary (Strong)": keeps the composition, redraws everything else.
STRONG_STRENGTH = 0.75
#: img2img strength of "Vary (Subtle)": only fine detail changes.
SUBTLE_STRENGTH = 0.35
#: Every upscale button doubles each side.
UPSCALE_FACTOR = 2
#: Two clicks of one button by one member this close together (Discord's timestamps) are one double click:
#: they make one job. Clicks further apart each make a job, as in Midjourney.
DOUBLE_CLICK_S = 5.0


class Action(StrEnum):
    """The action of a job button (the middle of its custom_id)."""

    UPSCALE = "upscale"
    VARY = "vary"
    REROLL = "reroll"
    VARY_STRONG = "vary_strong"
    VARY_SUBTLE = "vary_subtle"
    UPSCALE_SUBTLE = "upscale_subtle"
    UPSCALE_CREATIVE = "upscale_creative"
    RECIPE = "recipe"
    CANCEL = "cancel"

    @property
    def takes_tile(self) -> bool:
        """U1–U4 and V1–V4 name a tile of a grid; the other buttons work on their whole message."""
        return self in (Action.UPSCALE, Action.VARY)

    @property
    def on_upscale(self) -> bool:
        """The buttons under an upscaled image."""
        return self in _AFTER_UPSCALE


_AFTER_UPSCALE = frozenset(
    {Action.VARY_STRONG, Action.VARY_SUBTLE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE, Action.RECIPE}
)
_GRIDS = frozenset({JobKind.IMAGINE, JobKind.REROLL, JobKind.VARY})


class ButtonError(DomainError):
    """A click that cannot make a job: a forged or stale button, a job that failed or is gone.

    The message is shown to the clicker as it is (ephemerally); nothing is submitted or charged.
    """


NOT_OURS = "That button isn't one I can use. Use the buttons under a finished image."
JOB_GONE = "That image no longer exists, so its buttons don't work any more."
IMAGE_GONE = "That image is no longer stored, so it can't be upscaled or varied. Run /imagine again."
ALREADY_FINISHED = "This job has already finished."


@dataclass(frozen=True, slots=True)
class ButtonRef:
    """A job button's state: which job, which action, which tile (1-based; None for whole-message actions)."""

    job_id: int
    action: Action
    tile: int | None = None

    @property
    def custom_id(self) -> str:
        """``job:<id>:<action>[:<tile>]`` (at most 44 characters; Discord allows 100)."""
        tile = f":{self.tile}" if self.tile is not None else ""
        return f"{CUSTOM_ID_PREFIX}{self.job_id}:{self.action.value}{tile}"

    @classmethod
    def parse(cls, custom_id: str) -> ButtonRef:
        """Read a custom_id back. Raises :class:`ButtonError` for anything this bot did not make.

        A tile out of range (``job:1:upscale:9``) parses; :func:`source_index` refuses it with a message
        naming the tile.
        """
        match = _CUSTOM_ID.fullmatch(custom_id)
        if match is None:
            raise ButtonError(NOT_OURS)
        try:
            action = Action(match["action"])
        except ValueError:
            raise ButtonError(NOT_OURS) from None
        job_id = int(match["job_id"])
        tile = int(match["tile"]) if match["tile"] is not None else None
        if not 0 < job_id <= _MAX_JOB_ID or (tile is None) == action.takes_tile:
            raise ButtonError(NOT_OURS)
        return cls(job_id, action, tile)


def check_parent(state: JobState) -> None:
    """Refuse a click on a job that has no images to work from."""
    if state is JobState.FAILED:
        raise ButtonError("That job failed, so there is no image to work from. Run /imagine again.")
    if state is JobState.CANCELLED:
        raise ButtonError("That job was cancelled, so there is no image to work from. Run /imagine again.")
    if not state.is_terminal:
        raise ButtonError("That job hasn't finished yet. Wait for its images, then try again.")


def check_cancel(*, owner_id: int, user_id: int, state: JobState) -> None:
    """Refuse a Cancel click by anyone but the job's owner, or on a job that has already ended."""
    if user_id != owner_id:
        raise ButtonError(f"Only <@{owner_id}> can cancel this job.")
    if state.is_terminal:
        raise ButtonError(ALREADY_FINISHED)


def source_index(ref: ButtonRef, parent_kind: JobKind, image_count: int) -> int:
    """The index (0-based) of the parent job's image that ``ref``'s action works on.

    A reroll works on the whole grid; its index (0) only records the lineage. Raises :class:`ButtonError`
    when the action does not belong on a message of ``parent_kind``, or the tile is out of range.
    """
    if ref.action.on_upscale:
        if parent_kind is not JobKind.UPSCALE:
            raise ButtonError(NOT_OURS)
        tile = 1
    else:
        if parent_kind not in _GRIDS:
            raise ButtonError(NOT_OURS)
        tile = ref.tile if ref.tile is not None else 1
    if image_count == 0:
        raise ButtonError(JOB_GONE)
    if not 1 <= tile <= image_count:
        raise ButtonError(f"There is no image #{tile} in that grid; choose 1 to {image_count}.")
    return tile - 1


@dataclass(frozen=True, slots=True)
class SourceImage:
    """The image an action works on (a row of the parent job's images)."""

    key: str
    seed: int
    width: int
    height: int


def child_spec(
    parent: JobSpec,
    parent_kind: JobKind,
    action: Action,
    *,
    source: SourceImage,
    new_seed: int,
    preset: ModelPreset,
) -> tuple[JobKind, JobSpec]:
    """The job a click asks for.

    Parameters
    ----------
    parent:
        The spec of the job whose message holds the button.
    parent_kind:
        That job's kind (a reroll of a variation grid varies the same source again).
    action:
        What the button does; :attr:`Action.RECIPE` and :attr:`Action.CANCEL` make no job (:class:`ValueError`).
    source:
        The image the action works on (see :func:`source_index`).
    new_seed:
        The seed of a new grid (reroll, variations); the caller draws it at random.
    preset:
        The parent's model: U1–U4 use its ``upscale`` method; variations of an upscaled image are drawn
        at its native size for the image's shape.

    The child keeps the parent's prompt, model, sampler, steps and guidance, so its recipe reproduces it.
    An upscale's ``width`` and ``height`` are its source's (the result is ``upscale_factor`` times that) and
    its seed is the source's (its creative pass is seeded with it, and it is that image's seed).
    """
    base = parent.replace(notes=())
    if action is Action.REROLL:
        if parent_kind is JobKind.VARY:
            return JobKind.VARY, base.replace(seed=new_seed)
        return JobKind.REROLL, base.replace(seed=new_seed, init_image=None, strength=None)
    if action in (Action.VARY, Action.VARY_STRONG, Action.VARY_SUBTLE):
        strength = SUBTLE_STRENGTH if action is Action.VARY_SUBTLE else STRONG_STRENGTH
        if parent_kind is JobKind.UPSCALE:  # back to the size the model draws at
            width, height = size_for_aspect(source.width, source.height, preset.pixel_budget)
        else:
            width, height = parent.width, parent.height
        return JobKind.VARY, base.replace(
            seed=new_seed, init_image=source.key, strength=strength, images=GRID_SIZE, width=width, height=height,
            upscale_factor=None, upscale_mode=None,
        )
    if action in (Action.UPSCALE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE):
        mode = {Action.UPSCALE_SUBTLE: "subtle", Action.UPSCALE_CREATIVE: "creative"}.get(action, preset.upscale)
        return JobKind.UPSCALE, base.replace(
            seed=source.seed, init_image=source.key, strength=None, images=1, width=source.width,
            height=source.height, upscale_factor=UPSCALE_FACTOR, upscale_mode=mode,
        )
    raise ValueError(f"action {action.value!r} makes no job")
