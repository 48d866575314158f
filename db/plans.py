"""Where a member's plan comes from, and what they and the admins set: grants, role plans, Discord
entitlements, bans and member settings; plus :func:`load_account`, everything a command needs to know
about the member in one read.

Grants and bans have a scope: a server (``guild_id``), where a server's admins gave them, or every server
(``guild_id`` None), where an operator did. A member is on the grants and under the bans of the server they
use the bot in, and of every server; role plans are per server.

Like every ``db`` module these functions never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db import moderation as moderation_db
from db import quota
from db.models import Balance, Ban, Entitlement, Grant, Job, RolePlan, User
from db.queue import queue_position
from domain.errors import PlanError
from domain.moderation import PromptFilter
from domain.plans import Plan, PlanBook, PlanSource, ResolvedPlan, SourceKind, resolve_plan
from domain.spec import JobState, Lane

__all__ = [
    "Account",
    "EntitlementInfo",
    "Requester",
    "active_ban",
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
    #: The ban in force where the member asked (this server's, or a global one), if any.
    ban: Ban | None = None
    #: The content filter of the server they asked in (``db.moderation.prompt_filter``).
    prompt_filter: PromptFilter = field(default_factory=PromptFilter.build)

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
        return self.ban is not None

    @property
    def ban_reason(self) -> str | None:
        return self.ban.reason if self.ban is not None else None


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


def _in_scope(column: Any, guild_id: int | None) -> Any:
    """Rows of exactly this scope: one server's, or the global ones (``guild_id`` None)."""
    return column.is_(None) if guild_id is None else column == guild_id


def _applies_in(column: Any, guild_id: int | None) -> Any:
    """Rows in force in this server: its own and the global ones (in a DM: the global ones)."""
    return column.is_(None) if guild_id is None else (column.is_(None) | (column == guild_id))


def ban(*, session: Session, user_id: int, guild_id: int | None, by: int | None, reason: str | None) -> Ban:
    """Ban a member in one server (``guild_id``) or everywhere (None); replaces their ban of that scope."""
    touch_user(session=session, user_id=user_id)
    unban(session=session, user_id=user_id, guild_id=guild_id)
    row = Ban(user_id=user_id, guild_id=guild_id, banned_by=by, reason=(reason or None) and reason[:300])
    session.add(row)
    session.flush()
    session.refresh(row)
    return row


def unban(*, session: Session, user_id: int, guild_id: int | None) -> bool:
    """Lift a member's ban of this scope; False when there was none."""
    return bool(session.execute(
        update(Ban).where(Ban.user_id == user_id, _in_scope(Ban.guild_id, guild_id), Ban.lifted_at.is_(None))
        .values(lifted_at=func.now()).returning(Ban.id)
    ).all())


def active_ban(*, session: Session, user_id: int, guild_id: int | None) -> Ban | None:
    """The ban that keeps the member from using the bot in ``guild_id`` (a global one first), or None."""
    return session.execute(
        select(Ban).where(Ban.user_id == user_id, _applies_in(Ban.guild_id, guild_id), Ban.lifted_at.is_(None))
        .order_by(Ban.guild_id.is_not(None), Ban.id.desc()).limit(1)
    ).scalar_one_or_none()


# -- where plans come from ---------------------------------------------------------------------------------


def grant_plan(
    *, session: Session, user_id: int, plan: str, book: PlanBook, granted_by: int | None,
    expires_at: datetime | None, guild_id: int | None = None,
) -> Grant:
    """Give a member ``plan`` until ``expires_at`` (None: until revoked), in one server (``guild_id``) or
    everywhere (None). Replaces their earlier grant of the same scope."""
    book.get(plan)  # raises PlanError for an unknown plan
    touch_user(session=session, user_id=user_id)
    revoke_grants(session=session, user_id=user_id, guild_id=guild_id)
    grant = Grant(user_id=user_id, guild_id=guild_id, plan=book.get(plan).name, granted_by=granted_by,
                  expires_at=expires_at)
    session.add(grant)
    session.flush()
    session.refresh(grant)
    return grant


def revoke_grants(*, session: Session, user_id: int, guild_id: int | None = None) -> int:
    """End a member's active grants of this scope (a server's, or the global ones) now; returns how many."""
    return len(session.execute(
        update(Grant)
        .where(Grant.user_id == user_id, _in_scope(Grant.guild_id, guild_id), Grant.revoked_at.is_(None),
               Grant.expires_at.is_(None) | (Grant.expires_at > func.now()))
        .values(revoked_at=func.now())
        .returning(Grant.id)
    ).all())


def list_grants(*, session: Session, user_id: int, now: datetime, guild_id: int | None = None,
                all_servers: bool = False) -> list[Grant]:
    """A member's grants in force at ``now`` in ``guild_id`` (its own and the global ones), or in any
    server (``all_servers``: what an operator sees)."""
    scope = true() if all_servers else _applies_in(Grant.guild_id, guild_id)
    return list(session.execute(
        select(Grant)
        .where(Grant.user_id == user_id, scope, Grant.revoked_at.is_(None),
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
    for grant in list_grants(session=session, user_id=user.id, now=now, guild_id=requester.guild_id):
        until = f" until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else ""
        where = " here" if grant.guild_id is not None else ""
        sources.append(PlanSource(grant.plan, SourceKind.GRANT, grant.created_at, f"granted{where}{until}",
                                  grant.expires_at))
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
    balance exists (with the plan's fast time); with the ban and the content filter of where they asked."""
    user = touch_user(session=session, user_id=requester.user_id, name=requester.name or None)
    for entitlement in requester.entitlements:
        record_entitlement(session=session, entitlement=entitlement)
    sources = plan_sources(session=session, requester=requester, user=user, book=book, now=now)
    resolved = resolve_plan(book, sources, default_anchor=user.created_at, now=now)
    balance = quota.ensure_balance(session=session, user_id=user.id, period=resolved.period, plan=resolved.plan)
    return Account(user=user, resolved=resolved, balance=balance,
                   active=active_counts(session=session, user_id=user.id),
                   ban=active_ban(session=session, user_id=user.id, guild_id=requester.guild_id),
                   prompt_filter=moderation_db.prompt_filter(session=session, guild_id=requester.guild_id))


def user_jobs(*, session: Session, user_id: int, limit: int = 10) -> list[tuple[Job, int]]:
    """The member's waiting and running jobs, oldest first, with each one's place in its queue."""
    jobs = session.execute(
        select(Job).where(Job.user_id == user_id, Job.state.in_(_ACTIVE)).order_by(Job.id).limit(limit)
    ).scalars()
    return [(job, queue_position(session=session, job=job) if job.state == JobState.QUEUED else 0)
            for job in jobs]


def usage_report(
    *, session: Session, user_id: int, book: PlanBook, now: datetime, requester: Requester | None = None,
) -> dict[str, Any]:
    """What ``imagine admin usage`` and ``/admin usage`` show, as plain data (JSON-ready).

    Without ``requester`` (an operator): everywhere, the plan of the member's current balance (the bot
    resolved it, roles included). With one (a server's admin): that server only (``requester.guild_id``,
    the member's roles there): the plan they have there, their jobs there, the grants and ban in force there.
    """
    user = session.get(User, user_id)
    if user is None:
        raise PlanError(f"User {user_id} has never used the bot.")
    guild_id = requester.guild_id if requester is not None else None
    balance = quota.current_balance(session=session, user_id=user_id, now=now) if requester is None else None
    if balance is not None:
        # A grant (or subscription) given since the bot last resolved the member's plan counts at once, as it
        # will at their next command; a role plan the balance holds is kept (its rank is not lowered here).
        sources = plan_sources(session=session, requester=Requester(user_id), user=user, book=book, now=now)
        resolved = resolve_plan(book, sources, default_anchor=user.created_at, now=now)
        held = book.plans.get(balance.plan)
        if held is None or resolved.plan.rank > held.rank:
            balance = quota.ensure_balance(session=session, user_id=user_id, period=resolved.period,
                                           plan=resolved.plan)
    plan_name = balance.plan if balance is not None else None
    if balance is None:
        sources = plan_sources(session=session, requester=requester or Requester(user_id), user=user, book=book,
                               now=now)
        resolved = resolve_plan(book, sources, default_anchor=user.created_at, now=now)
        plan_name = resolved.plan.name  # the plan they have here (a shared balance may show another's)
        balance = quota.get_balance(session=session, user_id=user_id, period_start=resolved.period.start)
        if balance is None:
            balance = quota.ensure_balance(session=session, user_id=user_id, period=resolved.period,
                                           plan=resolved.plan)
    assert plan_name is not None
    mine = [Job.user_id == user_id] + ([Job.guild_id == guild_id] if guild_id is not None else [])
    states = {state.value: 0 for state in JobState}
    for state, count in session.execute(select(Job.state, func.count()).where(*mine).group_by(Job.state)):
        states[state] = int(count)
    period_jobs = session.execute(
        select(func.count(), func.coalesce(func.sum(Job.gpu_ms), 0))
        .where(*mine, Job.period_start == balance.period_start)
    ).one()
    grants = list_grants(session=session, user_id=user_id, now=now, guild_id=guild_id, all_servers=requester is None)
    ban_row = active_ban(session=session, user_id=user_id, guild_id=guild_id)
    plan = book.plans.get(plan_name)
    return {
        "user_id": user.id,
        "name": user.name,
        "guild_id": str(guild_id) if guild_id is not None else None,
        "plan": plan_name,
        "plan_display_name": plan.display_name if plan else plan_name,
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
             "expires_at": g.expires_at.isoformat() if g.expires_at else None,
             "guild_id": str(g.guild_id) if g.guild_id is not None else None}
            for g in grants
        ],
        "banned": ban_row is not None,
        "ban_reason": ban_row.reason if ban_row is not None else None,
    }


def balances_of(*, session: Session, user_ids: Sequence[int]) -> list[Balance]:
    return list(session.execute(select(Balance).where(Balance.user_id.in_(user_ids))).scalars())
