"""The real `imagine worker` process: jobs published to Celery run once, survive a killed process and a lost message.

These use the session's worker subprocess (prefork, one child), PostgreSQL and Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db
from db.models import Job
from db.session import make_engine, make_sessionmaker
from domain.spec import JobState
from inference.celery_app import create_celery
from inference.dispatch import publish, publish_jobs, stale_after
from inference.reaper import reap
from inference.storage import open_store
from tests.support.factories import new_job, next_id, spec
from tests.support.services import WorkerProcess, make_settings

JOB_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def celery_app(redis_url: str, database_url: str) -> Celery:
    settings = make_settings(database_url=database_url, redis_url=redis_url)
    return create_celery(redis_url, job_timeout_s=settings.job_timeout_s, broker_key_prefix=settings.broker_key_prefix)


def submit(sessions: sessionmaker[Session], **spec_changes: object) -> int:
    with sessions() as session, session.begin():
        job, _ = jobs_db.submit(session=session, new=new_job(spec=spec(width=64, height=64, **spec_changes)))
        return job.id


def job_row(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        job = jobs_db.get(session=session, job_id=job_id)
        assert job is not None
        return job


def wait_for(
    sessions: sessionmaker[Session], job_id: int, accept: Callable[[Job], bool], timeout: float = JOB_TIMEOUT
) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = job_row(sessions, job_id)
        if accept(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck in {job.state} (attempts {job.attempts})")
        time.sleep(0.1)


def test_a_published_job_runs_once_and_stores_its_images(
    sessions: sessionmaker[Session], celery_app: Celery, worker: WorkerProcess, data_dir: Path
) -> None:
    job_id = submit(sessions, seed=5)
    publish(celery_app, job_id, "tiny.fast")
    publish(celery_app, job_id, "tiny.fast")  # a duplicate message (a redelivery) must not run it twice

    job = wait_for(sessions, job_id, lambda j: j.state == JobState.SUCCEEDED)
    assert job.attempts == 1 and job.gpu_ms is not None and job.gpu_ms > 0
    with sessions() as session:
        images = jobs_db.images_of(session=session, job_id=job_id)
    assert [i.seed for i in images] == [5, 6, 7, 8]
    store = open_store(str(data_dir / "images"))
    assert all(store.exists(i.storage_key) for i in images) and job.result_key and store.exists(job.result_key)


def test_a_job_whose_worker_process_is_killed_runs_again_and_finishes(
    sessions: sessionmaker[Session], celery_app: Celery, worker: WorkerProcess
) -> None:
    job_id = submit(sessions, steps=300)
    publish(celery_app, job_id, "tiny.fast")
    wait_for(sessions, job_id, lambda j: j.state == JobState.RUNNING and j.progress_step > 0)

    worker.kill_child()  # as when a GPU process dies mid-job; Celery re-queues the unacked message

    # The replacement process imports torch and diffusers and loads the model before it runs all 300 steps again.
    job = wait_for(sessions, job_id, lambda j: j.state == JobState.SUCCEEDED, timeout=3 * JOB_TIMEOUT)
    assert job.attempts == 2


def test_a_message_never_sent_is_published_by_the_reaper_and_a_sent_one_is_not(
    sessions: sessionmaker[Session], celery_app: Celery, worker: WorkerProcess
) -> None:
    job_id = submit(sessions)  # committed, but its message never reached Redis (it was down)
    waiting = submit(sessions)
    # Its message waits in a queue nobody serves.
    publish_jobs(sessions, celery_app, [(waiting, "nobody.fast")], stale_after=stale_after(1.0))
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id.in_([job_id, waiting])).values(
            queued_at=Job.queued_at - timedelta(minutes=5)))

    report = reap(sessions, celery_app, heartbeat_s=60, max_attempts=3)

    assert job_id in report.republished and waiting not in report.republished
    assert reap(sessions, celery_app, heartbeat_s=60, max_attempts=3).republished == []  # one message is enough
    with sessions() as session, session.begin():
        jobs_db.request_cancel(session=session, job_id=waiting)
    assert wait_for(sessions, job_id, lambda j: j.state == JobState.SUCCEEDED).attempts == 1


def test_the_reaper_fails_a_job_that_used_up_its_attempts(
    sessions: sessionmaker[Session], celery_app: Celery
) -> None:
    job_id = submit(sessions)
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(
            state="running", owner="gone:1", attempts=3, heartbeat_at=Job.queued_at - timedelta(minutes=5)))

    report = reap(sessions, celery_app, heartbeat_s=10, max_attempts=3)

    assert job_id in report.failed
    job = job_row(sessions, job_id)
    assert job.state == JobState.FAILED and job.error and "interrupted 3 times" in job.error


def test_the_reaper_ends_a_cancelled_job_whose_worker_is_gone(
    sessions: sessionmaker[Session], celery_app: Celery
) -> None:
    job_id = submit(sessions)
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(
            state="running", owner="gone:1", attempts=1, cancel_requested=True,
            heartbeat_at=Job.queued_at - timedelta(minutes=5)))

    report = reap(sessions, celery_app, heartbeat_s=10, max_attempts=3)

    assert job_id not in report.republished and job_id not in report.failed
    assert job_row(sessions, job_id).state == JobState.CANCELLED


def test_a_cancel_request_stops_a_running_job(
    sessions: sessionmaker[Session], celery_app: Celery, worker: WorkerProcess
) -> None:
    job_id = submit(sessions, steps=300)
    publish(celery_app, job_id, "tiny.fast")
    wait_for(sessions, job_id, lambda j: j.state == JobState.RUNNING and j.progress_step > 0)
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))

    job = wait_for(sessions, job_id, lambda j: j.state == JobState.CANCELLED, timeout=60)
    assert job.progress_step < 300


def test_a_job_over_its_members_running_limit_waits_then_runs(
    sessions: sessionmaker[Session], celery_app: Celery, worker: WorkerProcess
) -> None:
    user = next_id()
    with sessions() as session, session.begin():
        first, _ = jobs_db.submit(session=session, new=new_job(user, spec=spec(width=64, height=64), max_running=1))
        second, _ = jobs_db.submit(session=session, new=new_job(user, spec=spec(width=64, height=64), max_running=1))
        # The member's first job is running on another machine: their plan allows one at a time.
        running = jobs_db.claim(session=session, job_id=first.id, owner="elsewhere:1", stale_after=timedelta(minutes=1))
        assert running is not None
    publish(celery_app, second.id, "tiny.fast")

    # The worker takes the message, finds the limit reached, and holds the job back: no message any more.
    held = f"job {second.id}: held back by its member's running limit"
    deadline = time.monotonic() + JOB_TIMEOUT
    while held not in worker.output():
        assert time.monotonic() < deadline, worker.output()[-3000:]
        time.sleep(0.1)
    row = job_row(sessions, second.id)
    assert row.state == JobState.QUEUED and row.published_at is None
    assert worker.output().count(held) == 1  # it does not re-send itself
    with sessions() as session, session.begin():
        jobs_db.finish(session=session, job_id=first.id, state=JobState.SUCCEEDED, owner="elsewhere:1", gpu_ms=10)
        session.execute(update(Job).where(Job.id == second.id).values(queued_at=Job.queued_at - timedelta(minutes=5)))
    # The first job ended elsewhere (its own worker releases the next one); the reaper does it here.
    assert reap(sessions, celery_app, heartbeat_s=10, max_attempts=3).republished == [second.id]

    job = wait_for(sessions, second.id, lambda j: j.state == JobState.SUCCEEDED)
    assert job.attempts == 1
