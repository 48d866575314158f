"""Submitting jobs with their quota, in one transaction.

For each job of a request, under the member's row lock (``db.plans.lock_user``), so one member's submits
happen one at a time and their limits are counted exactly:

1. a job already made with the same idempotency key (a retried interaction), or by the same button
   clicked by the same member within :data:`domain.actions.DOUBLE_CLICK_S` (a double click), is returned as
   it is, and nothing more is charged;
2. the lane: from the member's chosen lane down (turbo, fast, relax), the first one the plan includes
   whose reservation fits what is left of the period's fast time (``db.quota.reserve``, a conditional
   UPDATE; relax reserves nothing);
3. the plan's limit on jobs waiting or running in that lane;
4. the job row, then its ``reserve`` ledger row.

A refusal raises a :class:`~domain.errors.RefusedError`; the caller's transaction rolls back, so a refused
request leaves no job row and no reservation. The caller commits, then publishes the new jobs' tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db import plans as plans_db
from db import quota
from db.models import Job
from db.queue import queue_position
from domain.errors import BannedError, LimitError
from domain.lanes import choose_lane
from domain.plans import ResolvedPlan
from domain.spec import queue_name

__all__ = ["submit_jobs"]


def submit_jobs(
    *, session: Session, new_jobs: Sequence[jobs_db.NewJob], resolved: ResolvedPlan, estimates: Sequence[int]
) -> list[tuple[Job, bool, int]]:
    """Submit the jobs of one request (one member): ``(job, created, queue position)`` for each.

    ``resolved`` is the member's plan and period (``db.plans.load_account``); ``estimates`` the GPU
    milliseconds of each job (``PlanBook.estimate_ms``), before the lane's multiplier.

    Raises
    ------
    BannedError, LimitError, OutOfFastTimeError
        Nothing is to be kept: roll the transaction back.
    """
    if not new_jobs:
        return []
    if len({new.user_id for new in new_jobs}) != 1 or len(estimates) != len(new_jobs):
        raise ValueError("submit_jobs takes the jobs of one member, with one estimate per job")
    first = new_jobs[0]
    plan, period = resolved.plan, resolved.period
    user = plans_db.lock_user(session=session, user_id=first.user_id, name=first.user_name or None)
    ban = plans_db.active_ban(session=session, user_id=user.id, guild_id=first.guild_id)
    if ban is not None:
        raise BannedError(ban.reason)
    balance = quota.ensure_balance(session=session, user_id=user.id, period=period, plan=plan)
    active = plans_db.active_counts(session=session, user_id=user.id)

    def hold(amount: int) -> bool:  # a conditional reservation on the period's balance
        return quota.reserve(session=session, balance_id=balance.id, amount_ms=amount) is not None

    def left() -> int:
        session.refresh(balance)
        return balance.left_ms

    out: list[tuple[Job, bool, int]] = []
    for new, estimate in zip(new_jobs, estimates, strict=True):
        existing = jobs_db.by_idem_key(session=session, user_id=user.id, idem_key=new.idem_key)
        if existing is None and new.click_key is not None and new.interaction_id is not None:
            existing = jobs_db.same_click(session=session, user_id=user.id, click_key=new.click_key,
                                          interaction_id=new.interaction_id)
        if existing is not None:
            out.append((existing, False, queue_position(session=session, job=existing)))
            continue

        # 2. The lane: the first one that fits, from the member's choice down (domain.lanes.choose_lane).
        choice, amount = choose_lane(new.lane, plan, period, estimate, reserve=hold, left_ms=left)
        lane, note = choice.lane, choice.note

        # 3. The plan's limit on jobs waiting or running in that lane.
        if active[lane] + 1 > plan.active_limit(lane):
            raise LimitError(lane.value, active[lane], plan.active_limit(lane))
        active[lane] += 1

        # 4. The job, then its ledger row.
        spec = new.spec.replace(notes=(*new.spec.notes, note)) if note else new.spec
        job, created = jobs_db.submit(session=session, new=dataclasses.replace(
            new,
            spec=spec,
            lane=lane,
            queue=queue_name(spec.model, lane),
            estimated_ms=estimate,
            period_start=balance.period_start,
            reserved_ms=amount,
            max_running=plan.running_limit(lane),
            stealth=bool(user.stealth and plan.stealth),
        ))
        if not created:  # cannot happen under the row lock; never keep a reservation without its job
            raise RuntimeError(f"job {new.idem_key!r} appeared while its member was locked")
        if amount:
            quota.record(session=session, balance=balance, kind="reserve", amount_ms=amount, job_id=job.id,
                         idem_key=new.idem_key)
        out.append((job, True, queue_position(session=session, job=job)))
    return out
