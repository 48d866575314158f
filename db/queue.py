"""Where a job stands in its queue, and when it should be done, from PostgreSQL alone.

A job's queue is its model and lane (``jobs.queue``, e.g. ``sdxl.fast``). Its *position* is the number of
queued jobs ahead of it in that queue (0: it starts next). Its *ETA* comes from how long the queue's recent
jobs took to run (``finished_at - started_at`` of the last :data:`RECENT_JOBS` that succeeded), or from the
job's own estimate (``jobs.estimated_ms``) while the queue has no history:

- running: one run minus the time it has already run (at least a second);
- queued: the jobs running now finish, then the ``position`` jobs ahead run, ``parallel`` at a time (as many
  as run in that queue now, at least one), then this one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Job
from domain.spec import JobState

__all__ = ["RECENT_JOBS", "Standing", "member_queue", "queue_position", "standing", "waiting_in"]

#: Finished jobs of a queue whose run times make its ETA.
RECENT_JOBS = 20


@dataclass(frozen=True, slots=True)
class Standing:
    """A queued or running job's place: jobs ahead of it (0 for a running job) and seconds to its result."""

    position: int
    eta_s: float


def queue_position(*, session: Session, job: Job) -> int:
    """Queued jobs in the same model and lane that are ahead of this one (0: it starts next): those with a
    message in the broker before it, and its member's own older ones (which start first). Another member's job
    with no message (held by their running limit, or not yet re-sent) is not ahead of it."""
    return session.execute(
        select(func.count())
        .select_from(Job)
        .where(Job.queue == job.queue, Job.state == JobState.QUEUED.value, Job.id < job.id,
               Job.published_at.is_not(None) | (Job.user_id == job.user_id))
    ).scalar_one()


def _run_seconds(session: Session, job: Job) -> float:
    """How long one job of this queue runs: the mean of its recent runs, else the job's own estimate."""
    recent = (
        select((func.extract("epoch", Job.finished_at) - func.extract("epoch", Job.started_at)).label("run"))
        .where(Job.queue == job.queue, Job.state == JobState.SUCCEEDED.value, Job.started_at.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(RECENT_JOBS)
        .subquery()
    )
    mean = session.execute(select(func.avg(recent.c.run))).scalar_one_or_none()
    if mean is not None and float(mean) > 0:
        return float(mean)
    return max(1.0, job.estimated_ms / 1000)


def standing(*, session: Session, job: Job, now: datetime) -> Standing | None:
    """The job's position and ETA, or None once it has ended."""
    state = JobState(job.state)
    if state.is_terminal:
        return None
    run = _run_seconds(session, job)
    if state is JobState.RUNNING:
        ran = (now - job.started_at).total_seconds() if job.started_at is not None else 0.0
        return Standing(0, max(1.0, run - ran))
    ahead = queue_position(session=session, job=job)
    started = session.execute(
        select(Job.started_at).where(Job.queue == job.queue, Job.state == JobState.RUNNING.value)
    ).scalars().all()
    parallel = max(1, len(started))
    left_running = sum(max(0.0, run - (now - at).total_seconds()) if at is not None else run for at in started)
    wait = (left_running + ahead * run) / parallel
    return Standing(ahead, wait + run)


def waiting_in(*, session: Session, queue: str, limit: int = 25) -> list[int]:
    """The first queued jobs of a queue that have a message (their positions move when a job ahead does)."""
    return list(session.execute(
        select(Job.id)
        .where(Job.queue == queue, Job.state == JobState.QUEUED.value, Job.message_id.is_not(None))
        .order_by(Job.id)
        .limit(limit)
    ).scalars())


def member_queue(*, session: Session, user_id: int, now: datetime, limit: int = 25) -> list[tuple[Job, Standing]]:
    """A member's queued and running jobs, oldest first, each with its position and ETA."""
    jobs = session.execute(
        select(Job)
        .where(Job.user_id == user_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
        .order_by(Job.id)
        .limit(limit)
    ).scalars().all()
    out: list[tuple[Job, Standing]] = []
    for job in jobs:
        place = standing(session=session, job=job, now=now)
        if place is not None:
            out.append((job, place))
    return out
