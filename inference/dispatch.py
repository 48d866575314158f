"""Publishing job ids to Celery, one message per waiting job.

Postgres is the truth and Redis only carries messages. A queued job's row says whether it has a message
(``published_at``) and in which broker (``broker_epoch``: a value kept in Redis under
:data:`EPOCH_KEY`, created afresh when Redis comes back empty, flushed or restarted without its data).
So a message is re-sent only when the broker really lost it (:mod:`inference.reaper`); a job held back
by its member's running limit has no message and waits until one of their jobs in that lane ends
(:func:`release_next`). The claim in ``db.jobs.claim`` makes any duplicate harmless.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db
from inference.celery_app import RUN_JOB

__all__ = ["EPOCH_KEY", "MISSED_BEATS", "broker_epoch", "publish", "publish_jobs", "release_next", "stale_after"]

log = logging.getLogger(__name__)

#: The Redis hash (under the broker's key prefix) whose ``epoch`` field names this broker's data.
EPOCH_KEY = "imagine.broker"
#: A running job whose worker missed this many heartbeats is taken to be lost.
MISSED_BEATS = 3


def stale_after(heartbeat_s: float) -> timedelta:
    """How old a running job's heartbeat may get before its worker counts as gone."""
    return timedelta(seconds=heartbeat_s * MISSED_BEATS)


def publish(app: Celery, job_id: int, queue: str) -> None:
    """Send the job's task to its queue (no bookkeeping: :func:`publish_jobs` records it)."""
    app.send_task(RUN_JOB, args=[job_id], queue=queue)


def broker_epoch(app: Celery) -> str:
    """The epoch of the broker's data: read from Redis, or created when Redis has none (it came back
    empty). Two processes creating one at once: the last write wins, and jobs stamped with the other are
    published once more, which is harmless."""
    # A connection of the app's pool: a fresh one (connection_for_write) cost a TCP connect per call,
    # 4 ms of every release.
    with app.pool.acquire(block=True) as connection:
        client = connection.default_channel.client  # kombu's redis client: it applies the key prefix
        epoch = client.hget(EPOCH_KEY, "epoch")
        if epoch is None:
            client.hset(EPOCH_KEY, "epoch", uuid.uuid4().hex)
            epoch = client.hget(EPOCH_KEY, "epoch")
    return epoch.decode() if isinstance(epoch, bytes) else str(epoch)


def publish_jobs(
    sessions: sessionmaker[Session], app: Celery, jobs: Sequence[tuple[int, str]], *, stale_after: timedelta
) -> list[int]:
    """Publish those of these committed ``(job id, queue)`` that can start now and record it on their rows;
    returns their ids. A job its member's running limit holds back gets no message yet: it goes when one
    of their jobs in that lane ends (:func:`release_next`), or at the reaper's next pass.

    The rows are stamped first and the messages sent before that commits: a worker that gets a message
    at once waits on the row lock, so a hold it records is never overwritten by the stamp. A send that
    fails rolls the stamps back (the reaper publishes them); a crash before commit ends in a re-send.
    The epoch is read before sending: a broker that loses its data after this shows a new epoch.
    """
    if not jobs:
        return []
    epoch = broker_epoch(app)
    queues = dict(jobs)
    with sessions() as session, session.begin():
        ready = jobs_db.startable(session=session, job_ids=list(queues), stale_after=stale_after)
        jobs_db.mark_published(session=session, job_ids=ready, epoch=epoch)
        for job_id in ready:
            publish(app, job_id, queues[job_id])
    return ready


def release_next(sessions: sessionmaker[Session], app: Celery, *, ended_job_id: int) -> int | None:
    """A job ended: publish its member's oldest held job in its lane, if its plan limits how many run
    there. Returns the id published, if any.

    One transaction: the ended job's row is read, and the message is sent while the held job's and the
    member's rows are locked, and recorded in that transaction (the epoch read just before sending).
    """
    with sessions() as session, session.begin():
        limited = jobs_db.limited_lane(session=session, job_id=ended_job_id)
        if limited is None:  # no running limit: nothing waits for this slot
            return None
        user_id, lane = limited
        held = jobs_db.next_held(session=session, user_id=user_id, lane=lane)
        if held is None:
            return None
        epoch = broker_epoch(app)
        publish(app, held.id, held.queue)
        jobs_db.mark_published(session=session, job_ids=[held.id], epoch=epoch)
        log.info("job %s: a slot of its member is free; published", held.id)
        return held.id
