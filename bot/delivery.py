"""Delivery: showing each job's state on Discord, exactly once per state, surviving restarts.

Workers write progress and results to Postgres and ``NOTIFY job_events, '<job id>'``. The bot listens,
and also reconciles on start-up, after every reconnect and every few seconds: any finished job whose final
state is not yet on Discord is delivered. Edits are idempotent, so delivering twice is harmless.

Edits go through the interaction's webhook token while it lives (15 min). After that (or on error 50027)
the final message is posted in the channel with the bot token, and later edits use that message.

Progress edits are throttled per message (``PROGRESS_INTERVAL_S``, with a trailing edit so the latest state
is shown), skipped when nothing shown would change, carry the Cancel button, and attach the worker's latest
preview (``progress.webp``) only when ``jobs.preview_key`` changed since the message's last edit. The final
edit replaces the attachments with the result and the view with the result's buttons (or none).
Deliveries of one job run one at a time, in order, so a progress edit that read the job before it finished
can never land on top of its final message.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import psycopg
from sqlalchemy.orm import Session

from bot.components import cancel_view, grid_view, upscale_view
from bot.metrics import DELIVERIES, DELIVERY_ERRORS
from bot.render import JobView, job_content, job_detail
from db import jobs as jobs_db
from db import queue as queue_db
from db.models import Image, Job
from db.queue import Standing
from db.session import libpq_url
from domain.prompt import split_canonical
from domain.spec import JobKind, JobState
from inference.joblog import job_logging
from inference.storage import ImageNotFoundError

if TYPE_CHECKING:
    from bot.services import BotServices

__all__ = ["Delivery", "attachment_stem", "job_view", "load_job"]

log = logging.getLogger(__name__)

#: Discord's default per-file upload limit, used when the interaction did not say.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
#: The name of the preview attached to a running job's message (plus the stored preview's suffix).
PREVIEW_STEM = "progress"
_RECONCILE_EVERY_S = 5.0
#: A delivery that failed for a transient reason is tried again after this, doubled per failure, capped.
RETRY_FIRST_S = 5.0
RETRY_CAP_S = 300.0
#: Unknown channel, unknown message, missing access, missing permissions, cannot send messages here.
_PERMANENT_CODES = frozenset({10003, 10008, 50001, 50013, 50007})
#: How often a running job's progress wakes the queued jobs behind it (their ETAs count down).
_FOLLOWERS_EVERY_S = 5.0
#: Words of the prompt in a file's name, and its most characters.
_NAME_WORDS = 6
_NAME_CHARS = 48
_INVALID_WEBHOOK_TOKEN = 50027
_UNKNOWN_WEBHOOK = 10015


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A job row and what its message needs besides."""

    job: Job
    images: list[Image]
    standing: Standing | None
    detail: str
    #: For an upscale made from a grid tile: that tile's number (its file is ``<prompt>_<job>_<n>.png``).
    image_number: int | None
    #: For a finished grid: the tiles someone has upscaled (their U buttons are marked used).
    upscaled: frozenset[int]
    #: Other queued jobs of the same queue whose message shows a position (woken when this one moves).
    followers: tuple[int, ...]


def load_job(*, session: Session, job_id: int, with_followers: bool = False) -> _Loaded | None:
    """A job row and what its message needs (:meth:`Delivery.message_parts`), or None when it is gone."""
    job = jobs_db.get(session=session, job_id=job_id)
    if job is None:
        return None
    state = JobState(job.state)
    detail, image_number = _detail(session, job)
    upscaled: frozenset[int] = frozenset()
    if state is JobState.SUCCEEDED and JobKind(job.kind) is not JobKind.UPSCALE:
        upscaled = frozenset(jobs_db.upscaled_tiles(session=session, job_id=job.id))
    followers: tuple[int, ...] = ()
    if with_followers and state is not JobState.QUEUED:
        followers = tuple(queue_db.waiting_in(session=session, queue=job.queue))
    return _Loaded(job, jobs_db.images_of(session=session, job_id=job_id),
                   queue_db.standing(session=session, job=job, now=datetime.now(UTC)), detail, image_number,
                   upscaled, followers)


def _detail(session: Session, job: Job) -> tuple[str, int | None]:
    """What a button's job made ("Image #2", "Variations (Strong) by": see :func:`bot.render.job_detail`),
    and the grid tile an upscale came from."""
    kind = JobKind(job.kind)
    image_number = None
    if kind is JobKind.IMAGINE and job.parent_image_id is not None:  # Enhance on a draft's tile
        source = jobs_db.get_image(session=session, image_id=job.parent_image_id)
        image_number = source.index + 1 if source is not None else None
    if kind is JobKind.UPSCALE and job.parent_image_id is not None:
        source = jobs_db.get_image(session=session, image_id=job.parent_image_id)
        source_job = jobs_db.get(session=session, job_id=source.job_id) if source is not None else None
        if source is not None and source_job is not None and source_job.kind != JobKind.UPSCALE:
            image_number = source.index + 1  # U1-U4 on a grid
    detail = job_detail(kind, image_number=image_number, upscale_mode=job.spec.get("upscale_mode"),
                        strength=job.spec.get("strength"), zoom=job.spec.get("zoom"), pan=job.spec.get("pan"))
    return detail, image_number


def attachment_stem(prompt: str, job_id: int, image_number: int | None = None) -> str:
    """A file name from the prompt and the job: ``fox_in_snow_1234`` (a grid), ``fox_in_snow_1234_2`` (the
    upscale of its image #2). Only ASCII letters and digits from the prompt's text; ``image`` when none."""
    text, _ = split_canonical(prompt)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", ascii_text)[:_NAME_WORDS]
    slug = "_".join(words)[:_NAME_CHARS].strip("_") or "image"
    suffix = f"_{image_number}" if image_number is not None else ""
    return f"{slug}_{job_id}{suffix}"


def delivery_nonce(job_id: int) -> str:
    """The nonce of the bot-token post of a job's result (at most 25 characters). Sent with
    ``enforce_nonce``: a post repeated after a crash (Discord has it, our row does not say so yet) gets
    back the message already made instead of a second one."""
    return f"imagine-job-{job_id}"


def _permanent(exc: discord.HTTPException) -> bool:
    """Discord will refuse this delivery whatever we do: the channel or message is gone, or the bot may
    not see or post in it."""
    return isinstance(exc, discord.NotFound | discord.Forbidden) or exc.code in _PERMANENT_CODES


def job_view(job: Job, standing: Standing | None = None, *, detail: str = "") -> JobView:
    total_s = None
    if job.finished_at is not None and job.created_at is not None:
        total_s = max(0.0, (job.finished_at - job.created_at).total_seconds())
    return JobView(
        job_id=job.id,
        user_id=job.user_id,
        kind=JobKind(job.kind),
        state=JobState(job.state),
        prompt=job.prompt,
        lane=job.lane,
        notes=tuple(job.spec.get("notes", ())),
        position=standing.position if standing is not None else None,
        eta_s=standing.eta_s if standing is not None else None,
        total_s=total_s,
        model=job.model,
        progress_step=job.progress_step,
        progress_total=job.progress_total,
        error=job.error,
        gpu_ms=job.gpu_ms,
        detail=detail,
        upscale_method=job.upscale_method,
    )


@dataclass
class _JobLock:
    """Serialises the deliveries of one job; dropped when nobody holds or waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(frozen=True, slots=True)
class _Shown:
    """What a running job's message shows since its last progress edit."""

    content: str
    preview_key: str | None


class Delivery:
    """Listens for job events and keeps every job's Discord message up to date."""

    def __init__(self, bot: discord.Client, services: BotServices, *, workers: int = 4) -> None:
        self.bot = bot
        self.services = services
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._pending: set[int] = set()
        self._locks: dict[int, _JobLock] = {}
        self._last_edit: dict[int, float] = {}
        self._shown: dict[int, _Shown] = {}
        self._trailing: dict[int, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._sources: list[asyncio.Task[None]] = []
        self._workers = workers
        self._listening = asyncio.Event()
        self._busy = 0
        #: When the queued jobs behind each queue were last woken (their positions and ETAs move).
        self._followers_woken: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._sources = [
            loop.create_task(self._listen(), name="delivery-listen"),
            loop.create_task(self._reconcile_forever(), name="delivery-reconcile"),
        ]
        consumers = [loop.create_task(self._consume(), name=f"delivery-{n}") for n in range(self._workers)]
        self._tasks = [*self._sources, *consumers]

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop listening, finish the deliveries already scheduled (up to ``drain_timeout``), then stop."""
        for task in self._sources:
            task.cancel()
        for handle in self._trailing.values():
            handle.cancel()
        self._trailing.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), drain_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _drained(self) -> None:
        while self._pending or self._busy:
            await asyncio.sleep(0.05)

    async def wait_listening(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._listening.wait(), timeout)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is scheduled or running (tests)."""
        await asyncio.wait_for(self._drained(), timeout)

    def wake(self, job_id: int) -> None:
        """Schedule a delivery for this job (coalesced while one is pending)."""
        if job_id not in self._pending:
            self._pending.add(job_id)
            self._queue.put_nowait(job_id)

    # -- event sources ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                conninfo = libpq_url(self.services.database_url)
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {jobs_db.NOTIFY_CHANNEL}")
                    self._listening.set()
                    backoff = 0.5
                    await self.reconcile()  # catch up on whatever happened while we were not listening
                    async for notice in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self.wake(int(notice.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening.clear()
                log.warning("job event listener lost its connection (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def reconcile(self) -> None:
        """Wake every finished job whose final state is not yet on Discord."""
        jobs = await self.services.db.run(jobs_db.undelivered)
        for job in jobs:
            self.wake(job.id)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(_RECONCILE_EVERY_S)
            try:
                await self.reconcile()
            except Exception:
                log.warning("reconcile failed", exc_info=True)

    async def _consume(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._pending.discard(job_id)
            self._busy += 1
            try:
                await self.deliver(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                DELIVERY_ERRORS.inc()
                log.exception("delivering job %s failed", job_id, extra={"job_id": job_id})
            finally:
                self._busy -= 1

    # -- delivery --------------------------------------------------------------------------------

    async def deliver(self, job_id: int) -> None:
        """Show the job's current state on Discord. Deliveries of one job run one at a time, in the order
        they were asked for: each reads the row afresh, so nothing read before the job finished is shown
        after its final message."""
        entry = self._locks.setdefault(job_id, _JobLock())
        entry.users += 1
        try:
            async with entry.lock:
                with job_logging(job_id):
                    await self._deliver(job_id)
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[job_id]

    async def _deliver(self, job_id: int) -> None:
        loaded = await self.services.db.run(load_job, job_id=job_id, with_followers=True)
        if loaded is None:
            return
        job = loaded.job
        state = JobState(job.state)
        self._wake_followers(job, loaded.followers)
        if state.is_terminal:
            if job.delivered_state != job.state:
                await self._deliver_final(loaded)
            return
        await self._deliver_progress(job, loaded.standing, loaded.detail)

    def _wake_followers(self, job: Job, followers: tuple[int, ...]) -> None:
        """A job started, moved on or ended: the queued jobs behind it show new positions and ETAs. Always
        when it starts or ends, else at most every :data:`_FOLLOWERS_EVERY_S` per queue (each of their
        edits is throttled, and skipped when nothing shown changes)."""
        if not followers:
            return
        moved = JobState(job.state).is_terminal or job.progress_step == 0
        now = time.monotonic()
        if not moved and now - self._followers_woken.get(job.queue, -math.inf) < _FOLLOWERS_EVERY_S:
            return
        self._followers_woken[job.queue] = now
        for follower in followers:
            if follower != job.id:
                self.wake(follower)

    async def _deliver_progress(self, job: Job, standing: Standing | None, detail: str) -> None:
        """Edit a queued or running job's message: throttled per message, skipped once the token is gone
        or when nothing shown would change; the preview is attached only when it is a new one."""
        if not self._token_alive(job) or job.message_id is None:
            return
        wait = self._last_edit.get(job.id, -math.inf) + self.services.settings.progress_interval_s - time.monotonic()
        if wait > 0:
            # Too soon: come back when the interval is over, to show whatever is latest then.
            if job.id not in self._trailing:
                self._trailing[job.id] = asyncio.get_running_loop().call_later(wait, self._wake_trailing, job.id)
            return
        content = job_content(job_view(job, standing, detail=detail))
        shown = self._shown.get(job.id)
        shown_preview = shown.preview_key if shown is not None else None
        preview = None
        if job.preview_key is not None and job.preview_key != shown_preview:
            preview = await self._preview(job.preview_key, job.upload_limit or DEFAULT_UPLOAD_LIMIT)
        if preview is None and shown is not None and shown.content == content:
            return
        kwargs: dict[str, Any] = {"content": content, "view": cancel_view(job.id)}
        if preview is not None:
            kwargs["attachments"] = [preview]  # replaces the previous preview
        self._last_edit[job.id] = time.monotonic()
        try:
            await self._webhook(job).edit_message(job.message_id, **kwargs)
        except discord.HTTPException as exc:  # progress is cosmetic; the final edit will say it all
            log.info("job %s: progress edit failed (%s)", job.id, exc)
            return
        self._shown[job.id] = _Shown(content, job.preview_key if preview is not None else shown_preview)

    def _wake_trailing(self, job_id: int) -> None:
        self._trailing.pop(job_id, None)
        self.wake(job_id)

    async def _preview(self, key: str, limit: int) -> discord.File | None:
        """The stored preview as ``progress.<ext>``, or None when it is gone (the worker stored a newer one,
        or the job ended) or cannot be read."""
        try:
            data = await asyncio.to_thread(self.services.store.get, key)
        except ImageNotFoundError:
            return None
        except Exception:
            log.warning("preview %s could not be read", key, exc_info=True)
            return None
        if len(data) > limit:
            return None
        return discord.File(io.BytesIO(data), filename=PREVIEW_STEM + PurePosixPath(key).suffix)

    async def message_parts(
        self, loaded: _Loaded, *, upload_limit: int | None = None
    ) -> tuple[str, list[discord.File], discord.ui.View | None]:
        """What a job's message shows now: its text, and once it succeeded, its image and fresh buttons
        (also what ``/show`` posts again). The image fits ``upload_limit`` (default: the job's own)."""
        job = loaded.job
        view = job_view(job, loaded.standing, detail=loaded.detail)
        content = job_content(view)
        files: list[discord.File] = []
        components: discord.ui.View | None = None
        if view.state is JobState.SUCCEEDED and job.result_key:
            name = attachment_stem(job.prompt, job.id, loaded.image_number)
            limit = upload_limit or job.upload_limit or DEFAULT_UPLOAD_LIMIT
            files.append(await self._attachment(job.result_key, limit, name, spoiler=job.flagged))  # safety check
            # One upscaled image gets the post-upscale buttons; imagine, reroll and vary made a grid.
            if view.kind is JobKind.UPSCALE:
                images = loaded.images
                components = upscale_view(job.id, square=not images or images[0].width == images[0].height)
            else:
                components = grid_view(job.id, upscaled=loaded.upscaled, draft=bool(job.spec.get("draft")))
        return content, files, components

    async def _deliver_final(self, loaded: _Loaded) -> None:
        """Show a finished job's result. A transient failure (Discord or the image store unreachable, a
        5xx) is tried again later, with backoff; a permanent one marks the delivery failed, logged once."""
        job = loaded.job
        try:
            content, files, components = await self.message_parts(loaded)
            message_id = await self._show(job, content, files, components)
        except discord.HTTPException as exc:
            if not _permanent(exc):
                await self._retry_later(job, exc)
                return
            log.warning("job %s: Discord refused its %s message for good (%s %s: %s); not retrying",
                        job.id, job.state, exc.status, exc.code, exc.text)
            await self.services.db.run(jobs_db.delivery_failed, job_id=job.id, state=job.state,
                                       error=f"{exc.status} {exc.code}: {exc.text}")
            self._forget(job.id)
            return
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:  # Discord or the image store unreachable
            await self._retry_later(job, exc)
            return
        await self.services.db.run(jobs_db.mark_delivered, job_id=job.id, state=job.state, message_id=message_id)
        DELIVERIES.labels(job.state).inc()
        self._forget(job.id)

    async def _retry_later(self, job: Job, exc: Exception) -> None:
        delay = await self.services.db.run(jobs_db.delivery_retry, job_id=job.id, first_s=RETRY_FIRST_S,
                                           cap_s=RETRY_CAP_S)
        log.warning("job %s: delivery failed (%s); trying again in %.0fs", job.id, exc, delay)

    def _forget(self, job_id: int) -> None:
        """Drop what progress edits remembered of a job whose final state is shown."""
        self._last_edit.pop(job_id, None)
        self._shown.pop(job_id, None)
        handle = self._trailing.pop(job_id, None)
        if handle is not None:
            handle.cancel()

    async def _show(
        self, job: Job, content: str, files: list[discord.File], view: discord.ui.View | None
    ) -> int | None:
        """Edit the job's message through its token, or post a new one with the bot token."""
        # No view (a failed or cancelled job) removes the Cancel button its progress edits showed.
        kwargs: dict[str, Any] = {"content": content, "attachments": files, "view": view}
        if self._token_alive(job) and job.message_id is not None:
            try:
                message = await self._webhook(job).edit_message(job.message_id, **kwargs)
                return message.id
            except discord.HTTPException as exc:
                if exc.code not in (_INVALID_WEBHOOK_TOKEN, _UNKNOWN_WEBHOOK) and exc.status != 401:
                    raise
                log.info("job %s: interaction token expired; posting with the bot token", job.id)
                for file in files:
                    file.reset()
        if job.channel_id is None:
            log.warning("job %s: token expired and no channel known; cannot deliver", job.id)
            return None
        channel = self.bot.get_partial_messageable(job.channel_id)
        if job.interaction_token is None and job.message_id is not None:
            # We posted this message ourselves with the bot token: edit it.
            edited = await channel.get_partial_message(job.message_id).edit(**kwargs)
            return edited.id
        kwargs.pop("attachments")
        posted = await channel.send(files=files, nonce=delivery_nonce(job.id), **kwargs)
        await self.services.db.run(jobs_db.forget_token, job_id=job.id, message_id=posted.id)
        return posted.id

    def _token_alive(self, job: Job) -> bool:
        return (
            job.interaction_token is not None
            and job.token_expires_at is not None
            and job.token_expires_at > datetime.now(UTC)
        )

    def _webhook(self, job: Job) -> discord.Webhook:
        assert self.bot.application_id is not None and job.interaction_token is not None
        return discord.Webhook.from_state(
            data={"id": self.bot.application_id, "type": 3, "token": job.interaction_token},
            state=self.bot._connection,
        )

    async def _attachment(self, key: str, limit: int, stem: str, *, spoiler: bool = False) -> discord.File:
        """The stored image as ``<stem>.<ext>``, an upload of at most ``limit`` bytes (re-encoded or
        downscaled to fit), behind a spoiler when ``spoiler`` (discord.py names it ``SPOILER_<stem>``)."""
        from inference.grid import encode_for_upload

        data = await asyncio.to_thread(self.services.store.get, key)
        name = stem + PurePosixPath(key).suffix
        if len(data) > limit:
            data, name = await asyncio.to_thread(_reencode, data, limit, stem, encode_for_upload)
        return discord.File(io.BytesIO(data), filename=name, spoiler=spoiler)


def _reencode(data: bytes, limit: int, stem: str, encode: Any) -> tuple[bytes, str]:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as image:
        image.load()
        encoded: tuple[bytes, str] = encode(image, limit, stem=stem)
        return encoded
