"""The Celery task: a thin wrapper that takes a job id and runs it (``inference.runner``)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from inference.celery_app import RUN_JOB

__all__ = ["HELD_BACK_RETRY_S", "register_tasks"]

#: A job held back by its member's running limit is published again after this many seconds.
HELD_BACK_RETRY_S = 2.0


def run_job_task(task: Any, job_id: int) -> str | None:
    from db import jobs as jobs_db
    from domain.spec import JobState
    from inference.runner import run_job
    from inference.worker import context

    ctx = context()
    state = run_job(ctx, int(job_id))
    if state is JobState.QUEUED:
        # The member runs as many jobs in this lane as their plan allows: try again a little later.
        with ctx.sessions() as session:
            job = jobs_db.get(session=session, job_id=int(job_id))
            queue = job.queue if job is not None else None
        if queue is not None:
            task.app.send_task(RUN_JOB, args=[int(job_id)], queue=queue, countdown=HELD_BACK_RETRY_S)
    return state.value if state is not None else None


def register_tasks(app: Celery) -> None:
    app.task(name=RUN_JOB, ignore_result=True, bind=True)(run_job_task)
