"""What a job's message says in each state."""

from __future__ import annotations

from bot.render import JobView, job_content
from domain.spec import JobKind, JobState


def view(**changes: object) -> JobView:
    values: dict[str, object] = dict(job_id=1, user_id=42, kind=JobKind.IMAGINE, state=JobState.QUEUED,
                                     prompt="a fox --ar 16:9", lane="fast")
    values.update(changes)
    return JobView(**values)  # type: ignore[arg-type]


def test_each_state_reads_like_midjourney() -> None:
    assert job_content(view(position=0)) == "**a fox --ar 16:9** - <@42> (Waiting to start, next in line) (fast)"
    assert "position 3 in the queue" in job_content(view(position=2))
    assert job_content(view(state=JobState.RUNNING)).endswith("(Starting…) (fast)")
    assert job_content(view(state=JobState.RUNNING, progress_step=5, progress_total=20)).endswith("(25%) (fast)")
    # An upscale without steps (Real-ESRGAN, Lanczos) says what it does; a creative one counts its steps.
    assert job_content(view(kind=JobKind.UPSCALE, state=JobState.RUNNING)).endswith("(Upscaling…) (fast)")
    assert job_content(view(kind=JobKind.UPSCALE, state=JobState.RUNNING, progress_step=3,
                            progress_total=4)).endswith("(75%) (fast)")
    assert job_content(view(state=JobState.SUCCEEDED, gpu_ms=2345)).endswith("(fast, 2.3s)")
    assert job_content(view(state=JobState.CANCELLED)).endswith("(cancelled)")
    failed = job_content(view(state=JobState.FAILED, error="The GPU ran out of memory."))
    assert failed.endswith("❌ The GPU ran out of memory. Nothing was charged.")


def test_notes_follow_on_their_own_lines_and_long_prompts_are_cut() -> None:
    text = job_content(view(notes=("`--sref` is not supported here; it was ignored.",)))
    assert text.splitlines()[1] == "-# `--sref` is not supported here; it was ignored."
    long = job_content(view(prompt="x" * 3000, state=JobState.SUCCEEDED))
    assert len(long) < 2000 and "…" in long
