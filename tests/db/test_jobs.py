"""The job repository against real PostgreSQL: idempotent submit, single claim, single finish, reaping."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db.models import Job
from domain.spec import JobSpec, JobState
from tests.support.factories import new_job, next_id

STALE = timedelta(seconds=30)


def test_submit_stores_the_spec_and_is_idempotent_per_user_and_key(session: Session) -> None:
    user = next_id()
    first, created = jobs_db.submit(session=session, new=new_job(user, idem_key="slash:1"))
    again, created_again = jobs_db.submit(session=session, new=new_job(user, idem_key="slash:1"))
    other_user, other_created = jobs_db.submit(session=session, new=new_job(next_id(), idem_key="slash:1"))

    assert (created, created_again, other_created) == (True, False, True)
    assert again.id == first.id and other_user.id != first.id
    assert first.state == JobState.QUEUED
    assert JobSpec.from_dict(first.spec).prompt == "a fox in the snow"
    assert first.queue == "tiny.fast"


def test_only_one_claim_wins(session: Session) -> None:
    job, _ = jobs_db.submit(session=session, new=new_job())
    first = jobs_db.claim(session=session, job_id=job.id, owner="w1", stale_after=STALE)
    second = jobs_db.claim(session=session, job_id=job.id, owner="w2", stale_after=STALE)
    assert first is not None and first.owner == "w1" and first.attempts == 1
    assert second is None


def test_a_running_job_with_a_stale_heartbeat_can_be_claimed_again(session: Session) -> None:
    job, _ = jobs_db.submit(session=session, new=new_job())
    jobs_db.claim(session=session, job_id=job.id, owner="dead", stale_after=STALE)
    session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=Job.heartbeat_at - timedelta(minutes=5)))
    taken = jobs_db.claim(session=session, job_id=job.id, owner="alive", stale_after=STALE)
    assert taken is not None and taken.owner == "alive" and taken.attempts == 2


def test_a_cancelled_job_is_not_claimed(session: Session) -> None:
    job, _ = jobs_db.submit(session=session, new=new_job())
    session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
    assert jobs_db.claim(session=session, job_id=job.id, owner="w", stale_after=STALE) is None


def test_finish_happens_once_and_only_for_the_owner(session: Session) -> None:
    job, _ = jobs_db.submit(session=session, new=new_job())
    jobs_db.claim(session=session, job_id=job.id, owner="w1", stale_after=STALE)
    assert jobs_db.finish(session=session, job_id=job.id, state=JobState.SUCCEEDED, owner="intruder") is None
    images = [{"index": i, "seed": 42 + i, "storage_key": f"jobs/{job.id}/{i}.png", "width": 64, "height": 64}
              for i in range(4)]
    done = jobs_db.finish(session=session, job_id=job.id, state=JobState.SUCCEEDED, owner="w1", gpu_ms=1234,
                          result_key="grid", images=images)
    twice = jobs_db.finish(session=session, job_id=job.id, state=JobState.FAILED, owner="w1")
    assert done is not None and done.state == JobState.SUCCEEDED and done.gpu_ms == 1234
    assert twice is None
    assert [(i.index, i.seed) for i in jobs_db.images_of(session=session, job_id=job.id)] == [
        (0, 42), (1, 43), (2, 44), (3, 45)]


def test_progress_reports_whether_to_go_on(session: Session) -> None:
    job, _ = jobs_db.submit(session=session, new=new_job())
    jobs_db.claim(session=session, job_id=job.id, owner="w", stale_after=STALE)
    assert jobs_db.record_progress(session=session, job_id=job.id, owner="w", step=3, total=10)
    session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
    assert not jobs_db.record_progress(session=session, job_id=job.id, owner="w", step=4, total=10)
    assert not jobs_db.heartbeat(session=session, job_id=job.id, owner="w")
    row = jobs_db.get(session=session, job_id=job.id)
    assert row is not None and (row.progress_step, row.progress_total) == (4, 10)


def test_queue_position_counts_jobs_ahead_in_the_same_queue(session: Session) -> None:
    jobs = [jobs_db.submit(session=session, new=new_job())[0] for _ in range(3)]
    base = jobs_db.queue_position(session=session, job=jobs[0])
    assert [jobs_db.queue_position(session=session, job=j) - base for j in jobs] == [0, 1, 2]


def test_undelivered_lists_finished_jobs_until_marked(session: Session) -> None:
    job, _ = jobs_db.submit(session=session, new=new_job())
    jobs_db.claim(session=session, job_id=job.id, owner="w", stale_after=STALE)
    jobs_db.finish(session=session, job_id=job.id, state=JobState.FAILED, owner="w", error="boom")
    assert job.id in [j.id for j in jobs_db.undelivered(session=session, limit=1000)]
    jobs_db.mark_delivered(session=session, job_id=job.id, state="failed", message_id=99)
    assert job.id not in [j.id for j in jobs_db.undelivered(session=session, limit=1000)]


def test_stale_finds_lost_jobs_and_requeue_puts_them_back(session: Session) -> None:
    running, _ = jobs_db.submit(session=session, new=new_job())
    fresh, _ = jobs_db.submit(session=session, new=new_job())
    jobs_db.claim(session=session, job_id=running.id, owner="dead", stale_after=STALE)
    jobs_db.claim(session=session, job_id=fresh.id, owner="alive", stale_after=STALE)
    ten_minutes_earlier = Job.heartbeat_at - timedelta(minutes=10)
    session.execute(update(Job).where(Job.id == running.id).values(heartbeat_at=ten_minutes_earlier))

    found = {j.id for j in jobs_db.stale(session=session, heartbeat_for=timedelta(minutes=1), limit=1000)}
    assert running.id in found and fresh.id not in found

    jobs_db.requeue(session=session, job_id=running.id)
    row = jobs_db.get(session=session, job_id=running.id)
    assert row is not None and row.state == JobState.QUEUED and row.owner is None and row.published_at is None
