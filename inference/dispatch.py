"""Publishing job ids to Celery, and the reaper that re-publishes jobs whose message was lost.

Postgres is the truth and Redis only carries messages: a job whose message vanished (Redis restarted,
a worker died holding it) is still ``queued`` or ``running`` with a stale heartbeat in the database, and
the reaper publishes it again. The claim in ``db.jobs.claim`` makes duplicates harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db
from domain.spec import JobState
from inference.celery_app import RUN_JOB

__all__ = ["ReapReport", "publish", "reap"]

log = logging.getLogger(__name__)


def publish(app: Celery, job_id: int, queue: str) -> None:
    """Send the job's task to its queue. Call after the job row is committed."""
    app.send_task(RUN_JOB, args=[job_id], queue=queue)


@dataclass(frozen=True, slots=True)
class ReapReport:
    republished: list[int]
    failed: list[int]


def reap(
    sessions: sessionmaker[Session],
    app: Celery,
    *,
    queued_for: timedelta,
    heartbeat_for: timedelta,
    max_attempts: int,
) -> ReapReport:
    """Re-publish lost jobs; fail (and so refund) those that used up their attempts."""
    republished: list[int] = []
    failed: list[int] = []
    with sessions() as session, session.begin():
        for job in jobs_db.stale(session=session, queued_for=queued_for, heartbeat_for=heartbeat_for):
            if job.cancel_requested:  # its member cancelled it and its worker is gone: end it here, refunded
                if jobs_db.finish(session=session, job_id=job.id, state=JobState.CANCELLED, owner=None) is not None:
                    jobs_db.notify(session=session, job_id=job.id)
                continue
            if job.attempts >= max_attempts:
                done = jobs_db.finish(
                    session=session,
                    job_id=job.id,
                    state=JobState.FAILED,
                    owner=None,
                    error=f"The job was interrupted {job.attempts} times and was given up.",
                )
                if done is not None:
                    jobs_db.notify(session=session, job_id=job.id)
                    failed.append(job.id)
                continue
            jobs_db.requeue(session=session, job_id=job.id)
            republished.append(job.id)
    for job_id, queue in _queues(sessions, republished):
        publish(app, job_id, queue)
    if republished or failed:
        log.info("reaper: re-published %s, failed %s", republished, failed)
    return ReapReport(republished=republished, failed=failed)


def _queues(sessions: sessionmaker[Session], job_ids: list[int]) -> list[tuple[int, str]]:
    if not job_ids:
        return []
    with sessions() as session:
        out = []
        for job_id in job_ids:
            job = jobs_db.get(session=session, job_id=job_id)
            if job is not None:
                out.append((job.id, job.queue))
        return out
