"""Moderation rows: a server's filter terms and image policy, the audit log of what was blocked, appeals,
and who may see a job. The rules themselves are in :mod:`domain.moderation`.

Like every ``db`` module these functions never commit; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import FilterTerm, ImagePolicy, Job, ModerationEvent
from domain.moderation import ImageAction, PromptFilter, image_action, may_see_job

__all__ = [
    "EVENT_KINDS",
    "Appeal",
    "appeal",
    "filter_terms",
    "job_visible_to",
    "list_events",
    "prompt_filter",
    "record_event",
    "remove_filter_term",
    "resolve_image_action",
    "set_filter_term",
    "set_image_policy",
]

EVENT_KINDS = ("prompt_blocked", "image_blocked", "image_spoiler")
#: The prompt kept in the audit log (enough for an admin to judge an appeal).
_PROMPT_KEPT = 1000
#: ``image_policies.channel_id`` of the server-wide scopes.
_NO_CHANNEL = 0


# -- the prompt filter -------------------------------------------------------------------------------------


def filter_terms(*, session: Session, guild_id: int) -> list[FilterTerm]:
    """A server's additions to and exceptions from the default list, by kind and term."""
    return list(session.execute(
        select(FilterTerm).where(FilterTerm.guild_id == guild_id).order_by(FilterTerm.kind, FilterTerm.term)
    ).scalars())


def prompt_filter(*, session: Session, guild_id: int | None) -> PromptFilter:
    """The filter of a server (the defaults alone in a DM)."""
    rows = filter_terms(session=session, guild_id=guild_id) if guild_id is not None else []
    return PromptFilter.build(additions=[r.shown for r in rows if r.kind == "block"],
                              exceptions=[r.shown for r in rows if r.kind == "allow"])


def set_filter_term(*, session: Session, guild_id: int, term: str, shown: str, kind: str, by: int | None) -> None:
    """Block (``kind`` block) or let through (allow) a normalised ``term`` in a server; replaces its other kind."""
    stmt = insert(FilterTerm).values(guild_id=guild_id, term=term, shown=shown[:80], kind=kind, set_by=by)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[FilterTerm.guild_id, FilterTerm.term],
        set_={"shown": stmt.excluded.shown, "kind": kind, "set_by": by, "created_at": func.now()},
    ))


def remove_filter_term(*, session: Session, guild_id: int, term: str) -> bool:
    """Forget a server's addition or exception; False when it had none for ``term``."""
    return bool(session.execute(
        delete(FilterTerm).where(FilterTerm.guild_id == guild_id, FilterTerm.term == term).returning(FilterTerm.term)
    ).all())


# -- the image policy --------------------------------------------------------------------------------------


def set_image_policy(*, session: Session, guild_id: int, scope: str, channel_id: int | None, action: ImageAction,
                     by: int | None) -> None:
    """What a server does with flagged images in its ordinary channels (scope ``server``), its age-restricted
    ones (``age_restricted``) or one channel (``channel``)."""
    channel = channel_id if scope == "channel" and channel_id is not None else _NO_CHANNEL
    stmt = insert(ImagePolicy).values(guild_id=guild_id, scope=scope, channel_id=channel, action=action.value,
                                      set_by=by)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[ImagePolicy.guild_id, ImagePolicy.scope, ImagePolicy.channel_id],
        set_={"action": action.value, "set_by": by, "updated_at": func.now()},
    ))


def resolve_image_action(*, session: Session, guild_id: int | None, channel_id: int | None,
                         age_restricted: bool) -> ImageAction:
    """The action for a new job's flagged images, from the policies of its server and channel."""
    found: dict[tuple[str, int], ImageAction] = {}
    if guild_id is not None:
        for scope, channel, action in session.execute(
            select(ImagePolicy.scope, ImagePolicy.channel_id, ImagePolicy.action)
            .where(ImagePolicy.guild_id == guild_id, ImagePolicy.channel_id.in_([_NO_CHANNEL, channel_id or 0]))
        ):
            found[(scope, channel)] = ImageAction(action)
    return image_action(
        channel=found.get(("channel", channel_id or 0)) if channel_id else None,
        server=found.get(("server", _NO_CHANNEL)),
        server_age_restricted=found.get(("age_restricted", _NO_CHANNEL)),
        age_restricted=age_restricted,
    )


def image_policies(*, session: Session, guild_id: int) -> list[ImagePolicy]:
    return list(session.execute(
        select(ImagePolicy).where(ImagePolicy.guild_id == guild_id).order_by(ImagePolicy.scope, ImagePolicy.channel_id)
    ).scalars())


# -- the audit log and appeals -----------------------------------------------------------------------------


def record_event(
    *, session: Session, kind: str, user_id: int, guild_id: int | None, channel_id: int | None,
    prompt: str = "", term: str | None = None, interaction_id: int | None = None, job_id: int | None = None,
) -> int:
    """Write one audit row; returns its id. A second row for the same interaction is not written."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown moderation event {kind!r}")
    stmt = insert(ModerationEvent).values(
        kind=kind, user_id=user_id, guild_id=guild_id, channel_id=channel_id, prompt=prompt[:_PROMPT_KEPT],
        term=(term or None) and term[:80], interaction_id=interaction_id, job_id=job_id,
    )
    if interaction_id is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[ModerationEvent.interaction_id])
    inserted = session.execute(stmt.returning(ModerationEvent.id)).scalar_one_or_none()
    if inserted is not None:
        return int(inserted)
    return int(session.execute(
        select(ModerationEvent.id).where(ModerationEvent.interaction_id == interaction_id)
    ).scalar_one())


@dataclass(frozen=True, slots=True)
class Appeal:
    """The outcome of an Appeal click: ``recorded`` now, ``already`` appealed, ``not_yours``, or ``gone``."""

    outcome: str
    event: ModerationEvent | None = None


def appeal(*, session: Session, interaction_id: int, user_id: int) -> Appeal:
    """Record the member's appeal of the prompt refused in ``interaction_id`` (once)."""
    event = session.execute(
        select(ModerationEvent).where(ModerationEvent.interaction_id == interaction_id).with_for_update()
    ).scalar_one_or_none()
    if event is None:
        return Appeal("gone")
    if event.user_id != user_id:
        return Appeal("not_yours", event)
    if event.appealed_at is not None:
        return Appeal("already", event)
    session.execute(update(ModerationEvent).where(ModerationEvent.id == event.id).values(appealed_at=func.now()))
    session.refresh(event)
    return Appeal("recorded", event)


def list_events(*, session: Session, guild_id: int | None, limit: int = 15, appeals_only: bool = False,
                before: datetime | None = None) -> list[ModerationEvent]:
    """The newest audit rows of a server (``guild_id``), or of every server (None: an operator), newest first."""
    query = select(ModerationEvent)
    if guild_id is not None:
        query = query.where(ModerationEvent.guild_id == guild_id)
    if appeals_only:
        query = query.where(ModerationEvent.appealed_at.is_not(None))
    if before is not None:
        query = query.where(ModerationEvent.created_at < before)
    return list(session.execute(query.order_by(ModerationEvent.id.desc()).limit(limit)).scalars())


# -- who may see a job -------------------------------------------------------------------------------------


def job_visible_to(*, session: Session, job_id: int, user_id: int) -> bool:
    """Whether ``user_id`` may be shown job ``job_id`` (``/show``, a recipe, a gallery): it exists, and
    it is not a stealth job of someone else (:func:`domain.moderation.may_see_job`)."""
    row = session.execute(select(Job.user_id, Job.stealth).where(Job.id == job_id)).one_or_none()
    return row is not None and may_see_job(owner_id=row.user_id, stealth=row.stealth, viewer_id=user_id)
