"""The job repository: submit, claim, heartbeat, progress, finish, reap, deliver.

Every state change is one conditional UPDATE, so two workers (or a worker and the reaper) can never both
win: a redelivered Celery message whose job is already running elsewhere finds no row and is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from db import quota
from db.models import Guild, Image, Job, User
from db.moderation import resolve_image_action
from domain.actions import DOUBLE_CLICK_S
from domain.spec import JobKind, JobSpec, JobState, Lane

__all__ = [
    "NOTIFY_CHANNEL",
    "NewJob",
    "by_idem_key",
    "claim",
    "delivery_failed",
    "delivery_retry",
    "finish",
    "forget_lost_messages",
    "forget_token",
    "get",
    "get_image",
    "give_up",
    "given_up_error",
    "hand_back",
    "heartbeat",
    "held_back",
    "hold",
    "images_of",
    "limited_lane",
    "mark_delivered",
    "mark_published",
    "next_held",
    "notify",
    "owner_of",
    "publishable",
    "record_progress",
    "request_cancel",
    "requeue",
    "same_click",
    "stale",
    "startable",
    "submit",
    "undelivered",
    "upscale_of",
    "upscaled_tiles",
]

#: Postgres NOTIFY channel on which workers announce job changes (payload: the job id).
NOTIFY_CHANNEL = "job_events"


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the bot knows when a user asks for a job."""

    user_id: int
    user_name: str
    kind: JobKind
    spec: JobSpec
    lane: Lane
    queue: str
    idem_key: str
    prompt: str = ""
    guild_id: int | None = None
    guild_name: str = ""
    channel_id: int | None = None
    parent_image_id: int | None = None
    estimated_ms: int = 0
    interaction_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: datetime | None = None
    message_id: int | None = None
    #: The interaction's attachment_size_limit: delivery re-encodes images to fit it.
    upload_limit: int | None = None
    # Quota (set by ``db.submission``): the balance period, the fast time held, the plan's running limit.
    period_start: datetime | None = None
    reserved_ms: int = 0
    max_running: int | None = None
    stealth: bool = False
    #: The button click this job comes from (``button:<message id>:<custom_id>``); with ``interaction_id``
    #: it makes a second click of that member within a few seconds return this job (see :func:`same_click`).
    click_key: str | None = None
    #: The channel is age-restricted (its image policy may differ: ``db.moderation.resolve_image_action``).
    age_restricted: bool = False


def _ensure_user_and_guild(session: Session, new: NewJob) -> None:
    session.execute(
        insert(User).values(id=new.user_id, name=new.user_name[:100]).on_conflict_do_update(
            index_elements=[User.id], set_={"name": new.user_name[:100]}
        )
    )
    if new.guild_id is not None:
        session.execute(
            insert(Guild).values(id=new.guild_id, name=new.guild_name[:100]).on_conflict_do_nothing()
        )


def submit(*, session: Session, new: NewJob) -> tuple[Job, bool]:
    """Insert a queued job, or return the one already made with the same idempotency key.

    Returns ``(job, created)``. The caller commits, then publishes the Celery task if ``created``.
    """
    _ensure_user_and_guild(session, new)
    values: dict[str, Any] = {
        "user_id": new.user_id,
        "guild_id": new.guild_id,
        "channel_id": new.channel_id,
        "kind": new.kind.value,
        "state": JobState.QUEUED.value,
        "spec": new.spec.to_dict(),
        "prompt": new.prompt,
        "model": new.spec.model,
        "lane": new.lane.value,
        "queue": new.queue,
        "idem_key": new.idem_key,
        "parent_image_id": new.parent_image_id,
        "estimated_ms": new.estimated_ms,
        "interaction_id": new.interaction_id,
        "interaction_token": new.interaction_token,
        "token_expires_at": new.token_expires_at,
        "message_id": new.message_id,
        "upload_limit": new.upload_limit,
        "period_start": new.period_start,
        "reserved_ms": new.reserved_ms,
        "max_running": new.max_running,
        "stealth": new.stealth,
        "image_action": resolve_image_action(session=session, guild_id=new.guild_id, channel_id=new.channel_id,
                                             age_restricted=new.age_restricted).value,
    }
    inserted = session.execute(
        insert(Job).values(**values).on_conflict_do_nothing(constraint="uq_jobs_user_idem").returning(Job.id)
    ).scalar_one_or_none()
    if inserted is not None:
        return session.get_one(Job, inserted), True
    existing = by_idem_key(session=session, user_id=new.user_id, idem_key=new.idem_key)
    assert existing is not None  # the conflict was on this key
    return existing, False


def get(*, session: Session, job_id: int) -> Job | None:
    """The job with this id, or None."""
    return session.get(Job, job_id)


def images_of(*, session: Session, job_id: int) -> list[Image]:
    """The images of a job, by index."""
    return list(session.execute(select(Image).where(Image.job_id == job_id).order_by(Image.index)).scalars())


def get_image(*, session: Session, image_id: int) -> Image | None:
    """The image with this id, or None."""
    return session.get(Image, image_id)


def by_idem_key(*, session: Session, user_id: int, idem_key: str) -> Job | None:
    """The job this member already asked for with this idempotency key, or None."""
    return session.execute(
        select(Job).where(Job.user_id == user_id, Job.idem_key == idem_key)
    ).scalar_one_or_none()


#: An UPDATE that returns the whole row as the ``Job`` (one round trip, not the UPDATE and two SELECTs of
#: ``get`` + ``refresh``): loaded over whatever this session already holds of it.
_RETURNING_ROW: dict[str, Any] = {"synchronize_session": False, "populate_existing": True}


def _lost(stale_after: timedelta, dead_owners: Sequence[str]) -> Any:
    """A running job whose owner stopped heartbeating, or is known to be dead."""
    lost = Job.heartbeat_at < func.now() - stale_after
    if dead_owners:
        lost = lost | Job.owner.in_(list(dead_owners))
    return (Job.state == JobState.RUNNING.value) & lost


#: The member's other jobs, in the running-limit subqueries. Made once: adapting a fresh ``aliased(Job)``'s
#: columns cost ~10 ms of CPU per claim (profiled on the no-op worker).
_OTHER = aliased(Job, name="other")


def _live_running(stale_after: timedelta) -> Any:
    """How many other jobs of the job's member run in its lane now (a correlated subquery on ``Job``)."""
    other = _OTHER
    return (
        select(func.count()).select_from(other)
        .where(other.user_id == Job.user_id, other.lane == Job.lane, other.id != Job.id,
               other.state == JobState.RUNNING.value, other.heartbeat_at >= func.now() - stale_after)
        .scalar_subquery()
    )


def _older_waiting() -> Any:
    """How many older jobs of the job's member wait in its queue, its model and lane (a correlated subquery
    on ``Job``). Per queue, not per lane: a job waiting for a busy (or absent) model's workers does not hold
    back the member's jobs on another model whose workers are free."""
    other = _OTHER
    return (
        select(func.count()).select_from(other)
        .where(other.user_id == Job.user_id, other.queue == Job.queue, other.id < Job.id,
               other.state == JobState.QUEUED.value, other.cancel_requested.is_(False))
        .scalar_subquery()
    )


def _has_slot(stale_after: timedelta) -> Any:
    """True when the job may start within its member's running limit for its lane: their live running
    jobs in the lane, plus their older jobs waiting in its queue (which go first: a member's jobs of a
    queue start in the order they were asked), leave it a slot."""
    return Job.max_running.is_(None) | (_live_running(stale_after) + _older_waiting() < Job.max_running)


def _lock_member(session: Session, user_id: int) -> None:
    """The member's row lock, under which their running limit is counted (FOR NO KEY UPDATE, like
    submit's: foreign-key checks (FOR KEY SHARE) pass it, no deadlock)."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


def _snowflake_ms(snowflake: int) -> int:
    return snowflake >> 22


def same_click(*, session: Session, user_id: int, click_key: str, interaction_id: int) -> Job | None:
    """The job this member made from the same button less than :data:`DOUBLE_CLICK_S` before (or after) the
    click ``interaction_id`` (Discord's clock: a snowflake holds its creation time): a double click.
    Their idempotency keys are ``<click_key>:<interaction id>``."""
    window = int(DOUBLE_CLICK_S * 1000) << 22
    return session.execute(
        select(Job)
        .where(Job.user_id == user_id, Job.idem_key.startswith(click_key + ":", autoescape=True),
               Job.interaction_id.between(interaction_id - window, interaction_id + window))
        .order_by(Job.id)
        .limit(1)
    ).scalar_one_or_none()


def upscale_of(*, session: Session, user_id: int, image_id: int, mode: str | None) -> Job | None:
    """This member's upscale of this image with this mode that is waiting, running or done, if any."""
    return session.execute(
        select(Job)
        .where(Job.user_id == user_id, Job.parent_image_id == image_id, Job.kind == JobKind.UPSCALE.value,
               Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value, JobState.SUCCEEDED.value]),
               Job.spec["upscale_mode"].astext == (mode or ""))
        .order_by(Job.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def upscaled_tiles(*, session: Session, job_id: int) -> set[int]:
    """The tiles (1-based) of a grid that someone has asked to upscale (not failed or cancelled)."""
    rows = session.execute(
        select(Image.index)
        .join(Job, Job.parent_image_id == Image.id)
        .where(Image.job_id == job_id, Job.kind == JobKind.UPSCALE.value,
               Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value, JobState.SUCCEEDED.value]))
        .distinct()
    ).scalars()
    return {index + 1 for index in rows}


def claim(
    *,
    session: Session,
    job_id: int,
    owner: str,
    stale_after: timedelta,
    dead_owners: Sequence[str] = (),
    max_attempts: int | None = None,
) -> Job | None:
    """Take a queued job, or a running one whose owner stopped heartbeating or is known dead.

    ``dead_owners`` lets a worker take over at once from a process it knows has died (a killed prefork
    child on the same host) instead of waiting for the heartbeat to go stale. A job that already had
    ``max_attempts`` claims is not taken (:func:`give_up` ends it), whatever redelivered its message.
    A job whose member runs their plan's limit in its lane, or has an older job waiting in its queue, is not
    taken either (:func:`held_back`). None: not claimed.
    """
    now = func.now()
    conditions = [
        Job.id == job_id,
        Job.cancel_requested.is_(False),
        (Job.state == JobState.QUEUED.value) | _lost(stale_after, dead_owners),
    ]
    if max_attempts is not None:
        conditions.append(Job.attempts < max_attempts)
    limit = session.execute(select(Job.user_id, Job.max_running).where(Job.id == job_id)).one_or_none()
    if limit is not None and limit.max_running is not None:
        # The plan's running limit for the job's lane: lock the member's row so two workers cannot both
        # start their last allowed job, then count their other live running jobs in that lane. A waiting
        # job of theirs that is older goes first, so a member's jobs start in the order they were asked.
        _lock_member(session, limit.user_id)
        # A running job taken over from a lost worker already had its turn: only its slot counts.
        conditions.append(_has_slot(stale_after) | (
            (Job.state == JobState.RUNNING.value) & (_live_running(stale_after) < Job.max_running)))
    return session.execute(
        update(Job)
        .where(*conditions)
        .values(
            state=JobState.RUNNING.value,
            owner=owner,
            heartbeat_at=now,
            started_at=now,
            attempts=Job.attempts + 1,
            progress_step=0,
            published_at=None,
        )
        .returning(Job)
        .execution_options(**_RETURNING_ROW)
    ).scalar_one_or_none()


def give_up(
    *, session: Session, job_id: int, stale_after: timedelta, dead_owners: Sequence[str] = (), max_attempts: int
) -> Job | None:
    """Fail (and so refund) a job that used up its attempts and would otherwise be taken again: queued,
    or running with its owner gone. Returns the failed job, or None when it is not such a job."""
    exhausted = session.execute(
        select(Job.id, Job.owner).where(
            Job.id == job_id,
            Job.attempts >= max_attempts,
            (Job.state == JobState.QUEUED.value) | _lost(stale_after, dead_owners),
        ).with_for_update()
    ).one_or_none()
    if exhausted is None:
        return None
    return finish(session=session, job_id=job_id, state=JobState.FAILED, owner=None,
                  error=given_up_error(max_attempts))


def given_up_error(attempts: int) -> str:
    """What the member reads when their job used up its attempts (every one ended with its worker gone)."""
    return (f"This job was interrupted {attempts} times (its worker stopped each time), so it was given up. "
            "Nothing was charged. Try again; if it keeps happening, try a smaller --ar or fewer --steps.")


def owner_of(*, session: Session, job_id: int) -> str | None:
    """Who runs the job now (None when nobody does)."""
    return session.execute(
        select(Job.owner).where(Job.id == job_id, Job.state == JobState.RUNNING.value)
    ).scalar_one_or_none()


def heartbeat(*, session: Session, job_id: int, owner: str) -> bool:
    """Refresh the heartbeat; False when the job is no longer ours (reaped, cancelled)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.owner == owner, Job.state == JobState.RUNNING.value)
        .values(heartbeat_at=func.now())
        .returning(Job.cancel_requested)
    ).scalar_one_or_none()
    return result is not None and not result


def record_progress(
    *, session: Session, job_id: int, owner: str, step: int, total: int, preview_key: str | None = None
) -> bool:
    """Store progress (and heartbeat). Returns False when the job should stop (cancelled or lost)."""
    values: dict[str, Any] = {"progress_step": step, "progress_total": total, "heartbeat_at": func.now()}
    if preview_key is not None:
        values["preview_key"] = preview_key
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.owner == owner, Job.state == JobState.RUNNING.value)
        .values(**values)
        .returning(Job.cancel_requested)
    ).scalar_one_or_none()
    return result is not None and not result


def finish(
    *,
    session: Session,
    job_id: int,
    state: JobState,
    owner: str | None,
    gpu_ms: int | None = None,
    result_key: str | None = None,
    error: str | None = None,
    images: list[dict[str, Any]] | None = None,
    upscale_method: str | None = None,
    flagged: bool = False,
) -> Job | None:
    """Move a running job to a terminal state, once. ``owner=None`` finishes regardless of owner (reaper)."""
    assert state.is_terminal
    conditions = [Job.id == job_id, Job.state.in_([JobState.RUNNING.value, JobState.QUEUED.value])]
    if owner is not None:
        conditions += [Job.owner == owner, Job.state == JobState.RUNNING.value]
    job = session.execute(
        update(Job)
        .where(*conditions)
        .values(
            state=state.value,
            gpu_ms=gpu_ms,
            result_key=result_key,
            error=error,
            upscale_method=upscale_method,
            flagged=flagged,
            preview_key=None,  # the worker deletes its last preview: the result replaces it
            finished_at=func.now(),
        )
        .returning(Job)
        .execution_options(**_RETURNING_ROW)
    ).scalar_one_or_none()
    if job is None:
        return None
    for image in images or ():
        session.add(Image(job_id=job_id, **image))
    # Charge the GPU time (or refund the reservation) in the same transaction, once.
    quota.settle(session=session, job=job)
    return job


def request_cancel(*, session: Session, job_id: int) -> JobState | None:
    """Cancel a job for its member: a queued one at once, a running one at its worker's next step.

    A queued job becomes cancelled here, and its reservation is refunded in the same transaction. A running
    job gets ``cancel_requested``: its worker notices it (step callback or heartbeat), stops the pipeline and
    finishes the job as cancelled, which refunds it then. Returns ``CANCELLED`` (done now), ``RUNNING`` (asked;
    the worker will stop it), or None when the job has already ended or does not exist. Each is one
    conditional UPDATE, so a cancel racing a claim or a finish is applied at most once.
    """
    queued = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.QUEUED.value)
        .values(state=JobState.CANCELLED.value, cancel_requested=True, owner=None, preview_key=None,
                finished_at=func.now())
        .returning(Job)
        .execution_options(**_RETURNING_ROW)
    ).scalar_one_or_none()
    if queued is not None:
        quota.settle(session=session, job=queued)
        return JobState.CANCELLED
    running = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING.value)
        .values(cancel_requested=True)
        .returning(Job.id)
    ).scalar_one_or_none()
    return JobState.RUNNING if running is not None else None


def held_back(*, session: Session, job_id: int) -> bool:
    """True when a job that could not be claimed is still waiting: its member's running limit for its
    lane is reached, or an older job of theirs waits there. See :func:`hold`."""
    return session.execute(
        select(Job.id).where(Job.id == job_id, Job.state == JobState.QUEUED.value, Job.cancel_requested.is_(False))
    ).first() is not None


def hold(*, session: Session, job_id: int) -> None:
    """Record that a held-back job has no message in the broker any more (its worker acks it): it waits
    for one of its member's jobs in that lane to end (:func:`next_held`), not re-sending itself."""
    session.execute(
        update(Job).where(Job.id == job_id, Job.state == JobState.QUEUED.value)
        .values(published_at=None, broker_epoch=None)
    )


def limited_lane(*, session: Session, job_id: int) -> tuple[int, str] | None:
    """``(member, lane)`` of a job whose plan limits how many of the member's jobs run in its lane; None
    when it has no such limit (or there is no such job)."""
    row = session.execute(
        select(Job.user_id, Job.lane).where(Job.id == job_id, Job.max_running.is_not(None))
    ).one_or_none()
    return None if row is None else (row.user_id, row.lane)


def next_held(*, session: Session, user_id: int, lane: str) -> Job | None:
    """The held job of a member in a lane to publish now that one of their jobs there ended: the oldest of
    their jobs with no message that heads its queue (a job with an older one waiting in its queue goes after
    it; a queue whose head is in transit already has its next job on the way).

    Under the member's row lock, like the claim that held it, so a job held back just as the slot freed
    is seen here; and under the job's row lock, so the reaper does not publish it at the same time. The
    caller publishes it (:func:`mark_published`) before commit.
    """
    _lock_member(session, user_id)
    # The oldest waiting job of each of the member's queues in the lane (none older waits there), read first:
    # as one statement with the lookup below, a generic plan on stale statistics re-ran this per row of jobs.
    heads = list(session.execute(
        select(func.min(Job.id))
        .where(Job.user_id == user_id, Job.lane == lane, Job.state == JobState.QUEUED.value,
               Job.cancel_requested.is_(False))
        .group_by(Job.queue)
    ).scalars())
    if not heads:
        return None
    return session.execute(
        select(Job).where(Job.id.in_(heads), Job.state == JobState.QUEUED.value, Job.published_at.is_(None))
        .order_by(Job.id).limit(1).with_for_update()
    ).scalar_one_or_none()


def startable(*, session: Session, job_ids: Sequence[int], stale_after: timedelta) -> list[int]:
    """Of these jobs, those to publish now: queued with no message yet, and free to start (no running
    limit, or their member has a free slot in the lane and no older job waiting in its queue). The others wait
    with no message until one of their member's jobs there ends (:func:`next_held`) or the reaper sees a
    free slot (:func:`publishable`), so a member's backlog holds no message per job it cannot start yet.

    Under the members' row locks, like the claim and :func:`next_held`, so a slot freed at the same time
    is seen by one side or the other; and under the jobs' row locks, so nothing else publishes them now.
    """
    if not job_ids:
        return []
    members = session.execute(
        select(Job.user_id).where(Job.id.in_(list(job_ids)), Job.max_running.is_not(None)).distinct()
    ).scalars()
    for user_id in sorted(members):  # one order, no deadlock between two publishers
        _lock_member(session, user_id)
    free = _has_slot(stale_after)
    return list(session.execute(
        select(Job.id)
        .where(Job.id.in_(list(job_ids)), Job.state == JobState.QUEUED.value, Job.published_at.is_(None),
               Job.cancel_requested.is_(False), free)
        .order_by(Job.id)
        .with_for_update(of=Job)
    ).scalars())


def mark_published(*, session: Session, job_ids: Sequence[int], epoch: str | None) -> None:
    """Record that each of these queued jobs has a message in the broker of this epoch."""
    if job_ids:
        session.execute(
            update(Job).where(Job.id.in_(list(job_ids)), Job.state == JobState.QUEUED.value)
            .values(published_at=func.now(), broker_epoch=epoch)
        )


def forget_lost_messages(*, session: Session, epoch: str) -> int:
    """Queued jobs published into a broker that has since lost its data (its epoch changed: flushed, or
    restarted without persistence) have no message: mark them so. Returns how many."""
    return len(session.execute(
        update(Job)
        .where(Job.state == JobState.QUEUED.value, Job.published_at.is_not(None),
               Job.broker_epoch.is_distinct_from(epoch))
        .values(published_at=None, broker_epoch=None)
        .returning(Job.id)
    ).all())


def publishable(*, session: Session, older_than: timedelta, stale_after: timedelta, limit: int = 500) -> list[Job]:
    """Queued jobs with no message in the broker that a worker could start now, oldest first.

    Their message was never sent (the broker was down at submit), was lost (:func:`forget_lost_messages`),
    or they were held back and their member now has a free slot. ``older_than`` spares jobs whose
    publisher is still about to stamp them.
    """
    now = func.now()
    free = _has_slot(stale_after)
    return list(
        session.execute(
            select(Job)
            .where(Job.state == JobState.QUEUED.value, Job.published_at.is_(None), Job.cancel_requested.is_(False),
                   Job.queued_at < now - older_than, free)
            .order_by(Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def notify(*, session: Session, job_id: int) -> None:
    """Wake the bot (delivered on commit)."""
    session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": NOTIFY_CHANNEL, "payload": str(job_id)})


def requeue(*, session: Session, job_id: int) -> None:
    """Put a lost running job back in the queue, with no message (the caller publishes one)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
        .values(state=JobState.QUEUED.value, owner=None, published_at=None, broker_epoch=None)
    )


def hand_back(*, session: Session, job_id: int, owner: str) -> bool:
    """A stopping worker gives its running job back: queued again, with no message (the reaper publishes
    it), and the attempt not counted. False when the job is no longer ours."""
    return session.execute(
        update(Job)
        .where(Job.id == job_id, Job.owner == owner, Job.state == JobState.RUNNING.value)
        .values(state=JobState.QUEUED.value, owner=None, published_at=None, broker_epoch=None,
                attempts=Job.attempts - 1, progress_step=0)
        .returning(Job.id)
    ).scalar_one_or_none() is not None


def stale(*, session: Session, heartbeat_for: timedelta, limit: int = 100) -> list[Job]:
    """Running jobs whose worker stopped heartbeating (it died, or lost the database for that long)."""
    return list(
        session.execute(
            select(Job)
            .where(Job.state == JobState.RUNNING.value, Job.heartbeat_at < func.now() - heartbeat_for)
            .order_by(Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def live_counts(*, session: Session) -> list[tuple[str, str, str, int]]:
    """``(model, lane, state, count)`` of the queued and running jobs: the queue depth (the
    ``(state, queued_at)`` index serves it)."""
    rows = session.execute(
        select(Job.model, Job.lane, Job.state, func.count())
        .where(Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]))
        .group_by(Job.model, Job.lane, Job.state)
    ).all()
    return [(model, lane, state, count) for model, lane, state, count in rows]


def undelivered(*, session: Session, limit: int = 50) -> list[Job]:
    """Terminal jobs whose final state is not yet shown on Discord and whose retry is due: the least
    tried first, so a delivery that keeps failing never hides newer ones."""
    return list(
        session.execute(
            select(Job)
            .where(
                Job.state.in_([s.value for s in JobState if s.is_terminal]),
                Job.delivered_state.is_distinct_from(Job.state),
                Job.delivery_retry_at.is_(None) | (Job.delivery_retry_at <= func.now()),
            )
            .order_by(Job.delivery_attempts, Job.id)
            .limit(limit)
        ).scalars()
    )


def forget_token(*, session: Session, job_id: int, message_id: int) -> None:
    """The job's result went out with the bot token as ``message_id``: later edits go to that message, and the
    expired interaction token is dropped."""
    session.execute(update(Job).where(Job.id == job_id).values(interaction_token=None, message_id=message_id))


def mark_delivered(*, session: Session, job_id: int, state: str, message_id: int | None = None) -> None:
    values: dict[str, Any] = {"delivered_state": state, "delivered_at": func.now(), "delivery_retry_at": None}
    if message_id is not None:
        values["message_id"] = message_id
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def delivery_failed(*, session: Session, job_id: int, state: str, error: str) -> None:
    """Give up showing this state: Discord refused it for good (the channel or message is gone, the bot may
    not post there). Counted as delivered, so it is not tried again."""
    session.execute(
        update(Job).where(Job.id == job_id)
        .values(delivered_state=state, delivered_at=func.now(), delivery_error=error[:500], delivery_retry_at=None)
    )


def delivery_retry(*, session: Session, job_id: int, first_s: float, cap_s: float) -> float:
    """Put off the next delivery of a job after a transient failure: ``first_s`` doubled per failure,
    at most ``cap_s``. Returns the delay."""
    attempts = session.execute(
        update(Job).where(Job.id == job_id).values(delivery_attempts=Job.delivery_attempts + 1)
        .returning(Job.delivery_attempts)
    ).scalar_one()
    delay = min(first_s * 2 ** (attempts - 1), cap_s)
    session.execute(
        update(Job).where(Job.id == job_id).values(delivery_retry_at=func.now() + timedelta(seconds=delay))
    )
    return delay
