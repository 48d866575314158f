"""Submitting jobs from Discord: one transaction for the rows, then publish each new job's task."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db.models import Job
from inference.dispatch import publish

if TYPE_CHECKING:
    from bot.services import BotServices

__all__ = ["TOKEN_LIFETIME", "submit_jobs", "token_expiry"]

log = logging.getLogger(__name__)

#: Interaction tokens live 15 minutes; stop using one a little before that.
TOKEN_LIFETIME = timedelta(minutes=15)
_TOKEN_MARGIN = timedelta(seconds=30)


def token_expiry(created_at: datetime) -> datetime:
    """When to stop editing through an interaction's token and fall back to the bot token."""
    return created_at + TOKEN_LIFETIME - _TOKEN_MARGIN


def _submit_all(*, session: Session, new_jobs: list[jobs_db.NewJob]) -> list[tuple[Job, bool, int]]:
    out = []
    for new in new_jobs:
        job, created = jobs_db.submit(session=session, new=new)
        out.append((job, created, jobs_db.queue_position(session=session, job=job)))
    return out


async def submit_jobs(services: BotServices, new_jobs: list[jobs_db.NewJob]) -> list[tuple[Job, bool, int]]:
    """Insert the jobs (idempotently) and publish the new ones. Returns ``(job, created, position)``.

    A publish that fails (Redis down) is logged, not raised: the job is committed and the reaper
    publishes it again once the broker is back.
    """
    results = await services.db.run(_submit_all, new_jobs=new_jobs)
    for job, created, _ in results:
        if created:
            try:
                await asyncio.to_thread(publish, services.celery, job.id, job.queue)
            except Exception:
                log.warning("could not publish job %s now; the reaper will retry", job.id, exc_info=True)
    return results


def now() -> datetime:
    return datetime.now(UTC)
