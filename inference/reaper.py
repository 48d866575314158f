"""The reaper: its own service (a thread in ``imagine bot`` and ``imagine run``) that finds jobs the
broker or a worker lost, and puts them back.

Every ``REAPER_INTERVAL_S`` it:

1. reads the broker's epoch (``inference.dispatch.broker_epoch``): queued jobs published into a broker
   that has since lost its data have no message any more;
2. takes running jobs whose worker missed ``MISSED_BEATS`` heartbeats: a cancelled one is ended
   (refunded), one that used up ``MAX_ATTEMPTS`` is failed (refunded, its member told), the rest are
   queued again;
3. publishes every queued job with no message that a worker could start now (never sent, lost, or held
   back with its member's slot free), oldest first.

A lost message or a dead worker is so recovered within ``REAPER_INTERVAL_S`` + ``MISSED_BEATS`` ×
``HEARTBEAT_S``. Each pass is a few statements; running it in several processes at once is safe.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db
from domain.spec import JobState
from inference.dispatch import broker_epoch, publish, stale_after

__all__ = ["ReapReport", "Reaper", "reap"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReapReport:
    #: Jobs whose message was sent again (lost, never sent, or released).
    republished: list[int]
    #: Jobs failed for using up their attempts.
    failed: list[int]
    #: Queued jobs whose message the broker lost (a new epoch).
    lost: int = 0


def reap(sessions: sessionmaker[Session], app: Celery, *, heartbeat_s: float, max_attempts: int,
         judge_heartbeats: bool = True) -> ReapReport:
    """One pass (see the module's docstring). ``judge_heartbeats=False`` leaves running jobs alone: just
    after PostgreSQL was unreachable every heartbeat looks stale, though the workers are computing still."""
    stale = stale_after(heartbeat_s)
    epoch = broker_epoch(app)
    failed: list[int] = []
    with sessions() as session, session.begin():
        lost = jobs_db.forget_lost_messages(session=session, epoch=epoch)
        for job in jobs_db.stale(session=session, heartbeat_for=stale) if judge_heartbeats else []:
            if job.cancel_requested:  # its member cancelled it and its worker is gone: end it here, refunded
                if jobs_db.finish(session=session, job_id=job.id, state=JobState.CANCELLED, owner=None) is not None:
                    jobs_db.notify(session=session, job_id=job.id)
                continue
            if job.attempts >= max_attempts:
                owner = job.owner
                if jobs_db.give_up(session=session, job_id=job.id, stale_after=stale,
                                   max_attempts=max_attempts) is not None:
                    jobs_db.notify(session=session, job_id=job.id)
                    failed.append(job.id)
                    log.error("job %s given up after %d attempts; last error: its worker %s stopped heartbeating",
                              job.id, job.attempts, owner)
                continue
            jobs_db.requeue(session=session, job_id=job.id)
    republished: list[int] = []
    with sessions() as session, session.begin():
        # Sent while the rows are locked, recorded in that transaction: a crash before commit re-sends.
        waiting = jobs_db.publishable(session=session, older_than=stale, stale_after=stale)
        for job in waiting:
            publish(app, job.id, job.queue)
            republished.append(job.id)
        jobs_db.mark_published(session=session, job_ids=republished, epoch=epoch)
    if republished or failed or lost:
        log.info("reaper: %d messages lost by the broker; published %s; failed %s", lost, republished, failed)
    return ReapReport(republished=republished, failed=failed, lost=lost)


class Reaper(threading.Thread):
    """Runs :func:`reap` at start and then every ``interval_s`` until :meth:`stop`; a failed pass (the
    database or Redis is away) is logged and the next one tries again."""

    def __init__(self, sessions: sessionmaker[Session], app: Celery, *, interval_s: float, heartbeat_s: float,
                 max_attempts: int) -> None:
        super().__init__(name="reaper", daemon=True)
        self.sessions, self.app = sessions, app
        self.interval_s, self.heartbeat_s, self.max_attempts = interval_s, heartbeat_s, max_attempts
        self._stop_event = threading.Event()
        self.passes = 0

    def run(self) -> None:
        # A pass at once, then every interval: a process that starts after a crash (its own, or of the
        # process that committed jobs it never published) recovers them without waiting an interval.
        wait = 0.0
        failed_at: float | None = None
        stale_s = stale_after(self.heartbeat_s).total_seconds()
        while not self._stop_event.wait(wait):
            wait = self.interval_s
            # After a pass that could not reach PostgreSQL, the workers could not heartbeat either: give
            # them a heartbeat window to write again before taking their jobs for lost.
            recovering = failed_at is not None and time.monotonic() - failed_at < stale_s
            try:
                reap(self.sessions, self.app, heartbeat_s=self.heartbeat_s, max_attempts=self.max_attempts,
                     judge_heartbeats=not recovering)
            except Exception as exc:
                failed_at = time.monotonic()
                log.warning("reaper pass failed (%s); retrying in %.0fs", exc, self.interval_s)
            self.passes += 1

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
