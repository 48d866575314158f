"""The quota ledger: balances of fast time per (user, period), changed only by conditional UPDATEs, each
with an append-only ledger row.

    grant    limit_ms    += amount   a new period, or the plan changed within one (amount may be < 0)
    reserve  reserved_ms += amount   at submit: the job's estimate (times the lane's multiplier)
    settle   reserved_ms -= the job's reservation, used_ms += amount (the GPU time charged)
    refund   reserved_ms -= amount   the job failed or was cancelled

So, for every balance: ``limit_ms`` is the sum of its grants, ``used_ms`` the sum of its settles, and
``reserved_ms`` the sum of the reservations of its jobs that have neither a settle nor a refund.
``UNIQUE(job_id, kind)`` on the ledger means a job is reserved, settled or refunded at most once.

Reserving is one statement (``... AND used_ms + reserved_ms + x <= limit_ms``), so concurrent submits
can never grant more than the limit; the table's CHECK constraints back that up.

Settling charges the measured GPU time, even when it is more than the estimate, but never beyond the
limit: what would go over is forgiven (the job row keeps both ``gpu_ms`` and ``charged_ms``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Balance, Job, LedgerEntry
from domain.costs import charge_ms
from domain.plans import Period, Plan
from domain.spec import JobState, Lane

__all__ = [
    "current_balance",
    "ensure_balance",
    "get_balance",
    "record",
    "reserve",
    "settle",
]

log = logging.getLogger(__name__)

_balances = Balance.__table__  # Core, not ORM: the hot path of every submit


def get_balance(*, session: Session, user_id: int, period_start: datetime) -> Balance | None:
    """The user's balance for the period starting at ``period_start``, or None."""
    return session.execute(
        select(Balance).where(Balance.user_id == user_id, Balance.period_start == period_start)
    ).scalar_one_or_none()


def current_balance(*, session: Session, user_id: int, now: datetime | None = None) -> Balance | None:
    """The user's most recent balance whose period holds ``now`` (default: the database's now)."""
    at = now if now is not None else func.now()
    return session.execute(
        select(Balance)
        .where(
            Balance.user_id == user_id,
            Balance.period_start <= at,
            (Balance.period_end.is_(None)) | (Balance.period_end > at),
        )
        .order_by(Balance.period_start.desc(), Balance.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def record(
    *, session: Session, balance: Balance, kind: str, amount_ms: int, job_id: int | None = None,
    idem_key: str | None = None,
) -> None:
    """Append a ledger row (the caller changes the balance in the same transaction)."""
    session.add(LedgerEntry(balance_id=balance.id, user_id=balance.user_id, job_id=job_id, kind=kind,
                            amount_ms=amount_ms, idem_key=idem_key))


def ensure_balance(*, session: Session, user_id: int, period: Period, plan: Plan) -> Balance:
    """The user's balance for ``period``, created with the plan's fast time if missing.

    When the plan changed within the period, the limit becomes the new plan's fast time, but never less
    than what is already used and reserved; the change is a ``grant`` row of the difference.
    """
    inserted = session.execute(
        insert(Balance)
        .values(user_id=user_id, period_start=period.start, period_end=period.end, plan=plan.name,
                limit_ms=plan.fast_ms)
        .on_conflict_do_nothing(constraint="uq_balances_user_period")
        .returning(Balance.id)
    ).scalar_one_or_none()
    if inserted is not None:
        balance = session.get_one(Balance, inserted)
        if plan.fast_ms:
            record(session=session, balance=balance, kind="grant", amount_ms=plan.fast_ms,
                   idem_key=f"plan:{plan.name}")
        return balance
    found = get_balance(session=session, user_id=user_id, period_start=period.start)
    assert found is not None
    if found.plan == plan.name and found.period_end == period.end:
        return found
    # The plan changed within the period: adjust under the row lock, so two requests record one grant.
    balance = session.execute(
        select(Balance).where(Balance.id == found.id).with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if balance.plan == plan.name and balance.period_end == period.end:
        return balance
    target = max(plan.fast_ms, balance.used_ms + balance.reserved_ms)
    delta = target - balance.limit_ms
    balance.plan, balance.period_end, balance.limit_ms = plan.name, period.end, target
    session.flush()
    if delta:
        record(session=session, balance=balance, kind="grant", amount_ms=delta, idem_key=f"plan:{plan.name}")
    return balance


def reserve(*, session: Session, balance_id: int, amount_ms: int) -> int | None:
    """Hold ``amount_ms`` if it fits under the limit, in one conditional UPDATE.

    Returns the fast time left after it, or None (nothing changed) when it does not fit.
    """
    if amount_ms < 0:
        raise ValueError(f"amount_ms must not be negative, got {amount_ms}")
    b = _balances.c
    left = session.execute(
        update(_balances)  # type: ignore[arg-type]
        .where(b.id == balance_id, b.used_ms + b.reserved_ms + amount_ms <= b.limit_ms)
        .values(reserved_ms=b.reserved_ms + amount_ms)
        .returning(b.limit_ms - b.used_ms - b.reserved_ms)
    ).scalar_one_or_none()
    return None if left is None else int(left)


def settle(*, session: Session, job: Job) -> int | None:
    """Settle a job that just reached a terminal state, once: charge a succeeded job's GPU time (times
    its lane's multiplier), refund a failed or cancelled one's reservation.

    Returns the fast time charged (0 for a refund or a relax job), or None when there was nothing to
    do (no balance, or already settled). Call it in the transaction that finished the job.
    """
    state = JobState(job.state)
    assert state.is_terminal, state
    lane = Lane(job.lane)
    charge = charge_ms(lane, job.gpu_ms) if state is JobState.SUCCEEDED else 0
    if job.period_start is None:  # submitted before quotas, or outside them
        return None
    if job.reserved_ms == 0 and charge == 0:  # relax: nothing held, nothing charged
        job.charged_ms = 0
        return 0
    # Lock the balance: settles and refunds of one balance happen one at a time, and a job's own
    # settle-or-refund row is looked for under the lock, so a job ends up with exactly one of them.
    balance = session.execute(
        select(Balance)
        .where(Balance.user_id == job.user_id, Balance.period_start == job.period_start)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if balance is None:
        log.warning("job %s: no balance for its period %s; not charged", job.id, job.period_start)
        return None
    done = session.execute(
        select(LedgerEntry.id).where(LedgerEntry.job_id == job.id, LedgerEntry.kind.in_(("settle", "refund")))
    ).first()
    if done is not None:
        return None
    reserved = job.reserved_ms
    if state is JobState.SUCCEEDED:
        # Charge the GPU time actually used, even above the estimate, but never beyond the limit.
        headroom = balance.limit_ms - balance.used_ms - (balance.reserved_ms - reserved)
        charged = max(0, min(charge, headroom))
        session.execute(
            update(Balance)
            .where(Balance.id == balance.id)
            .values(reserved_ms=Balance.reserved_ms - reserved, used_ms=Balance.used_ms + charged)
        )
        record(session=session, balance=balance, kind="settle", amount_ms=charged, job_id=job.id,
               idem_key=job.idem_key)
        if charged < charge:
            log.info("job %s: charged %s ms of %s (the limit); the rest is forgiven", job.id, charged, charge)
    else:
        charged = 0
        session.execute(
            update(Balance).where(Balance.id == balance.id).values(reserved_ms=Balance.reserved_ms - reserved)
        )
        record(session=session, balance=balance, kind="refund", amount_ms=reserved, job_id=job.id,
               idem_key=job.idem_key)
    job.charged_ms = charged
    session.flush()
    return charged
