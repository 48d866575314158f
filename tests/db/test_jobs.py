"""The job repository against real PostgreSQL: idempotent submit, single claim, single finish, reaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db.models import Job
from db.queue import queue_position, standing
from domain.spec import JobSpec, JobState, Lane
from tests.fakediscord.models import snowflake
from tests.support.factories import new_job, next_id, spec


def snowflake_at(seconds: float) -> int:
    return snowflake(seconds)

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


def test_limited_lane_names_the_member_and_lane_only_of_a_job_under_a_running_limit(session: Session) -> None:
    limited, _ = jobs_db.submit(session=session, new=new_job(lane=Lane.RELAX, max_running=2))
    free, _ = jobs_db.submit(session=session, new=new_job())
    assert jobs_db.limited_lane(session=session, job_id=limited.id) == (limited.user_id, "relax")
    assert jobs_db.limited_lane(session=session, job_id=free.id) is None
    assert jobs_db.limited_lane(session=session, job_id=next_id()) is None


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


def test_positions_count_jobs_ahead_in_the_model_and_lane_and_etas_follow_recent_runs(session: Session) -> None:
    queue = f"m{next_id()}"
    jobs = [jobs_db.submit(session=session, new=new_job(spec=spec(model=queue), estimated_ms=8000))[0]
            for _ in range(3)]
    other_lane = jobs_db.submit(session=session, new=new_job(spec=spec(model=queue), lane=Lane.RELAX))[0]
    # Another member's job with no message in the broker yet (held by their running limit) is not ahead.
    assert [queue_position(session=session, job=j) for j in jobs] == [0, 0, 0]
    jobs_db.mark_published(session=session, job_ids=[j.id for j in jobs], epoch="e")
    assert [queue_position(session=session, job=j) for j in jobs] == [0, 1, 2]
    assert queue_position(session=session, job=other_lane) == 0
    now = datetime.now(UTC)
    # No history: each job's own estimate (8 s); nothing runs, so the third waits for two runs, then runs.
    eta = standing(session=session, job=jobs[2], now=now)
    assert eta is not None and (eta.position, eta.eta_s) == (2, 24.0)
    # Ten runs of 20 s in that queue: the estimate follows them.
    for _ in range(10):
        done = jobs_db.submit(session=session, new=new_job(spec=spec(model=queue)))[0]
        session.execute(update(Job).where(Job.id == done.id).values(
            state="succeeded", started_at=now - timedelta(seconds=30), finished_at=now - timedelta(seconds=10)))
    # The first starts running (5 s ago): the others move up, and wait for what is left of its run.
    session.execute(update(Job).where(Job.id == jobs[0].id).values(state="running",
                                                                  started_at=now - timedelta(seconds=5)))
    running, last = standing(session=session, job=jobs[0], now=now), standing(session=session, job=jobs[2], now=now)
    assert running is not None and (running.position, running.eta_s) == (0, 15.0)
    assert last is not None and (last.position, last.eta_s) == (1, 15.0 + 20.0 + 20.0)


def test_a_second_click_within_seconds_is_the_same_click(session: Session) -> None:
    user, key = next_id(), f"button:{next_id()}:job:1:reroll"
    first_click = snowflake_at(1_700_000_000.0)
    job, _ = jobs_db.submit(session=session, new=new_job(user, idem_key=f"{key}:{first_click}",
                                                         interaction_id=first_click))
    soon, later = snowflake_at(1_700_000_003.0), snowflake_at(1_700_000_000.0 + 120)
    assert jobs_db.same_click(session=session, user_id=user, click_key=key, interaction_id=soon) == job
    assert jobs_db.same_click(session=session, user_id=user, click_key=key, interaction_id=later) is None
    assert jobs_db.same_click(session=session, user_id=next_id(), click_key=key, interaction_id=soon) is None


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


def test_a_limited_members_jobs_start_in_order_within_a_queue_and_a_job_of_another_model_does_not_block(
    session: Session,
) -> None:
    member = next_id()
    # An older job of theirs waits for another model's workers (busy, or none serve it).
    elsewhere, _ = jobs_db.submit(session=session, new=new_job(member, spec=spec(model="elsewhere"), max_running=1))
    first, _ = jobs_db.submit(session=session, new=new_job(member, max_running=1))
    second, _ = jobs_db.submit(session=session, new=new_job(member, max_running=1))

    # In its own queue the newer job waits for the older; the job on the other model does not hold either back.
    assert jobs_db.claim(session=session, job_id=second.id, owner="w", stale_after=STALE) is None
    assert jobs_db.startable(session=session, job_ids=[first.id, second.id], stale_after=STALE) == [first.id]
    claimed = jobs_db.claim(session=session, job_id=first.id, owner="w", stale_after=STALE)
    assert claimed is not None and claimed.queue == "tiny.fast"

    # Its slot taken, neither waiting job starts; once it ends, the next held job heading its queue is the
    # oldest held one: the other model's job (the second still waits behind nothing but the limit).
    assert jobs_db.claim(session=session, job_id=second.id, owner="w", stale_after=STALE) is None
    jobs_db.finish(session=session, job_id=first.id, state=JobState.SUCCEEDED, owner="w")
    held = jobs_db.next_held(session=session, user_id=member, lane="fast")
    assert held is not None and held.id == elsewhere.id
    jobs_db.mark_published(session=session, job_ids=[elsewhere.id], epoch="test")
    following = jobs_db.next_held(session=session, user_id=member, lane="fast")
    assert following is not None and following.id == second.id
