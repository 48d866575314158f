"""Submitting jobs from Discord: one transaction for the rows and their quota, then publish each new job's task."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord

from bot.accounts import estimates, load_account
from db import jobs as jobs_db
from db import submission as submission_db
from db.models import Job
from db.plans import Account, Requester
from domain.spec import Lane
from inference.dispatch import publish_jobs

if TYPE_CHECKING:
    from bot.services import BotServices

__all__ = ["TOKEN_LIFETIME", "submit_jobs", "token_expiry", "withdraw"]

log = logging.getLogger(__name__)

#: Interaction tokens live 15 minutes; stop using one a little before that.
TOKEN_LIFETIME = timedelta(minutes=15)
_TOKEN_MARGIN = timedelta(seconds=30)


def token_expiry(created_at: datetime) -> datetime:
    """When to stop editing through an interaction's token and fall back to the bot token."""
    return created_at + TOKEN_LIFETIME - _TOKEN_MARGIN


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
        await asyncio.to_thread(publish_jobs, services.sessions, services.celery, created)
    except Exception:
        log.warning("could not publish jobs %s now; the reaper will", [job_id for job_id, _ in created], exc_info=True)
    return results


async def withdraw(interaction: discord.Interaction[Any], extra_message_ids: list[int | None], text: str) -> None:
    """Take back a deferred answer whose jobs were refused after all: delete the "thinking" message and
    any placeholders, and tell the member why, ephemerally."""
    for message_id in extra_message_ids:
        if message_id is not None:
            try:
                await interaction.followup.delete_message(message_id)
            except discord.HTTPException:
                log.debug("placeholder %s already gone", message_id)
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.debug("original response of %s already gone", interaction.id)
    await interaction.followup.send(text, ephemeral=True)


def now() -> datetime:
    return datetime.now(UTC)
