"""Submitting jobs from Discord: one transaction for the rows and their quota, then publish each new job's task.

:func:`new_job` and :func:`placeholder` are the one way ``/imagine`` and the buttons describe a job and the
message that waits for it: the interaction gives the member, place, token and upload limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord

from bot.accounts import estimates, load_account
from bot.acks import refuse
from bot.render import JobView, job_placeholder
from db import jobs as jobs_db
from db import submission as submission_db
from db.models import Job
from db.plans import Account, Requester
from domain.spec import JobKind, JobSpec, JobState, Lane, queue_name
from inference.dispatch import publish_jobs, release_next, stale_after

if TYPE_CHECKING:
    from bot.services import BotServices

__all__ = ["TOKEN_LIFETIME", "is_age_restricted", "new_job", "placeholder", "submit_jobs", "token_expiry", "withdraw"]

log = logging.getLogger(__name__)

#: Interaction tokens live 15 minutes; stop using one a little before that.
TOKEN_LIFETIME = timedelta(minutes=15)
_TOKEN_MARGIN = timedelta(seconds=30)


def token_expiry(created_at: datetime) -> datetime:
    """When to stop editing through an interaction's token and fall back to the bot token."""
    return created_at + TOKEN_LIFETIME - _TOKEN_MARGIN


def placeholder(interaction: discord.Interaction[Any], kind: JobKind, prompt: str, *, detail: str = "") -> str:
    """The message a job's member sees until it is queued: ``**prompt** - Image #2 @member (Waiting to start)``."""
    return job_placeholder(JobView(job_id=0, user_id=interaction.user.id, kind=kind, state=JobState.QUEUED,
                                   prompt=prompt, lane="", detail=detail))


def new_job(
    interaction: discord.Interaction[Any],
    *,
    kind: JobKind,
    spec: JobSpec,
    lane: Lane,
    prompt: str,
    idem_key: str,
    message_id: int | None,
    estimated_ms: int,
    parent_image_id: int | None = None,
    click_key: str | None = None,
) -> jobs_db.NewJob:
    """The job a member asks for through ``interaction``, to be delivered to the message ``message_id``."""
    return jobs_db.NewJob(
        user_id=interaction.user.id,
        user_name=interaction.user.name,
        kind=kind,
        spec=spec,
        lane=lane,
        queue=queue_name(spec.model, lane),
        idem_key=idem_key,
        prompt=prompt,
        guild_id=interaction.guild_id,
        guild_name=interaction.guild.name if interaction.guild else "",
        channel_id=interaction.channel_id,
        parent_image_id=parent_image_id,
        estimated_ms=estimated_ms,
        interaction_id=interaction.id,
        interaction_token=interaction.token,
        token_expires_at=token_expiry(interaction.created_at),
        message_id=message_id,
        upload_limit=interaction.filesize_limit,
        click_key=click_key,
        age_restricted=is_age_restricted(interaction.channel),
    )


async def submit_jobs(
    services: BotServices,
    new_jobs: list[jobs_db.NewJob],
    interaction: discord.Interaction[Any] | None = None,
    *,
    account: Account | None = None,
    lane: Lane | None = None,
) -> list[tuple[Job, bool, int]]:
    """Insert the jobs of one member (idempotently) with their quota, and publish the new ones.
    Returns ``(job, created, position)`` for each.

    The member's plan comes from ``account`` (see :func:`bot.accounts.load_account`), else is loaded from
    ``interaction`` (their roles and entitlements), else from the database alone. Each job runs in the
    member's lane (/fast, /relax, /turbo), or in ``lane`` when the prompt asked for one (``--relax``), as
    their plan and fast time allow (``NewJob.lane`` is replaced); see ``db.submission``.

    Raises :class:`~domain.errors.RefusedError` (banned, out of fast time, too many jobs): nothing was
    written. A publish that fails (Redis down) is logged, not raised: the job is committed and the reaper
    publishes it again once the broker is back.
    """
    if not new_jobs:
        return []
    if account is None:
        first = new_jobs[0]
        requester = None if interaction is not None else Requester(first.user_id, first.user_name, first.guild_id)
        account = await load_account(services, interaction, requester=requester)
    new_jobs = [dataclasses.replace(new, lane=lane or account.lane) for new in new_jobs]
    results = await services.db.run(
        submission_db.submit_jobs,
        new_jobs=new_jobs,
        resolved=account.resolved,
        estimates=estimates(services.plans, services.catalog, new_jobs),
    )
    created = [(job.id, job.queue) for job, is_new, _ in results if is_new]
    try:
        await asyncio.to_thread(
            publish_jobs, services.sessions, services.celery, created,
            stale_after=stale_after(services.settings.heartbeat_s),
        )
    except Exception:
        log.warning("could not publish jobs %s now; the reaper will", [job_id for job_id, _ in created], exc_info=True)
    return results


async def release_slots(services: BotServices, cancelled: Sequence[int]) -> None:
    """Jobs cancelled while queued free their member's slots: publish the member's next held job for each
    (else it would wait for the reaper's next pass). A failure is logged; the reaper publishes it then."""
    for job_id in cancelled:
        try:
            await asyncio.to_thread(release_next, services.sessions, services.celery, ended_job_id=job_id)
        except Exception:
            log.warning("could not publish the job held behind cancelled job %s now; the reaper will", job_id,
                        exc_info=True)


async def withdraw(interaction: discord.Interaction[Any], extra_message_ids: list[int | None], text: str) -> None:
    """Take back a deferred answer whose jobs were refused after all: delete the "thinking" message and
    any placeholders, and tell the member why, ephemerally."""
    for message_id in extra_message_ids:
        if message_id is not None:
            try:
                await interaction.followup.delete_message(message_id)
            except discord.HTTPException:
                log.debug("placeholder %s already gone", message_id)
    await refuse(interaction, text)  # deletes the public "thinking" message first


def is_age_restricted(channel: Any) -> bool:
    """An age-restricted (NSFW) channel, or a thread in one: its image policy may allow what others do not."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def now() -> datetime:
    return datetime.now(UTC)
