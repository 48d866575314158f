"""The Celery task: a thin wrapper that takes a job id and runs it (``inference.runner``)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from inference.celery_app import RUN_JOB

__all__ = ["register_tasks"]

log = logging.getLogger(__name__)


def run_job_task(task: Any, job_id: int) -> str | None:
    from domain.spec import JobState
    from inference.dispatch import release_next
    from inference.runner import run_job
    from inference.worker import context

    ctx = context()
    state = run_job(ctx, int(job_id))
    if state is not None and state.is_terminal:
        # A slot of the member's running limit is free: their oldest held job in that lane goes now.
        try:
            release_next(ctx.sessions, task.app, ended_job_id=int(job_id))
        except Exception:  # the reaper publishes it on its next pass
            log.warning("job %s: could not publish the member's next held job", job_id, exc_info=True)
    return state.value if isinstance(state, JobState) else None


def register_tasks(app: Celery) -> None:
    app.task(name=RUN_JOB, ignore_result=True, bind=True)(run_job_task)
