"""The Celery task: a thin wrapper that takes a job id and runs it (``inference.runner``)."""

from __future__ import annotations

from celery import Celery

from inference.celery_app import RUN_JOB

__all__ = ["register_tasks"]


def run_job_task(job_id: int) -> str | None:
    from inference.runner import run_job
    from inference.worker import context

    state = run_job(context(), int(job_id))
    return state.value if state is not None else None


def register_tasks(app: Celery) -> None:
    app.task(name=RUN_JOB, ignore_result=True)(run_job_task)
