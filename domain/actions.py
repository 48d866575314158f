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
    upscale_4x        an upscaled image       upscale      ×4 with Real-ESRGAN (Lanczos when none is configured)
    redo_upscale      an upscaled image       upscale      the upscale that made it, again from its source, new seed
    zoom_2x/zoom_1_5x an upscaled image       zoom         outpainted: the image in the centre at 1/2 (1/1.5) the side
    zoom_custom       an upscaled image       zoom         a modal: prompt, zoom 1.0–2.0, optional --ar
    square            a non-square upscale    square       outpainted to a square
    pan_<side>        an upscaled image       pan          outpainted: the canvas grows by half a side that way
    vary_region       an upscaled image       vary_region  a modal: cells of a 3x3 grid and an optional prompt
    recipe            an upscaled image       (none)       answered at once with the settings of the image
    enhance  (E1–E4)  a draft grid's tile     imagine/vary the tile's prompt and seed at full quality (no draft)
    cancel            a queued or running job (none)       its owner stops it; the fast time held is refunded

The canvas geometry (sizes, where the source goes, what is refused) is :mod:`domain.canvas`; what a modal
adds to a click (Custom Zoom's values, the region, a Remix prompt) arrives as an :class:`Edit`.

Strengths: img2img re-runs ``strength`` of the denoising schedule from the source image. At 0.75 the
composition and colours stay and the details are redrawn freely (Midjourney's "Vary (Strong)"); at 0.35 only
fine detail changes ("Vary (Subtle)").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from domain.aspect import size_for_aspect
from domain.canvas import Canvas, Pan, pan_canvas, square_canvas, zoom_canvas
from domain.catalog import UPSCALE_MODES, ModelPreset
from domain.errors import DomainError
from domain.params import guidance_for_stylize, steps_for_quality
from domain.spec import GRID_SIZE, JobKind, JobSpec, JobState

__all__ = [
    "CUSTOM_ID_PREFIX",
    "DOUBLE_CLICK_S",
    "MAX_UPSCALED_SIDE",
    "STRONG_STRENGTH",
    "SUBTLE_STRENGTH",
    "UPSCALE_FACTOR",
    "UPSCALE_MODES",
    "Action",
    "ButtonError",
    "ButtonRef",
    "Edit",
    "SourceImage",
    "check_cancel",
    "check_parent",
    "child_spec",
    "enhanced",
    "remix",
    "rerolls_source",
    "source_index",
]

CUSTOM_ID_PREFIX = "job:"
_CUSTOM_ID = re.compile(r"job:(?P<job_id>[0-9]{1,19}):(?P<action>[a-z][a-z0-9_]{0,19})(?::(?P<tile>[0-9]{1,2}))?")
#: Job ids are PostgreSQL bigints.
_MAX_JOB_ID = 2**63 - 1

#: img2img strength of V1–V4 and "Vary (Strong)": keeps the composition, redraws everything else.
STRONG_STRENGTH = 0.75
#: img2img strength of "Vary (Subtle)": only fine detail changes.
SUBTLE_STRENGTH = 0.35
#: U1–U4 and the ×2 upscale buttons double each side; Upscale (4x) quadruples it.
UPSCALE_FACTOR = 2
#: No upscale makes a side longer than this (a bigger PNG is slow to make, store and upload).
MAX_UPSCALED_SIDE = 8192
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
    UPSCALE_4X = "upscale_4x"
    REDO_UPSCALE = "redo_upscale"
    ZOOM_2X = "zoom_2x"
    ZOOM_1_5X = "zoom_1_5x"
    ZOOM_CUSTOM = "zoom_custom"
    SQUARE = "square"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    PAN_UP = "pan_up"
    PAN_DOWN = "pan_down"
    VARY_REGION = "vary_region"
    ENHANCE = "enhance"

    @property
    def takes_tile(self) -> bool:
        """U1–U4, V1–V4 and Enhance name a tile of a grid; the other buttons work on their whole message."""
        return self in (Action.UPSCALE, Action.VARY, Action.ENHANCE)

    @property
    def on_upscale(self) -> bool:
        """The buttons under an upscaled image."""
        return self in _AFTER_UPSCALE

    @property
    def asks(self) -> bool:
        """Opens a modal every time (Custom Zoom's values, Vary (Region)'s cells)."""
        return self in (Action.ZOOM_CUSTOM, Action.VARY_REGION)

    @property
    def remixes(self) -> bool:
        """With Remix on, opens a modal with the prompt to edit first (Midjourney's Remix mode)."""
        return self in _REMIXED

    @property
    def pan(self) -> Pan | None:
        return _PANS.get(self)


_PANS = {Action.PAN_LEFT: Pan.LEFT, Action.PAN_RIGHT: Pan.RIGHT, Action.PAN_UP: Pan.UP, Action.PAN_DOWN: Pan.DOWN}
_ZOOMS = {Action.ZOOM_2X: 2.0, Action.ZOOM_1_5X: 1.5}
_AFTER_UPSCALE = frozenset({
    Action.VARY_STRONG, Action.VARY_SUBTLE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE, Action.RECIPE,
    Action.UPSCALE_4X, Action.REDO_UPSCALE, Action.ZOOM_2X, Action.ZOOM_1_5X, Action.ZOOM_CUSTOM, Action.SQUARE,
    *_PANS, Action.VARY_REGION,
})
_REMIXED = frozenset({
    Action.VARY, Action.REROLL, Action.VARY_STRONG, Action.VARY_SUBTLE, Action.ZOOM_2X, Action.ZOOM_1_5X,
    Action.ZOOM_CUSTOM, Action.SQUARE, *_PANS, Action.VARY_REGION,
})
#: What U1–U4, V1–V4 and 🔄 work on: every kind but an upscale makes a grid.
_GRIDS = frozenset(kind for kind in JobKind if kind.makes_grid)


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


def rerolls_source(action: Action, parent_kind: JobKind) -> bool:
    """A 🔄 of a grid drawn from a source image (variations, canvas jobs) draws from that source again."""
    return action is Action.REROLL and (parent_kind is JobKind.VARY or parent_kind.is_canvas)


@dataclass(frozen=True, slots=True)
class Edit:
    """What a modal added to a click.

    ``prompt`` is the member's edited prompt, read against the parent's model (Remix, Custom Zoom, and
    Vary (Region)'s optional prompt); ``zoom`` and ``aspect`` come from Custom Zoom, ``cells`` from
    Vary (Region) (already checked by :func:`domain.canvas.region_cells`).
    """

    prompt: JobSpec | None = None
    zoom: float | None = None
    aspect: tuple[int, int] | None = None
    cells: tuple[int, ...] = ()


#: What a Remix may change: the words and how they are drawn. The size, model and source stay.
_REMIX_FIELDS = ("prompt", "negative_prompt", "weighted_prompts", "stylize", "chaos", "quality", "stop", "tile",
                 "raw", "steps", "guidance_scale", "sampler")


def remix(parent: JobSpec, edited: JobSpec) -> tuple[JobSpec, tuple[str, ...]]:
    """``parent`` with the prompt and drawing parameters of ``edited``, and the notes for the member: how the
    edited prompt was read (a dropped parameter), and what the Remix kept."""
    notes: list[str] = []
    if edited.model != parent.model:
        notes.append(f"Remix keeps the model of the image ({parent.model}); `--model` was ignored.")
    if edited.aspect != parent.aspect:
        notes.append("Remix keeps the shape of the image; `--ar` was ignored (Custom Zoom takes an --ar).")
    changes = {name: getattr(edited, name) for name in _REMIX_FIELDS}
    return parent.replace(**changes), (*edited.notes, *notes)  # how the edited prompt was read, then what stayed


def _ratio(width: int, height: int) -> str:
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


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
    edit: Edit | None = None,
) -> tuple[JobKind, JobSpec]:
    """The job a click asks for.

    Parameters
    ----------
    parent:
        The spec of the job whose message holds the button.
    parent_kind:
        That job's kind (a reroll of a variation grid varies the same source again).
    action:
        What the button does; :attr:`Action.RECIPE` and :attr:`Action.CANCEL` make no job (:class:`ValueError`);
        :attr:`Action.ENHANCE` is :func:`enhanced`.
    source:
        The image the action works on (see :func:`source_index`).
    new_seed:
        The seed of a new grid (reroll, variations); the caller draws it at random.
    preset:
        The parent's model: U1–U4 use its ``upscale`` method; variations of an upscaled image and canvas
        jobs are drawn at its pixel budget.
    edit:
        What a modal added (:class:`Edit`): an edited prompt replaces the parent's words (:func:`remix`),
        with a seed of its own when the member changed ``--seed``.

    Raises :class:`~domain.canvas.CanvasError` (a :class:`DomainError`) for a canvas request that cannot be
    drawn, and :class:`ButtonError` for an upscale past :data:`MAX_UPSCALED_SIDE`.

    The child keeps the parent's prompt, model, sampler, steps and guidance, so its recipe reproduces it.
    An upscale's ``width`` and ``height`` are its source's (the result is ``upscale_factor`` times that) and
    its seed is the source's (its creative pass is seeded with it, and it is that image's seed).
    """
    edit = edit or Edit()
    if action is Action.ENHANCE:
        return enhanced(parent, parent_kind, source, preset)
    base, notes = parent.replace(notes=()), tuple[str, ...]()
    if edit.prompt is not None:
        base, notes = remix(base, edit.prompt)
        if edit.prompt.seed != parent.seed:  # the member typed a seed of their own
            new_seed = edit.prompt.seed
    if (action in _CANVAS_KINDS or action is Action.VARY_REGION) and not preset.capabilities.inpaint:
        raise ButtonError(
            f"Zoom, pan, Make Square and Vary (Region) are not available for {preset.name}: "
            f"{preset.capabilities.label} has no inpainting pipeline here. Try Vary (Strong) or another model."
        )
    canvas = _canvas(action, source, preset, edit)
    if action is Action.REROLL:
        if parent_kind is JobKind.VARY or parent_kind.is_canvas:  # the same source, drawn again
            return parent_kind, base.replace(seed=new_seed, notes=notes)
        return JobKind.REROLL, base.replace(seed=new_seed, init_image=None, strength=None, notes=notes)
    if action in (Action.VARY, Action.VARY_STRONG, Action.VARY_SUBTLE):
        strength = SUBTLE_STRENGTH if action is Action.VARY_SUBTLE else STRONG_STRENGTH
        if parent_kind is JobKind.UPSCALE:  # back to the size the model draws at
            width, height = size_for_aspect(source.width, source.height, preset.pixel_budget)
        else:
            width, height = parent.width, parent.height
        return JobKind.VARY, _drawn_from(base, source).replace(
            seed=new_seed, strength=strength, width=width, height=height, notes=notes,
        )
    if action in (Action.UPSCALE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE, Action.UPSCALE_4X,
                  Action.REDO_UPSCALE):
        if action is Action.REDO_UPSCALE:  # the same upscale of the same source, a new seed
            factor, mode, seed = parent.upscale_factor or UPSCALE_FACTOR, parent.upscale_mode, new_seed
        else:
            factor = 4 if action is Action.UPSCALE_4X else UPSCALE_FACTOR
            mode = {Action.UPSCALE_SUBTLE: "subtle", Action.UPSCALE_CREATIVE: "creative",
                    Action.UPSCALE_4X: "subtle"}.get(action, preset.upscale)
            seed = source.seed
        longest = max(source.width, source.height) * factor
        if longest > MAX_UPSCALED_SIDE:
            raise ButtonError(
                f"That upscale would make the image {source.width * factor}×{source.height * factor}; the most is "
                f"{MAX_UPSCALED_SIDE} pixels a side. Use a smaller upscale, or upscale a smaller image."
            )
        return JobKind.UPSCALE, base.replace(
            seed=seed, init_image=source.key, strength=None, images=1, width=source.width,
            height=source.height, upscale_factor=factor, upscale_mode=mode, notes=notes,
        )
    if canvas is not None:
        kind, zoom, pan = _CANVAS_KINDS[action], _ZOOMS.get(action, edit.zoom), action.pan
        if action is Action.SQUARE:
            zoom = 1.0
        # The --ar the prompt shows: the one asked for, the zoom's unchanged shape, or the new one of a pan.
        if edit.aspect is not None:
            aspect = f"{edit.aspect[0]}:{edit.aspect[1]}"
        elif action in _ZOOMS or action is Action.ZOOM_CUSTOM:
            aspect = base.aspect
        else:
            aspect = _ratio(canvas.width, canvas.height)
        return kind, _drawn_from(base, source).replace(
            seed=new_seed, width=canvas.width, height=canvas.height, aspect=aspect,
            source_box=canvas.source_box, zoom=zoom, pan=pan.value if pan is not None else None,
            notes=notes + canvas.notes,
        )
    if action is Action.VARY_REGION:
        if not edit.cells:
            raise ValueError("Vary (Region) needs the cells to repaint (Edit.cells)")
        width, height = size_for_aspect(source.width, source.height, preset.pixel_budget)
        return JobKind.REGION, _drawn_from(base, source).replace(
            seed=new_seed, width=width, height=height, region=edit.cells, notes=notes,
        )
    raise ValueError(f"action {action.value!r} makes no job")


_CANVAS_KINDS = {
    Action.ZOOM_2X: JobKind.ZOOM, Action.ZOOM_1_5X: JobKind.ZOOM, Action.ZOOM_CUSTOM: JobKind.ZOOM,
    Action.SQUARE: JobKind.SQUARE, **dict.fromkeys(_PANS, JobKind.PAN),
}


def _drawn_from(spec: JobSpec, source: SourceImage) -> JobSpec:
    """A grid drawn from ``source``: four images, no upscale, no canvas fields of the parent."""
    return spec.replace(init_image=source.key, strength=None, images=GRID_SIZE, upscale_factor=None,
                        upscale_mode=None, source_box=None, region=(), zoom=None, pan=None)


def _canvas(action: Action, source: SourceImage, preset: ModelPreset, edit: Edit) -> Canvas | None:
    """The canvas of an outpainting action (None for the other actions)."""
    budget, multiple = preset.pixel_budget, preset.capabilities.pixel_multiple
    pan = action.pan
    if pan is not None:
        return pan_canvas(source.width, source.height, pan, pixel_budget=budget, multiple=multiple)
    if action is Action.SQUARE:
        return square_canvas(source.width, source.height, pixel_budget=budget, multiple=multiple)
    if action in _ZOOMS:
        return zoom_canvas(source.width, source.height, _ZOOMS[action], pixel_budget=budget, multiple=multiple)
    if action is Action.ZOOM_CUSTOM:
        if edit.zoom is None:
            raise ValueError("Custom Zoom needs a zoom (Edit.zoom)")
        return zoom_canvas(source.width, source.height, edit.zoom, aspect=edit.aspect, pixel_budget=budget,
                           multiple=multiple)
    return None


NOT_A_DRAFT = "That image is not a draft, so it is already at full quality."


def enhanced(
    parent: JobSpec, parent_kind: JobKind, source: SourceImage, preset: ModelPreset
) -> tuple[JobKind, JobSpec]:
    """Enhance on a ``--draft`` grid: the tile's prompt and seed again, at full quality, as a new grid.

    The new grid's first image has the tile's seed (``image_seed(seed, 0)``), so it is that image redrawn.
    Steps, guidance and sampler are what the model gives at the draft's ``--q`` and ``--s``; a draft
    variation is varied again from the same source. Raises :class:`ButtonError` on a grid that is no draft.
    """
    if not parent.draft:
        raise ButtonError(NOT_A_DRAFT)
    spec = parent.replace(
        draft=False,
        seed=source.seed,
        steps=steps_for_quality(preset.steps, parent.quality),
        guidance_scale=guidance_for_stylize(preset.guidance, parent.stylize),
        sampler=preset.scheduler,
        notes=(),
    )
    return (JobKind.VARY if parent_kind is JobKind.VARY else JobKind.IMAGINE), spec
