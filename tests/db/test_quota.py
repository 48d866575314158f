"""The quota ledger against real PostgreSQL: reservations, settlement, refunds, lanes, limits, and many
concurrent submits from separate connections."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db import plans as plans_db
from db import quota
from db.models import Balance, Job, LedgerEntry
from db.session import make_sessionmaker
from db.submission import submit_jobs
from domain.errors import BannedError, LimitError, OutOfFastTimeError
from domain.plans import Period, PlanBook, PlanSource, ResolvedPlan, SourceKind, parse_plans
from domain.spec import JobState, Lane
from tests.support.factories import new_job, next_id

STALE = timedelta(seconds=30)
START = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = Period(START, datetime(2026, 2, 1, tzinfo=UTC))

BOOK: PlanBook = parse_plans({
    "default": "small",
    "plans": {
        "small": {"fast_seconds": 10, "concurrent": 1, "queued": 2},
        "relaxed": {"fast_seconds": 10, "relax": True, "turbo": True, "concurrent": 2, "queued": 3},
        "big": {"fast_seconds": 100, "turbo": True},
    },
})


def resolved(plan: str = "small", period: Period = PERIOD) -> ResolvedPlan:
    return ResolvedPlan(BOOK.plans[plan], PlanSource(plan, SourceKind.GRANT, period.start), period)


def submit(session: Session, user: int, *, plan: str = "small", estimate: int = 1000, lane: Lane = Lane.FAST,
           key: str | None = None, count: int = 1) -> list[tuple[Job, bool, int]]:
    jobs = [new_job(user, lane=lane, idem_key=f"{key}:{i}" if key else None) for i in range(count)]
    return submit_jobs(session=session, new_jobs=jobs, resolved=resolved(plan), estimates=[estimate] * count)


def balance_of(session: Session, user: int) -> Balance:
    found = quota.get_balance(session=session, user_id=user, period_start=START)
    assert found is not None
    session.refresh(found)
    return found


def assert_ledger_explains(session: Session, user_ids: list[int]) -> None:
    """limit = Σ grants, used = Σ settles, reserved = Σ reservations of jobs neither settled nor refunded."""
    for balance in plans_db.balances_of(session=session, user_ids=user_ids):
        session.refresh(balance)
        rows = list(session.execute(select(LedgerEntry).where(LedgerEntry.balance_id == balance.id)).scalars())
        closed = {r.job_id for r in rows if r.kind in ("settle", "refund")}
        assert balance.limit_ms == sum(r.amount_ms for r in rows if r.kind == "grant")
        assert balance.used_ms == sum(r.amount_ms for r in rows if r.kind == "settle")
        assert balance.reserved_ms == sum(r.amount_ms for r in rows if r.kind == "reserve" and r.job_id not in closed)
        assert 0 <= balance.used_ms + balance.reserved_ms <= balance.limit_ms


def run(session: Session, job: Job, state: JobState, gpu_ms: int | None = None) -> Job | None:
    jobs_db.claim(session=session, job_id=job.id, owner="w", stale_after=STALE)
    return jobs_db.finish(session=session, job_id=job.id, state=state, owner="w", gpu_ms=gpu_ms)


# -- balances and reservations -----------------------------------------------------------------------------


def test_a_balance_starts_with_the_plans_fast_time_and_a_plan_change_is_a_grant(session: Session) -> None:
    user = next_id()
    plans_db.touch_user(session=session, user_id=user)
    balance = quota.ensure_balance(session=session, user_id=user, period=PERIOD, plan=BOOK.plans["small"])
    assert (balance.limit_ms, balance.used_ms, balance.reserved_ms, balance.plan) == (10_000, 0, 0, "small")
    again = quota.ensure_balance(session=session, user_id=user, period=PERIOD, plan=BOOK.plans["small"])
    assert again.id == balance.id

    bigger = quota.ensure_balance(session=session, user_id=user, period=PERIOD, plan=BOOK.plans["big"])
    assert (bigger.id, bigger.limit_ms, bigger.plan) == (balance.id, 100_000, "big")
    grants = session.execute(
        select(LedgerEntry.amount_ms).where(LedgerEntry.balance_id == balance.id, LedgerEntry.kind == "grant")
        .order_by(LedgerEntry.id)
    ).scalars().all()
    assert grants == [10_000, 90_000]


def test_a_downgrade_never_takes_away_time_already_used(session: Session) -> None:
    user = next_id()
    plans_db.touch_user(session=session, user_id=user)
    balance = quota.ensure_balance(session=session, user_id=user, period=PERIOD, plan=BOOK.plans["big"])
    assert quota.reserve(session=session, balance_id=balance.id, amount_ms=40_000) == 60_000
    smaller = quota.ensure_balance(session=session, user_id=user, period=PERIOD, plan=BOOK.plans["small"])
    assert (smaller.limit_ms, smaller.left_ms) == (40_000, 0)
    grants = session.execute(
        select(LedgerEntry.amount_ms).where(LedgerEntry.balance_id == balance.id, LedgerEntry.kind == "grant")
    ).scalars().all()
    assert sorted(grants) == [-60_000, 100_000]


def test_reserve_stops_exactly_at_the_limit(session: Session) -> None:
    user = next_id()
    plans_db.touch_user(session=session, user_id=user)
    balance = quota.ensure_balance(session=session, user_id=user, period=PERIOD, plan=BOOK.plans["small"])
    assert quota.reserve(session=session, balance_id=balance.id, amount_ms=6_000) == 4_000
    assert quota.reserve(session=session, balance_id=balance.id, amount_ms=4_001) is None
    assert quota.reserve(session=session, balance_id=balance.id, amount_ms=4_000) == 0
    assert quota.reserve(session=session, balance_id=balance.id, amount_ms=1) is None
    with pytest.raises(ValueError, match="negative"):
        quota.reserve(session=session, balance_id=balance.id, amount_ms=-5)


def test_the_database_refuses_overspending_and_ledger_edits(session: Session) -> None:
    user = next_id()
    submit(session, user)
    balance = balance_of(session, user)
    with pytest.raises(DBAPIError, match="ck_balances_within_limit"), session.begin_nested():
        session.execute(update(Balance).where(Balance.id == balance.id).values(used_ms=Balance.limit_ms + 1))
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("UPDATE ledger SET amount_ms = 0 WHERE balance_id = :b"), {"b": balance.id})
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("DELETE FROM ledger WHERE balance_id = :b"), {"b": balance.id})


# -- submit ------------------------------------------------------------------------------------------------


def test_submit_reserves_the_estimate_and_writes_one_ledger_row(session: Session) -> None:
    user = next_id()
    [(job, created, _)] = submit(session, user, estimate=2_500)
    assert created and job.lane == "fast" and job.queue == "tiny.fast"
    assert (job.estimated_ms, job.reserved_ms, job.period_start, job.max_running) == (2_500, 2_500, START, 1)
    assert balance_of(session, user).reserved_ms == 2_500
    rows = session.execute(select(LedgerEntry.kind, LedgerEntry.amount_ms).where(LedgerEntry.job_id == job.id)).all()
    assert [tuple(r) for r in rows] == [("reserve", 2_500)]


def test_a_double_click_makes_one_job_and_charges_once(session: Session) -> None:
    user = next_id()
    [(first, created, _)] = submit(session, user, key="button:1:job:5:upscale:1")
    [(again, created_again, _)] = submit(session, user, key="button:1:job:5:upscale:1")
    assert created and not created_again and again.id == first.id
    assert balance_of(session, user).reserved_ms == 1_000
    assert_ledger_explains(session, [user])


def test_turbo_reserves_twice_and_relax_nothing(session: Session) -> None:
    user = next_id()
    [(turbo, _, _)] = submit(session, user, plan="relaxed", lane=Lane.TURBO, estimate=2_000)
    [(relax, _, _)] = submit(session, user, plan="relaxed", lane=Lane.RELAX, estimate=2_000)
    assert (turbo.lane, turbo.queue, turbo.reserved_ms) == ("turbo", "tiny.turbo", 4_000)
    assert (relax.lane, relax.queue, relax.reserved_ms) == ("relax", "tiny.relax", 0)
    assert balance_of(session, user).reserved_ms == 4_000


def test_out_of_fast_time_moves_to_relax_when_the_plan_has_it(session: Session) -> None:
    user = next_id()
    jobs = submit(session, user, plan="relaxed", estimate=4_000, count=3)
    assert [j.lane for j, _, _ in jobs] == ["fast", "fast", "relax"]
    assert "relax mode" in jobs[2][0].spec["notes"][-1] and "renews on 2026-02-01" in jobs[2][0].spec["notes"][-1]
    assert balance_of(session, user).reserved_ms == 8_000


def test_turbo_without_enough_time_for_twice_runs_in_fast(session: Session) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, plan="relaxed", lane=Lane.TURBO, estimate=6_000)
    assert job.lane == "fast" and "Not enough fast time left for turbo" in job.spec["notes"][-1]


def test_out_of_fast_time_without_relax_is_refused_and_leaves_nothing(session: Session) -> None:
    user = next_id()
    submit(session, user, estimate=8_000)
    before = session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    with pytest.raises(OutOfFastTimeError, match=r"needs about 3s and you have 2s left.*/subscribe"), \
            session.begin_nested():
        submit(session, user, estimate=3_000)
    assert session.execute(select(func.count()).select_from(Job).where(Job.user_id == user)).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == before
    assert balance_of(session, user).reserved_ms == 8_000


def test_a_prompt_of_several_jobs_is_all_or_nothing(session: Session) -> None:
    user = next_id()
    with pytest.raises(OutOfFastTimeError), session.begin_nested():
        submit(session, user, estimate=4_000, count=3)
    assert session.execute(select(func.count()).select_from(Job).where(Job.user_id == user)).scalar_one() == 0


def test_the_plans_limit_on_jobs_per_lane(session: Session) -> None:
    user = next_id()
    submit(session, user, estimate=100, count=3)  # small: 1 running + 2 waiting
    with pytest.raises(LimitError, match=r"3 fast jobs waiting or running.*allows 3"), session.begin_nested():
        submit(session, user, estimate=100)
    [(job, _, _)] = submit(session, next_id(), estimate=100)  # another member is not affected
    finished = run(session, job, JobState.SUCCEEDED, 50)
    assert finished is not None


def test_a_banned_member_is_refused(session: Session) -> None:
    user = next_id()
    plans_db.ban(session=session, user_id=user, guild_id=None, by=1, reason="spam")  # an operator's: everywhere
    with pytest.raises(BannedError, match="Reason: spam"), session.begin_nested():
        submit(session, user)
    assert plans_db.unban(session=session, user_id=user, guild_id=None)
    assert submit(session, user)[0][1]


def test_a_ban_in_one_server_refuses_there_only(session: Session) -> None:
    user, here, there = next_id(), next_id(), next_id()
    plans_db.ban(session=session, user_id=user, guild_id=here, by=1, reason="rude")
    with pytest.raises(BannedError, match="Reason: rude"), session.begin_nested():
        submit_jobs(session=session, new_jobs=[new_job(user, guild_id=here)], resolved=resolved(), estimates=[100])
    [(_, created, _)] = submit_jobs(session=session, new_jobs=[new_job(user, guild_id=there)], resolved=resolved(),
                                    estimates=[100])
    assert created
    assert not plans_db.unban(session=session, user_id=user, guild_id=there)  # that server has no ban to lift
    assert plans_db.active_ban(session=session, user_id=user, guild_id=here) is not None
    assert plans_db.active_ban(session=session, user_id=user, guild_id=None) is None


# -- settle and refund -------------------------------------------------------------------------------------


def test_success_charges_the_measured_gpu_time_once(session: Session) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, estimate=3_000)
    done = run(session, job, JobState.SUCCEEDED, gpu_ms=1_234)
    assert done is not None and done.charged_ms == 1_234
    balance = balance_of(session, user)
    assert (balance.used_ms, balance.reserved_ms) == (1_234, 0)
    assert jobs_db.finish(session=session, job_id=job.id, state=JobState.FAILED, owner=None) is None
    assert quota.settle(session=session, job=done) is None  # a second settle finds the first
    assert balance_of(session, user).used_ms == 1_234
    assert_ledger_explains(session, [user])


def test_turbo_is_charged_twice_the_gpu_time_and_relax_nothing(session: Session) -> None:
    user = next_id()
    [(turbo, _, _)] = submit(session, user, plan="relaxed", lane=Lane.TURBO, estimate=1_000)
    [(relax, _, _)] = submit(session, user, plan="relaxed", lane=Lane.RELAX, estimate=1_000)
    assert run(session, turbo, JobState.SUCCEEDED, gpu_ms=700).charged_ms == 1_400  # type: ignore[union-attr]
    assert run(session, relax, JobState.SUCCEEDED, gpu_ms=700).charged_ms == 0  # type: ignore[union-attr]
    assert balance_of(session, user).used_ms == 1_400
    assert_ledger_explains(session, [user])


def test_more_gpu_time_than_estimated_is_charged_up_to_the_limit(session: Session) -> None:
    user = next_id()
    [(first, _, _)] = submit(session, user, estimate=4_000)
    [(second, _, _)] = submit(session, user, estimate=4_000)
    assert run(session, first, JobState.SUCCEEDED, gpu_ms=5_000).charged_ms == 5_000  # type: ignore[union-attr]
    # 10 s limit: 5 s used, 4 s held for the second job; it ran 9 s but only 5 s are left to charge.
    assert run(session, second, JobState.SUCCEEDED, gpu_ms=9_000).charged_ms == 5_000  # type: ignore[union-attr]
    balance = balance_of(session, user)
    assert (balance.used_ms, balance.reserved_ms, balance.left_ms) == (10_000, 0, 0)
    assert_ledger_explains(session, [user])


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELLED])
def test_failure_and_cancel_refund_the_reservation(session: Session, state: JobState) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, estimate=3_000)
    done = run(session, job, state, gpu_ms=2_000)
    assert done is not None and done.charged_ms == 0
    assert (balance_of(session, user).used_ms, balance_of(session, user).reserved_ms) == (0, 0)
    kinds = session.execute(select(LedgerEntry.kind).where(LedgerEntry.job_id == job.id)).scalars().all()
    assert sorted(kinds) == ["refund", "reserve"]


def test_the_reapers_failure_refunds(session: Session) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, estimate=3_000)
    assert jobs_db.finish(session=session, job_id=job.id, state=JobState.FAILED, owner=None, error="lost")
    assert balance_of(session, user).reserved_ms == 0
    assert_ledger_explains(session, [user])


# -- a member's cancel (db.jobs.request_cancel) ---------------------------------------------------------------


def ledger_kinds(session: Session, job_id: int) -> list[str]:
    return sorted(session.execute(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id)).scalars())


def test_a_queued_job_is_cancelled_at_once_and_refunded_once(session: Session) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, estimate=3_000)
    assert balance_of(session, user).reserved_ms == 3_000

    assert jobs_db.request_cancel(session=session, job_id=job.id) is JobState.CANCELLED
    session.refresh(job)
    assert (job.state, job.cancel_requested, job.finished_at is not None) == (JobState.CANCELLED, True, True)
    assert (balance_of(session, user).used_ms, balance_of(session, user).reserved_ms) == (0, 0)
    # A second click, a late claim, a reaper's finish: none of them changes it or refunds again.
    assert jobs_db.request_cancel(session=session, job_id=job.id) is None
    assert jobs_db.claim(session=session, job_id=job.id, owner="w", stale_after=STALE) is None
    assert jobs_db.finish(session=session, job_id=job.id, state=JobState.FAILED, owner=None) is None
    assert ledger_kinds(session, job.id) == ["refund", "reserve"]
    assert_ledger_explains(session, [user])


def test_a_running_job_is_asked_to_stop_and_refunded_once_when_its_worker_finishes_it(session: Session) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, estimate=3_000)
    jobs_db.claim(session=session, job_id=job.id, owner="w", stale_after=STALE)

    assert jobs_db.request_cancel(session=session, job_id=job.id) is JobState.RUNNING
    assert jobs_db.request_cancel(session=session, job_id=job.id) is JobState.RUNNING  # a double click: the same
    session.refresh(job)
    assert (job.state, job.cancel_requested) == (JobState.RUNNING, True)
    assert balance_of(session, user).reserved_ms == 3_000  # held until the worker stops
    # The worker sees the request at its next step or heartbeat, and finishes the job as cancelled.
    assert jobs_db.record_progress(session=session, job_id=job.id, owner="w", step=3, total=30) is False
    assert jobs_db.heartbeat(session=session, job_id=job.id, owner="w") is False
    assert jobs_db.finish(session=session, job_id=job.id, state=JobState.CANCELLED, owner="w") is not None
    assert (balance_of(session, user).used_ms, balance_of(session, user).reserved_ms) == (0, 0)
    assert jobs_db.request_cancel(session=session, job_id=job.id) is None
    assert jobs_db.finish(session=session, job_id=job.id, state=JobState.CANCELLED, owner=None) is None
    assert ledger_kinds(session, job.id) == ["refund", "reserve"]
    assert_ledger_explains(session, [user])


def test_a_job_that_ended_or_does_not_exist_is_not_cancelled(session: Session) -> None:
    user = next_id()
    [(job, _, _)] = submit(session, user, estimate=3_000)
    run(session, job, JobState.SUCCEEDED, gpu_ms=2_000)
    assert jobs_db.request_cancel(session=session, job_id=job.id) is None
    session.refresh(job)
    assert (job.state, job.cancel_requested) == (JobState.SUCCEEDED, False)
    assert ledger_kinds(session, job.id) == ["reserve", "settle"]
    assert jobs_db.request_cancel(session=session, job_id=2**62) is None


# -- the running limit at claim ----------------------------------------------------------------------------


def test_a_worker_does_not_start_more_than_the_plans_running_limit(session: Session) -> None:
    user = next_id()
    first, second = (j for j, _, _ in submit(session, user, estimate=100, count=2))  # small: 1 at once
    assert jobs_db.claim(session=session, job_id=first.id, owner="w1", stale_after=STALE) is not None
    assert jobs_db.claim(session=session, job_id=second.id, owner="w2", stale_after=STALE) is None
    assert jobs_db.held_back(session=session, job_id=second.id)
    jobs_db.finish(session=session, job_id=first.id, state=JobState.SUCCEEDED, owner="w1", gpu_ms=10)
    assert jobs_db.claim(session=session, job_id=second.id, owner="w2", stale_after=STALE) is not None
    assert not jobs_db.held_back(session=session, job_id=second.id)


# -- many members, many connections, at once ---------------------------------------------------------------


def test_concurrent_submits_never_overspend_and_every_job_is_charged_once(engine: Engine) -> None:
    """60 submits from 12 threads (each its own connection) for 3 members on small limits, with workers
    finishing jobs meanwhile and every submit clicked twice: no balance over its limit, the ledger explains
    every balance, each job has one reservation and one settle-or-refund, a double click makes one job."""
    sessions = make_sessionmaker(engine)
    users = [next_id() for _ in range(3)]
    plan_of = {users[0]: "small", users[1]: "relaxed", users[2]: "big"}
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def submitter(worker: int) -> None:
        rng = random.Random(worker)
        barrier.wait()
        for n in range(5):
            user = users[(worker + n) % 3]
            key = f"slash:{worker}:{n}"
            lane = rng.choice([Lane.TURBO, Lane.FAST, Lane.FAST, Lane.RELAX])
            for _click in range(2):  # a double click: the same idempotency key twice
                try:
                    with sessions() as session, session.begin():
                        submit_jobs(session=session, new_jobs=[new_job(user, idem_key=key, lane=lane)],
                                    resolved=resolved(plan_of[user]), estimates=[rng.randint(500, 4_000)])
                    result = "submitted"
                except (OutOfFastTimeError, LimitError) as exc:
                    result = type(exc).__name__
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return
                with lock:
                    outcomes[result] += 1
            finish_some(rng)

    def finish_some(rng: random.Random) -> None:
        with sessions() as session, session.begin():
            queued = session.execute(
                select(Job.id).where(Job.user_id.in_(users), Job.state == JobState.QUEUED.value)
                .order_by(func.random()).limit(2)
            ).scalars().all()
        for job_id in queued:
            with sessions() as session, session.begin():
                owner = f"w{threading.get_ident()}"
                if jobs_db.claim(session=session, job_id=job_id, owner=owner, stale_after=STALE) is None:
                    continue
            state = rng.choice([JobState.SUCCEEDED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED])
            for _ in range(2):  # a finish that races itself: charged once
                with sessions() as session, session.begin():
                    jobs_db.finish(session=session, job_id=job_id, state=state, owner=owner,
                                   gpu_ms=rng.randint(100, 6_000))

    threads = [threading.Thread(target=submitter, args=(w,)) for w in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(outcomes.values()) == 120 and outcomes["submitted"] >= 60, outcomes

    with sessions() as session, session.begin():
        jobs = list(session.execute(select(Job).where(Job.user_id.in_(users))).scalars())
        assert len(jobs) == len({(j.user_id, j.idem_key) for j in jobs}) <= 60  # one job per key
        assert_ledger_explains(session, users)
        entries = list(session.execute(select(LedgerEntry).where(LedgerEntry.user_id.in_(users))).scalars())
        per_job = Counter((e.job_id, e.kind) for e in entries if e.job_id is not None)
        assert all(count == 1 for count in per_job.values())
        for job in jobs:
            kinds = {kind for (job_id, kind) in per_job if job_id == job.id}
            if job.reserved_ms:
                assert "reserve" in kinds
            if JobState(job.state).is_terminal and job.reserved_ms:
                assert len(kinds & {"settle", "refund"}) == 1, (job.id, kinds)
            if not JobState(job.state).is_terminal:
                assert not kinds & {"settle", "refund"}
        # The small plan has neither turbo nor relax, and holds at most 3 jobs waiting or running.
        small = [j for j in jobs if j.user_id == users[0]]
        assert {j.lane for j in small} <= {"fast"}
        assert sum(1 for j in small if not JobState(j.state).is_terminal) <= 3
