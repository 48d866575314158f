"""SQLAlchemy models. Alembic migrations under ``migrations/`` create exactly these tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Balance",
    "Ban",
    "Base",
    "Entitlement",
    "FilterTerm",
    "Grant",
    "Guild",
    "Image",
    "ImagePolicy",
    "Job",
    "LedgerEntry",
    "ModerationEvent",
    "RolePlan",
    "User",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB}


class User(Base):
    """A Discord user, created on first contact. ``id`` is the Discord snowflake."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), default="")
    #: The anchor of the default plan's periods (and of role plans'): the member's first contact.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Settings (/settings, /fast, /relax, /turbo).
    lane: Mapped[str] = mapped_column(String(8), default="fast", server_default="fast")
    default_model: Mapped[str | None] = mapped_column(String(64))
    default_aspect: Mapped[str | None] = mapped_column(String(16))
    default_stylize: Mapped[int | None] = mapped_column(Integer)
    stealth: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Remix mode (/settings remix): V, 🔄, Vary, Zoom, Pan and Vary (Region) open the prompt to edit first.
    remix: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Guild(Base):
    """A Discord server the bot has served. ``id`` is the Discord snowflake."""

    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


#: A finished job whose final state Discord does not show yet (the predicate of ``ix_jobs_to_deliver``).
TO_DELIVER = "state IN ('succeeded', 'failed', 'cancelled') AND delivered_state IS DISTINCT FROM state"


class Job(Base):
    """One unit of GPU work and its delivery to Discord. See docs/architecture.md for the lifecycle."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idem_key", name="uq_jobs_user_idem"),
        Index("ix_jobs_state_queued_at", "state", "queued_at"),
        Index("ix_jobs_undelivered", "delivered_state", "state"),
        Index("ix_jobs_user_lane_state", "user_id", "lane", "state"),
        # Queue positions (queued jobs ahead in a model and lane) and ETAs (recent run times of a queue).
        Index("ix_jobs_queued_by_queue", "queue", "id", postgresql_where=text("state = 'queued'")),
        # A member's waiting jobs per queue, oldest first: their order (``db.jobs._older_waiting``, the head
        # ``next_held`` publishes) reads the member's own rows, not the whole queue (migration 0010).
        Index("ix_jobs_queued_by_member", "user_id", "queue", "id", postgresql_where=text("state = 'queued'")),
        Index("ix_jobs_succeeded_by_queue", "queue", "finished_at", postgresql_where=text("state = 'succeeded'")),
        # What the bot still has to deliver (``db.jobs.undelivered``), least tried first: a handful of rows
        # however long the history (migration 0009).
        Index("ix_jobs_to_deliver", "delivery_attempts", "id", postgresql_where=text(TO_DELIVER)),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    guild_id: Mapped[int | None] = mapped_column(ForeignKey("guilds.id"))
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    prompt: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(64))
    lane: Mapped[str] = mapped_column(String(8))
    queue: Mapped[str] = mapped_column(String(80))
    idem_key: Mapped[str] = mapped_column(String(200))
    parent_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", use_alter=True))
    estimated_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_ms: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    preview_key: Mapped[str | None] = mapped_column(String(300))
    result_key: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Discord coordinates: where the job's message lives and how to edit it.
    interaction_id: Mapped[int | None] = mapped_column(BigInteger)
    interaction_token: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The last state shown on Discord; a terminal job whose delivered_state differs is re-delivered.
    delivered_state: Mapped[str | None] = mapped_column(String(16))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Bytes one uploaded file may have where the job was asked for (the interaction's attachment_size_limit).
    upload_limit: Mapped[int | None] = mapped_column(BigInteger)
    #: How an upscale was made: "esrgan", "creative" or "lanczos" (shown on its message).
    upscale_method: Mapped[str | None] = mapped_column(String(16))
    # Quota: the balance period charged, the fast time held while the job waits and runs, the fast
    # time charged at the end (None until settled), and the plan's running limit for its lane.
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reserved_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    charged_ms: Mapped[int | None] = mapped_column(BigInteger)
    max_running: Mapped[int | None] = mapped_column(Integer)
    stealth: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The broker: a queued job has a message waiting while ``published_at`` is set, sent into the broker
    # whose epoch is ``broker_epoch`` (``inference.dispatch``); None: no message (not yet sent, or held
    # back by its member's running limit until one of their jobs ends).
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    broker_epoch: Mapped[str | None] = mapped_column(String(40))
    # Delivery retries: a transient Discord error waits until ``delivery_retry_at`` (exponential backoff);
    # a permanent one is recorded in ``delivery_error`` and the state counted as delivered.
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    delivery_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    #: What happens to images the safety classifier flags (``domain.moderation.ImageAction``), resolved
    #: from the server's and channel's policy at submit; None: not checked.
    image_action: Mapped[str | None] = mapped_column(String(8))
    #: The classifier flagged the images and the policy said to send them behind a spoiler.
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Image(Base):
    """One image a job produced (a grid tile, or the single image of an upscale)."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_images_job_index"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(300))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Balance(Base):
    """A member's fast time in one period: granted (``limit_ms``), spent (``used_ms``) and held for jobs
    waiting or running (``reserved_ms``). Changed only by conditional UPDATEs (``db.quota``), each with
    its ledger row; the CHECKs make overspending impossible even for a buggy caller."""

    __tablename__ = "balances"
    __table_args__ = (
        UniqueConstraint("user_id", "period_start", name="uq_balances_user_period"),
        CheckConstraint("used_ms >= 0 AND reserved_ms >= 0", name="not_negative"),
        CheckConstraint("used_ms + reserved_ms <= limit_ms", name="within_limit"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: None: a period that never renews (a trial).
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    plan: Mapped[str] = mapped_column(String(40))
    limit_ms: Mapped[int] = mapped_column(BigInteger)
    used_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    reserved_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def left_ms(self) -> int:
        return max(0, self.limit_ms - self.used_ms - self.reserved_ms)


class LedgerEntry(Base):
    """Append-only record of every change to a balance (a trigger refuses UPDATE and DELETE).

    ``grant``: the limit changed by ``amount_ms`` (a new period, a plan change). ``reserve``: a job's
    estimate was held. ``settle``: the job finished and ``amount_ms`` was charged (its reservation
    released). ``refund``: the job failed or was cancelled and its reservation (``amount_ms``) released.
    One row per job and kind, so nothing is charged twice.
    """

    __tablename__ = "ledger"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", name="uq_ledger_job_kind"),
        CheckConstraint("kind IN ('grant', 'reserve', 'settle', 'refund')", name="kind"),
        Index("ix_ledger_balance_id", "balance_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    balance_id: Mapped[int] = mapped_column(ForeignKey("balances.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    kind: Mapped[str] = mapped_column(String(8))
    amount_ms: Mapped[int] = mapped_column(BigInteger)
    #: The request that caused it: the job's idempotency key, or what changed the limit.
    idem_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Grant(Base):
    """An admin's grant of a plan to a member, until ``expires_at`` (None: until revoked), in one server
    (``guild_id``) or, for the operators' grants, in every server (``guild_id`` None)."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    plan: Mapped[str] = mapped_column(String(40))
    #: The admin's Discord id; None for the command line.
    granted_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Ban(Base):
    """A member may not use the bot in one server (``guild_id``) or, banned by an operator, anywhere
    (``guild_id`` None), until ``lifted_at``."""

    __tablename__ = "bans"
    __table_args__ = (Index("ix_bans_user_active", "user_id", "guild_id", postgresql_where=text("lifted_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    banned_by: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FilterTerm(Base):
    """A server's change to the prompt filter: a term it blocks too (``block``) or lets through (``allow``).
    ``term`` is normalised (``domain.moderation.normalize_term``); ``shown`` is what the admin typed."""

    __tablename__ = "filter_terms"
    __table_args__ = (CheckConstraint("kind IN ('block', 'allow')", name="kind"),)

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    term: Mapped[str] = mapped_column(String(80), primary_key=True)
    shown: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    set_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImagePolicy(Base):
    """What a server does with flagged images: in its ordinary channels (``scope`` server), its
    age-restricted ones (``age_restricted``), or one channel (``channel``, ``channel_id``)."""

    __tablename__ = "image_policies"
    __table_args__ = (
        CheckConstraint("scope IN ('server', 'age_restricted', 'channel')", name="scope"),
        CheckConstraint("action IN ('allow', 'spoiler', 'block')", name="action"),
    )

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: 0 unless ``scope`` is channel.
    channel_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    action: Mapped[str] = mapped_column(String(8))
    set_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModerationEvent(Base):
    """The audit log: a prompt the filter blocked, an image the classifier flagged (blocked or sent as a
    spoiler). A member may appeal a blocked prompt once (``appealed_at``); ``/admin moderation`` lists them."""

    __tablename__ = "moderation_events"
    __table_args__ = (
        CheckConstraint("kind IN ('prompt_blocked', 'image_blocked', 'image_spoiler')", name="kind"),
        Index("ix_moderation_events_guild_id_id", "guild_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    #: The interaction refused (the Appeal button names it); None for an image.
    interaction_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    term: Mapped[str | None] = mapped_column(String(80))
    prompt: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    appealed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RolePlan(Base):
    """Members of a guild who hold ``role_id`` are on ``plan`` (set by the guild's admins)."""

    __tablename__ = "role_plans"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    role_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    plan: Mapped[str] = mapped_column(String(40))
    set_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Entitlement(Base):
    """A Discord premium entitlement (a subscription to one of the app's SKUs), kept current from the
    gateway's ENTITLEMENT_* events and the entitlements that come with every interaction."""

    __tablename__ = "entitlements"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sku_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    type: Mapped[int] = mapped_column(Integer, default=8)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: None while a subscription runs (Discord sets it when it ends).
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
