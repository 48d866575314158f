"""How a job looks on Discord: the message text for each state, and the recipe of an image."""

from __future__ import annotations

from dataclasses import dataclass

from bot.limits import MAX_CONTENT, MessageParts, fit_message, shorten_middle
from domain.prompt import split_canonical
from domain.spec import JobKind, JobState

__all__ = [
    "UPSCALE_METHODS",
    "JobView",
    "Recipe",
    "canvas_label",
    "format_duration",
    "format_eta",
    "job_content",
    "job_detail",
    "job_placeholder",
    "recipe_content",
]

#: How each upscale method is named on the message (``UpscaleResult.method``).
UPSCALE_METHODS = {
    "esrgan": "Subtle: Real-ESRGAN",
    "creative": "Creative: redrawn by the model",
    "lanczos": "Lanczos: no upscaler configured",
}

@dataclass(frozen=True, slots=True)
class JobView:
    """The fields of a job row that its message shows (built by ``bot.delivery`` from the row)."""

    job_id: int
    user_id: int
    kind: JobKind
    state: JobState
    #: The canonical prompt: text, then parameters.
    prompt: str
    lane: str
    notes: tuple[str, ...] = ()
    #: Queued jobs ahead of this one in its model and lane (0: next).
    position: int | None = None
    progress_step: int = 0
    progress_total: int = 0
    error: str | None = None
    gpu_ms: int | None = None
    label: str = ""
    #: What the job made of its parent image, e.g. "Image #2" (:func:`job_detail`).
    detail: str = ""
    #: The upscale method that ran ("esrgan", "creative", "lanczos"), for a finished upscale.
    upscale_method: str | None = None
    #: The model that draws it (always shown on the result, though the prompt omits the default model).
    model: str = ""
    #: Seconds until the result, estimated (``db.queue``), for a queued or running job.
    eta_s: float | None = None
    #: Seconds from submit to result, for a finished job.
    total_s: float | None = None


def canvas_label(kind: JobKind, *, zoom: float | None = None, pan: str | None = None,
                 region: tuple[int, ...] = ()) -> str:
    """A canvas job's button as Midjourney names it: "Zoom Out 2x", "Pan Left", "Make Square",
    "Vary (Region)"; empty for the other kinds."""
    if kind is JobKind.ZOOM:
        return f"Zoom Out {zoom or 2:g}x"
    if kind is JobKind.PAN:
        return f"Pan {(pan or '').title()}"
    if kind is JobKind.SQUARE:
        return "Make Square"
    if kind is JobKind.REGION:
        cells = f" of cells {', '.join(map(str, region))}" if region else ""
        return f"Vary (Region){cells}"
    return ""


def job_detail(kind: JobKind, *, image_number: int | None = None, upscale_mode: str | None = None,
               strength: float | None = None, zoom: float | None = None, pan: str | None = None) -> str:
    """What a button's job is, as Midjourney words it: "Image #2" (U2 on a grid), "Upscaled (Creative) by"
    (an upscale of an upscale), "Variations (Strong) by", "Zoom Out 2x by", "Pan Left by", "Enhanced Image #2"
    (Enhance 2 on a draft grid); empty for /imagine and rerolls.

    ``image_number`` is the 1-based tile of a grid the upscale came from (None when its source was itself
    an upscale).
    """
    if kind.is_canvas:
        return f"{canvas_label(kind, zoom=zoom, pan=pan)} by"
    if kind is JobKind.UPSCALE:
        if image_number is not None:
            return f"Image #{image_number}"
        return f"Upscaled ({(upscale_mode or 'subtle').title()}) by"
    if kind is JobKind.VARY:
        return f"Variations ({'Subtle' if strength is not None and strength < 0.5 else 'Strong'}) by"
    if kind is JobKind.IMAGINE and image_number is not None:
        return f"Enhanced Image #{image_number}"
    return ""


def format_duration(seconds: float) -> str:
    """``4.2 s``, ``41 s``, ``3 min 20 s``, ``2 h 5 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_eta(seconds: float) -> str:
    """An estimate, rounded so it does not flicker: ``about 5 s``, ``about 40 s``, ``about 3 min``."""
    if seconds < 60:
        return f"about {max(5, 5 * round(seconds / 5))} s"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h".replace(".0 h", " h")


def _title_parts(view: JobView) -> tuple[str, str, str]:
    """The prompt's text, its parameters, and what follows the bold prompt up to the status."""
    text, params = split_canonical(view.prompt)
    detail = f"{view.detail} " if view.detail else ""
    return text, params, f" - {detail}<@{view.user_id}>"


def _status(view: JobView) -> str:
    eta = f", {format_eta(view.eta_s)}" if view.eta_s is not None else ""
    if view.state is JobState.QUEUED:
        where = f"position {(view.position or 0) + 1} in the queue"
        return f"(Waiting to start, {where}{eta}) ({view.lane})"
    if view.state is JobState.RUNNING:
        lane = f"({view.lane}, {format_eta(view.eta_s)} left)" if view.eta_s is not None else f"({view.lane})"
        if view.progress_total:
            return f"({int(100 * view.progress_step / view.progress_total)}%) {lane}"
        if view.kind is JobKind.UPSCALE:  # Real-ESRGAN and Lanczos have no steps to count
            return f"(Upscaling…) {lane}"
        return f"(Starting…) {lane}"
    if view.state is JobState.SUCCEEDED:
        parts = [p for p in (view.model, view.lane) if p]
        if view.total_s is not None:
            parts.append(f"ready in {format_duration(view.total_s)}")
        if view.gpu_ms is not None:
            parts.append(f"GPU {format_duration(view.gpu_ms / 1000)}")
        return f"({' · '.join(parts)})"
    if view.state is JobState.CANCELLED:
        return "(cancelled)"
    return f"❌ {view.error or 'The job failed.'} Nothing was charged."


def job_placeholder(view: JobView) -> str:
    """The message posted before the job row exists: the prompt and "(Waiting to start)"."""
    text, params, after = _title_parts(view)
    prefix = f"{view.label} " if view.label else ""
    return fit_message(MessageParts(text, params, before=prefix, after=f"{after} (Waiting to start)"))


def job_content(view: JobView) -> str:
    """The message text for a job in its current state, within Discord's 2,000 characters."""
    text, params, after = _title_parts(view)
    prefix = f"{view.label} " if view.label else ""
    lines: tuple[str, ...] = ()
    if view.state is JobState.SUCCEEDED and view.upscale_method is not None:
        lines = (f"-# Upscaled ({UPSCALE_METHODS.get(view.upscale_method, view.upscale_method)})",)
    return fit_message(MessageParts(text, params, before=prefix, after=f"{after} {_status(view)}",
                                    notes=view.notes, lines=lines))


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything needed to make an image again (the recipe button's answer)."""

    #: The canonical prompt of the grid the image was drawn in, with the image's seed.
    prompt: str
    model: str
    sampler: str
    steps: int
    guidance: float
    seed: int
    width: int
    height: int
    #: The upscales that led to this image, first to last: (method, factor, source width, source height).
    upscales: tuple[tuple[str, int, int, int], ...] = ()
    #: The img2img strength when the image descends from a variation (the prompt alone won't remake it).
    variation_strength: float | None = None
    #: The canvas job the image descends from ("Zoom Out 2x", :func:`canvas_label`), with its source's size.
    canvas: tuple[str, int, int] | None = None
    #: The job that made the image (``/show`` takes it).
    job_id: int | None = None


#: Room the recipe's other lines leave for its prompt.
_RECIPE_PROMPT = MAX_CONTENT - 600


def _recipe_prompt(prompt: str) -> str:
    text, params = split_canonical(prompt.replace("`", ""))
    return shorten_middle(text, max(80, _RECIPE_PROMPT - len(params))) + params


def recipe_content(recipe: Recipe) -> str:
    """The recipe as a short message: settings only, no links."""
    guidance = f"{recipe.guidance:g}"
    lines = [
        "📋 **Recipe of this image**",
        f"Prompt: `{_recipe_prompt(recipe.prompt)}`",
        f"Model: {recipe.model} · Sampler: {recipe.sampler} · Steps: {recipe.steps} · Guidance: {guidance}"
        f" · Seed: {recipe.seed}",
        f"Size: {recipe.width}×{recipe.height}",
    ]
    for method, factor, width, height in recipe.upscales:
        name = UPSCALE_METHODS.get(method, method)
        lines.append(f"Upscaled ×{factor} from {width}×{height} ({name})")
    if recipe.job_id is not None:
        lines.append(f"Job: `{recipe.job_id}` (`/show {recipe.job_id}` posts it again)")
    if recipe.canvas is not None:
        label, width, height = recipe.canvas
        lines.append(
            f"It descends from {label} of a {width}×{height} image (drawn by the model's inpainting around the "
            "kept pixels), so the prompt alone draws a different picture."
        )
    elif recipe.variation_strength is not None:
        lines.append(
            f"It descends from a variation (image to image at strength {recipe.variation_strength:g}), so the "
            "prompt alone draws a different picture."
        )
    else:
        lines.append("To make it again: `/imagine` this prompt; the image is #1 of that grid (U1).")
    return "\n".join(lines)[:MAX_CONTENT]
