"""How a job looks on Discord: the message text for each state, and the buttons under a finished grid."""

from __future__ import annotations

from dataclasses import dataclass

from domain.spec import JobKind, JobState

__all__ = ["JobView", "job_content"]

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


def _title(view: JobView) -> str:
    prompt = view.prompt if len(view.prompt) <= _PROMPT_SHOWN else view.prompt[: _PROMPT_SHOWN - 1] + "…"
    prefix = f"{view.label} " if view.label else ""
    return f"{prefix}**{prompt}** - <@{view.user_id}>"


def job_content(view: JobView) -> str:
    """The message text for a job in its current state."""
    title = _title(view)
    if view.state is JobState.QUEUED:
        where = "next in line" if not view.position else f"position {view.position + 1} in the queue"
        status = f"(Waiting to start, {where}) ({view.lane})"
    elif view.state is JobState.RUNNING:
        if view.progress_total:
            percent = int(100 * view.progress_step / view.progress_total)
            status = f"({percent}%) ({view.lane})"
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
    lines += [f"-# {note}" for note in view.notes]
    return "\n".join(lines)
