"""How a job looks on Discord: the message text for each state, and the recipe of an image."""

from __future__ import annotations

from dataclasses import dataclass

from domain.spec import JobKind, JobState

__all__ = ["UPSCALE_METHODS", "JobView", "Recipe", "job_content", "job_detail", "job_title", "recipe_content"]

#: How each upscale method is named on the message (``UpscaleResult.method``).
UPSCALE_METHODS = {
    "esrgan": "Subtle: Real-ESRGAN",
    "creative": "Creative: redrawn by the model",
    "lanczos": "Lanczos: no upscaler configured",
}

#: Discord's message limit is 2000 characters; leave room for the status suffix.
_PROMPT_SHOWN = 1500


@dataclass(frozen=True, slots=True)
class JobView:
    """The fields of a job row that its message shows (built by ``bot.delivery`` from the row)."""

    job_id: int
    user_id: int
    kind: JobKind
    state: JobState
    prompt: str
    lane: str
    notes: tuple[str, ...] = ()
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


def job_detail(kind: JobKind, *, image_number: int | None = None, upscale_mode: str | None = None,
               strength: float | None = None) -> str:
    """What a button's job is, as Midjourney words it: "Image #2" (U2 on a grid), "Upscaled (Creative) by"
    (an upscale of an upscale), "Variations (Strong) by", "Enhanced Image #2" (Enhance 2 on a draft grid);
    empty for /imagine and rerolls.

    ``image_number`` is the 1-based tile of a grid the upscale came from (None when its source was itself
    an upscale).
    """
    if kind is JobKind.UPSCALE:
        if image_number is not None:
            return f"Image #{image_number}"
        return f"Upscaled ({(upscale_mode or 'subtle').title()}) by"
    if kind is JobKind.VARY:
        return f"Variations ({'Subtle' if strength is not None and strength < 0.5 else 'Strong'}) by"
    if kind is JobKind.IMAGINE and image_number is not None:
        return f"Enhanced Image #{image_number}"
    return ""


def _cut(prompt: str) -> str:
    return prompt if len(prompt) <= _PROMPT_SHOWN else prompt[: _PROMPT_SHOWN - 1] + "…"


def job_title(view: JobView) -> str:
    """``**prompt** - Image #2 <@member>``: the first part of the message, before the state."""
    prompt = _cut(view.prompt)
    prefix = f"{view.label} " if view.label else ""
    detail = f"{view.detail} " if view.detail else ""
    return f"{prefix}**{prompt}** - {detail}<@{view.user_id}>"


def job_content(view: JobView) -> str:
    """The message text for a job in its current state."""
    title = job_title(view)
    if view.state is JobState.QUEUED:
        where = "next in line" if not view.position else f"position {view.position + 1} in the queue"
        status = f"(Waiting to start, {where}) ({view.lane})"
    elif view.state is JobState.RUNNING:
        if view.progress_total:
            percent = int(100 * view.progress_step / view.progress_total)
            status = f"({percent}%) ({view.lane})"
        elif view.kind is JobKind.UPSCALE:  # Real-ESRGAN and Lanczos have no steps to count
            status = f"(Upscaling…) ({view.lane})"
        else:
            status = f"(Starting…) ({view.lane})"
    elif view.state is JobState.SUCCEEDED:
        seconds = f", {view.gpu_ms / 1000:.1f}s" if view.gpu_ms is not None else ""
        status = f"({view.lane}{seconds})"
    elif view.state is JobState.CANCELLED:
        status = "(cancelled)"
    else:
        status = f"❌ {view.error or 'The job failed.'} Nothing was charged."
    lines = [f"{title} {status}"]
    if view.state is JobState.SUCCEEDED and view.upscale_method is not None:
        lines.append(f"-# Upscaled ({UPSCALE_METHODS.get(view.upscale_method, view.upscale_method)})")
    lines += [f"-# {note}" for note in view.notes]
    return "\n".join(lines)


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


def recipe_content(recipe: Recipe) -> str:
    """The recipe as a short message: settings only, no links."""
    guidance = f"{recipe.guidance:g}"
    lines = [
        "📋 **Recipe of this image**",
        f"Prompt: `{_cut(recipe.prompt.replace('`', ''))}`",
        f"Model: {recipe.model} · Sampler: {recipe.sampler} · Steps: {recipe.steps} · Guidance: {guidance}"
        f" · Seed: {recipe.seed}",
        f"Size: {recipe.width}×{recipe.height}",
    ]
    for method, factor, width, height in recipe.upscales:
        name = UPSCALE_METHODS.get(method, method)
        lines.append(f"Upscaled ×{factor} from {width}×{height} ({name})")
    if recipe.variation_strength is not None:
        lines.append(
            f"It descends from a variation (image to image at strength {recipe.variation_strength:g}), so the "
            "prompt alone draws a different picture."
        )
    else:
        lines.append("To make it again: `/imagine` this prompt; the image is #1 of that grid (U1).")
    return "\n".join(lines)
