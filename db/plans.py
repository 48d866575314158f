"""Where a member's plan comes from, and what they and the admins set: grants, role plans, Discord
entitlements, bans and member settings; plus :func:`load_account`, everything a command needs to know
about the member in one read.

Like every ``db`` module these functions never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db import quota
from db.models import Balance, Entitlement, Grant, Job, RolePlan, User
from domain.errors import PlanError
from domain.plans import Plan, PlanBook, PlanSource, ResolvedPlan, SourceKind, resolve_plan
from domain.spec import JobState, Lane

__all__ = [
    "Account",
    "EntitlementInfo",
    "Requester",
    "active_counts",
    "ban",
    "grant_plan",
    "list_grants",
    "list_role_plans",
    "load_account",
    "lock_user",
    "plan_sources",
    "record_entitlement",
    "revoke_grants",
    "set_role_plan",
    "touch_user",
    "unban",
    "update_settings",
    "usage_report",
    "user_jobs",
]

_ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)
#: Settings a member may change with /settings, /fast, /relax, /turbo.
_SETTINGS = {"lane", "default_model", "default_aspect", "default_stylize", "stealth", "remix"}


@dataclass(frozen=True, slots=True)
class EntitlementInfo:
    """A Discord entitlement as plain data (the bot builds it from ``discord.Entitlement``)."""

    id: int
    sku_id: int
    user_id: int | None = None
    guild_id: int | None = None
    type: int = 8
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    deleted: bool = False

    def active(self, now: datetime) -> bool:
        return (not self.deleted and (self.starts_at is None or self.starts_at <= now)
                and (self.ends_at is None or self.ends_at > now))


@dataclass(frozen=True, slots=True)
class Requester:
    """Who is asking, as Discord tells it: the user, where, their roles there, their entitlements."""

    user_id: int
    name: str = ""
    guild_id: int | None = None
    role_ids: tuple[int, ...] = ()
    entitlements: tuple[EntitlementInfo, ...] = ()


@dataclass
class Account:
    """A member as commands see them: settings, standing, plan, this period's balance, jobs per lane."""

    user: User
    resolved: ResolvedPlan
    balance: Balance
    #: Jobs waiting or running, per lane.
    active: dict[Lane, int] = field(default_factory=dict)

    @property
    def plan(self) -> Plan:
        return self.resolved.plan

    @property
    def lane(self) -> Lane:
        return Lane(self.user.lane)

    @property
    def left_ms(self) -> int:
        return self.balance.left_ms

    @property
    def banned(self) -> bool:
        return self.user.banned_at is not None


# -- users -----------------------------------------------------------------------------------------------


def touch_user(*, session: Session, user_id: int, name: str | None = None) -> User:
    """The user's row, created on first contact (``name`` updated when given). Locks the row."""
    values = {"id": user_id, "name": (name or "")[:100]}
    stmt = insert(User).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[User.id], set_={"name": stmt.excluded.name if name else User.name}
    ).returning(User)
    return session.execute(upsert, execution_options={"populate_existing": True}).scalar_one()


def lock_user(*, session: Session, user_id: int, name: str | None = None) -> User:
    """Like :func:`touch_user`; named for why submit calls it: the row lock (held until the transaction
    ends) serializes one member's submits, so their limits are counted exactly.

    The upsert takes FOR NO KEY UPDATE (it changes no key), which foreign-key checks (FOR KEY SHARE) from
    other transactions' ledger and job rows pass, so settling a job never waits for a submit's lock.
    """
    return touch_user(session=session, user_id=user_id, name=name)


def update_settings(*, session: Session, user_id: int, name: str | None = None, **changes: Any) -> User:
    """Change a member's settings (``lane``, ``default_model``, ``default_aspect``, ``default_stylize``,
    ``stealth``, ``remix``); ``None`` clears a default."""
    unknown = set(changes) - _SETTINGS
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    user = touch_user(session=session, user_id=user_id, name=name)
    for key, value in changes.items():
        setattr(user, key, value)
    session.flush()
    return user


def ban(*, session: Session, user_id: int, by: int | None, reason: str | None) -> User:
    user = touch_user(session=session, user_id=user_id)
    user.banned_at, user.banned_by, user.ban_reason = func.now(), by, (reason or None) and reason[:300]
    session.flush()
    session.refresh(user)
    return user


def unban(*, session: Session, user_id: int) -> bool:
    """Lift a ban; False when the user was not banned."""
    return session.execute(
        update(User).where(User.id == user_id, User.banned_at.is_not(None))
        .values(banned_at=None, banned_by=None, ban_reason=None).returning(User.id)
    ).scalar_one_or_none() is not None


# -- where plans come from ---------------------------------------------------------------------------------


def grant_plan(
    *, session: Session, user_id: int, plan: str, book: PlanBook, granted_by: int | None,
    expires_at: datetime | None,
) -> Grant:
    """Give a member ``plan`` until ``expires_at`` (None: until revoked). Replaces their earlier grants."""
    book.get(plan)  # raises PlanError for an unknown plan
    touch_user(session=session, user_id=user_id)
    revoke_grants(session=session, user_id=user_id)
    grant = Grant(user_id=user_id, plan=book.get(plan).name, granted_by=granted_by, expires_at=expires_at)
    session.add(grant)
    session.flush()
    session.refresh(grant)
    return grant


def revoke_grants(*, session: Session, user_id: int) -> int:
    """End a member's active grants now; returns how many."""
    return len(session.execute(
        update(Grant)
        .where(Grant.user_id == user_id, Grant.revoked_at.is_(None),
               Grant.expires_at.is_(None) | (Grant.expires_at > func.now()))
        .values(revoked_at=func.now())
        .returning(Grant.id)
    ).all())


def list_grants(*, session: Session, user_id: int, now: datetime) -> list[Grant]:
    """A member's grants in force at ``now``."""
    return list(session.execute(
        select(Grant)
        .where(Grant.user_id == user_id, Grant.revoked_at.is_(None),
               Grant.expires_at.is_(None) | (Grant.expires_at > now))
        .order_by(Grant.id)
    ).scalars())


def set_role_plan(*, session: Session, guild_id: int, role_id: int, plan: str | None, book: PlanBook,
                  set_by: int | None) -> None:
    """Members of ``guild_id`` with ``role_id`` get ``plan``; ``None`` removes the mapping."""
    if plan is None:
        session.execute(delete(RolePlan).where(RolePlan.guild_id == guild_id, RolePlan.role_id == role_id))
        return
    name = book.get(plan).name
    stmt = insert(RolePlan).values(guild_id=guild_id, role_id=role_id, plan=name, set_by=set_by)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[RolePlan.guild_id, RolePlan.role_id],
        set_={"plan": name, "set_by": set_by, "updated_at": func.now()},
    ))


def list_role_plans(*, session: Session, guild_id: int) -> list[RolePlan]:
    return list(session.execute(
        select(RolePlan).where(RolePlan.guild_id == guild_id).order_by(RolePlan.role_id)
    ).scalars())


def record_entitlement(*, session: Session, entitlement: EntitlementInfo) -> None:
    """Insert or update an entitlement (from a gateway event or an interaction)."""
    values = {
        "id": entitlement.id, "sku_id": entitlement.sku_id, "user_id": entitlement.user_id,
        "guild_id": entitlement.guild_id, "type": entitlement.type, "starts_at": entitlement.starts_at,
        "ends_at": entitlement.ends_at, "deleted": entitlement.deleted,
    }
    stmt = insert(Entitlement).values(**values)
    changed = {k: v for k, v in values.items() if k != "id"}
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Entitlement.id], set_={**changed, "updated_at": func.now()}
    ))


def _stored_entitlements(session: Session, user_id: int, guild_id: int | None) -> list[EntitlementInfo]:
    mine = Entitlement.user_id == user_id
    if guild_id is not None:
        mine = mine | ((Entitlement.guild_id == guild_id) & Entitlement.user_id.is_(None))
    rows = session.execute(select(Entitlement).where(mine, Entitlement.deleted.is_(False))).scalars()
    return [EntitlementInfo(id=r.id, sku_id=r.sku_id, user_id=r.user_id, guild_id=r.guild_id, type=r.type,
                            starts_at=r.starts_at, ends_at=r.ends_at, deleted=r.deleted) for r in rows]


def plan_sources(*, session: Session, requester: Requester, user: User, book: PlanBook,
                 now: datetime) -> list[PlanSource]:
    """Every plan the member qualifies for now, besides the default: subscriptions, role plans, grants."""
    sources: list[PlanSource] = []
    seen: dict[int, EntitlementInfo] = {e.id: e for e in _stored_entitlements(session, user.id, requester.guild_id)}
    seen.update({e.id: e for e in requester.entitlements})  # what Discord sent just now wins
    for entitlement in seen.values():
        plan = book.for_sku(entitlement.sku_id)
        if plan is not None and entitlement.active(now):
            sources.append(PlanSource(plan.name, SourceKind.SUBSCRIPTION, entitlement.starts_at or user.created_at,
                                      f"subscription (SKU {entitlement.sku_id})", entitlement.ends_at))
    if requester.guild_id is not None and requester.role_ids:
        for mapping in session.execute(
            select(RolePlan).where(RolePlan.guild_id == requester.guild_id,
                                   RolePlan.role_id.in_(requester.role_ids))
        ).scalars():
            sources.append(PlanSource(mapping.plan, SourceKind.ROLE, user.created_at, f"role <@&{mapping.role_id}>"))
    for grant in list_grants(session=session, user_id=user.id, now=now):
        until = f" until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else ""
        sources.append(PlanSource(grant.plan, SourceKind.GRANT, grant.created_at, f"granted{until}", grant.expires_at))
    return sources


# -- the member as commands see them -----------------------------------------------------------------------


def active_counts(*, session: Session, user_id: int) -> dict[Lane, int]:
    """The member's jobs waiting or running, per lane."""
    counts = dict.fromkeys(Lane, 0)
    for lane, count in session.execute(
        select(Job.lane, func.count()).where(Job.user_id == user_id, Job.state.in_(_ACTIVE)).group_by(Job.lane)
    ):
        counts[Lane(lane)] = int(count)
    return counts


def load_account(*, session: Session, requester: Requester, book: PlanBook, now: datetime) -> Account:
    """Everything a command needs about the member, in one transaction. Creates the user row on first
    contact, records the entitlements Discord sent, resolves the plan and makes sure this period's
    balance exists (with the plan's fast time)."""
    user = touch_user(session=session, user_id=requester.user_id, name=requester.name or None)
    for entitlement in requester.entitlements:
        record_entitlement(session=session, entitlement=entitlement)
    sources = plan_sources(session=session, requester=requester, user=user, book=book, now=now)
    resolved = resolve_plan(book, sources, default_anchor=user.created_at, now=now)
    balance = quota.ensure_balance(session=session, user_id=user.id, period=resolved.period, plan=resolved.plan)
    return Account(user=user, resolved=resolved, balance=balance,
                   active=active_counts(session=session, user_id=user.id))


def user_jobs(*, session: Session, user_id: int, limit: int = 10) -> list[tuple[Job, int]]:
    """The member's waiting and running jobs, oldest first, with each one's place in its queue."""
    jobs = session.execute(
        select(Job).where(Job.user_id == user_id, Job.state.in_(_ACTIVE)).order_by(Job.id).limit(limit)
    ).scalars()
    return [(job, jobs_db.queue_position(session=session, job=job) if job.state == JobState.QUEUED else 0)
            for job in jobs]


def usage_report(*, session: Session, user_id: int, book: PlanBook, now: datetime) -> dict[str, Any]:
    """What ``imagine admin usage`` and ``/admin usage`` show, as plain data (JSON-ready).

    The plan is the one of the member's current balance (the bot resolved it, roles included); a member
    the bot has not seen this period shows the plan their grants and subscriptions give.
    """
    user = session.get(User, user_id)
    if user is None:
        raise PlanError(f"User {user_id} has never used the bot.")
    balance = quota.current_balance(session=session, user_id=user_id, now=now)
    if balance is None:
        sources = plan_sources(session=session, requester=Requester(user_id), user=user, book=book, now=now)
        resolved = resolve_plan(book, sources, default_anchor=user.created_at, now=now)
        balance = quota.ensure_balance(session=session, user_id=user_id, period=resolved.period,
                                       plan=resolved.plan)
    states = {state.value: 0 for state in JobState}
    for state, count in session.execute(
        select(Job.state, func.count()).where(Job.user_id == user_id).group_by(Job.state)
    ):
        states[state] = int(count)
    period_jobs = session.execute(
        select(func.count(), func.coalesce(func.sum(Job.gpu_ms), 0))
        .where(Job.user_id == user_id, Job.period_start == balance.period_start)
    ).one()
    grants = list_grants(session=session, user_id=user_id, now=now)
    plan = book.plans.get(balance.plan)
    return {
        "user_id": user.id,
        "name": user.name,
        "plan": balance.plan,
        "plan_display_name": plan.display_name if plan else balance.plan,
        "period": {
            "start": balance.period_start.isoformat(),
            "end": balance.period_end.isoformat() if balance.period_end else None,
        },
        "fast_seconds": {
            "limit": balance.limit_ms / 1000,
            "used": balance.used_ms / 1000,
            "reserved": balance.reserved_ms / 1000,
            "left": balance.left_ms / 1000,
        },
        "fast_ms": {"limit": balance.limit_ms, "used": balance.used_ms, "reserved": balance.reserved_ms},
        "jobs": states,
        "period_jobs": int(period_jobs[0] or 0),
        "period_gpu_seconds": int(period_jobs[1] or 0) / 1000,
        "lane": user.lane,
        "grants": [
            {"plan": g.plan, "granted_at": g.created_at.isoformat(),
             "expires_at": g.expires_at.isoformat() if g.expires_at else None}
            for g in grants
        ],
        "banned": user.banned_at is not None,
        "ban_reason": user.ban_reason,
    }


def balances_of(*, session: Session, user_ids: Sequence[int]) -> list[Balance]:
    return list(session.execute(select(Balance).where(Balance.user_id.in_(user_ids))).scalars())
