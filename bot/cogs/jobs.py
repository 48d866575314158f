"""``/show``, ``/cancel`` and ``/queue``: a member's own jobs, by id (the id is in each image's Recipe).

- ``/show JOB`` posts a job again, with fresh buttons: a member's own jobs; others' jobs made in the same
  server, unless they are stealth (:func:`may_show`). What it may not show, it says so, ephemerally.
- ``/cancel [JOB]`` cancels that job of theirs, or all their queued and running jobs: a queued one at once
  (refunded), a running one at its worker's next step (refunded then), as the Cancel button does.
- ``/queue`` lists their queued and running jobs with their positions and ETAs.

Each command is acknowledged first (an ephemeral "thinking…"), then the member's rate limit applies
(``bot.acks``); nothing reads the database before Discord has its acknowledgement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy.orm import Session

from bot.acks import acknowledge
from bot.delivery import load_job
from bot.limits import MAX_CONTENT, shorten_middle
from bot.render import format_eta
from bot.submission import release_slots
from db import jobs as jobs_db
from db import queue as queue_db
from domain.moderation import may_see_job
from domain.prompt import split_canonical
from domain.spec import JobState

if TYPE_CHECKING:
    from bot.client import ImagineBot

__all__ = ["Jobs", "may_show", "queue_content"]

log = logging.getLogger(__name__)

#: Snowflake-sized ids fit Discord's integer options (at most 2**53).
_MAX_ID = 2**53 - 1
_PROMPT_IN_LIST = 60
NOT_FOUND = "There is no job `{job_id}` that you can see. `/queue` lists yours; a Recipe names its job."
NOTHING_TO_CANCEL = "You have no queued or running jobs to cancel."


def may_show(*, owner_id: int, stealth: bool, job_guild_id: int | None, viewer_id: int,
             viewer_guild_id: int | None) -> bool:
    """Whether ``/show`` may post a job for this member: their own, or one made in the server they are in
    that is not stealth."""
    if viewer_id == owner_id:
        return True
    same_server = job_guild_id is not None and job_guild_id == viewer_guild_id
    return same_server and may_see_job(owner_id=owner_id, stealth=stealth, viewer_id=viewer_id)


@dataclass(frozen=True, slots=True)
class _Cancelled:
    now: list[int]
    stopping: list[int]
    ended: list[int]


def _cancel(*, session: Session, user_id: int, job_id: int | None) -> _Cancelled | None:
    """Cancel one job of the member's (None when it is not theirs or does not exist), or all of them."""
    if job_id is not None:
        job = jobs_db.get(session=session, job_id=job_id)
        if job is None or job.user_id != user_id:
            return None
        targets = [job.id]
    else:
        targets = [job.id for job, _ in queue_db.member_queue(session=session, user_id=user_id,
                                                               now=datetime.now(UTC), limit=1000)
                   if not job.cancel_requested]  # one already stopping is not asked again
    result = _Cancelled([], [], [])
    for target in targets:
        state = jobs_db.request_cancel(session=session, job_id=target)
        if state is None:
            result.ended.append(target)
            continue
        jobs_db.notify(session=session, job_id=target)
        (result.now if state is JobState.CANCELLED else result.stopping).append(target)
    return result


def _job_line(job_id: int, prompt: str, lane: str, state: str, place: queue_db.Standing, step: int,
              total: int, stopping: bool = False) -> str:
    text, _ = split_canonical(prompt)
    shown = shorten_middle(text, _PROMPT_IN_LIST)
    if stopping:
        where = "stopping (cancelled)"
    elif state == JobState.RUNNING:
        where = f"running, {int(100 * step / total)}%" if total else "starting"
    else:
        where = f"position {place.position + 1} in the queue"
    return f"- `{job_id}` · {lane} · {where} · {format_eta(place.eta_s)} · {shown}"


def queue_content(lines: list[str]) -> str:
    """``/queue``'s answer: one line per job, as many as fit in a message."""
    if not lines:
        return "You have no queued or running jobs. `/imagine` starts one."
    head = f"**Your jobs** ({len(lines)} queued or running)"
    out = [head]
    for index, line in enumerate(lines):
        more = f"…and {len(lines) - index} more"
        if sum(len(x) + 1 for x in out) + len(line) + len(more) + 2 > MAX_CONTENT:
            out.append(more)
            break
        out.append(line)
    return "\n".join(out)


class Jobs(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[ImagineBot], /) -> bool:  # type: ignore[override]
        return await acknowledge(interaction, interaction.command.name if interaction.command else "jobs") is not None

    @app_commands.command(name="show", description="Post one of your jobs again, with fresh buttons")
    @app_commands.describe(job="The job's id (in its Recipe, or in /queue)")
    async def show(self, interaction: discord.Interaction[ImagineBot],
                   job: app_commands.Range[int, 1, _MAX_ID]) -> None:
        services = self.bot.services
        loaded = await services.db.run(load_job, job_id=job)
        if loaded is None or not may_show(owner_id=loaded.job.user_id, stealth=loaded.job.stealth,
                                          job_guild_id=loaded.job.guild_id, viewer_id=interaction.user.id,
                                          viewer_guild_id=interaction.guild_id):
            await interaction.followup.send(NOT_FOUND.format(job_id=job), ephemeral=True)
            return
        content, files, view = await self.bot.delivery.message_parts(loaded, upload_limit=interaction.filesize_limit)
        await interaction.followup.send(f"Job `{job}` is posted again below.", ephemeral=True)
        if view is None:
            await interaction.followup.send(content, files=files)
        else:
            await interaction.followup.send(content, files=files, view=view)
        log.info("job %s shown again by %s", job, interaction.user.id)

    @app_commands.command(name="cancel", description="Cancel one of your queued or running jobs, or all of them")
    @app_commands.describe(job="The job's id (see /queue); leave it out to cancel all your jobs")
    async def cancel(self, interaction: discord.Interaction[ImagineBot],
                     job: app_commands.Range[int, 1, _MAX_ID] | None = None) -> None:
        result = await self.bot.services.db.run(_cancel, user_id=interaction.user.id, job_id=job)
        if result is None:
            await interaction.followup.send(NOT_FOUND.format(job_id=job), ephemeral=True)
            return
        for job_id in (*result.now, *result.stopping):
            self.bot.delivery.wake(job_id)
        await interaction.followup.send(_cancel_text(job, result), ephemeral=True)
        await release_slots(self.bot.services, result.now)

    @app_commands.command(name="queue", description="Your queued and running jobs, with positions and ETAs")
    async def queue(self, interaction: discord.Interaction[ImagineBot]) -> None:
        rows = await self.bot.services.db.run(queue_db.member_queue, user_id=interaction.user.id,
                                              now=datetime.now(UTC))
        lines = [_job_line(job.id, job.prompt, job.lane, job.state, place, job.progress_step, job.progress_total,
                           job.cancel_requested)
                 for job, place in rows]
        await interaction.followup.send(queue_content(lines), ephemeral=True)


def _ids(ids: list[int]) -> str:
    return ", ".join(f"`{job_id}`" for job_id in ids)


def _cancel_text(job: int | None, result: _Cancelled) -> str:
    if not result.now and not result.stopping:
        return "That job has already finished." if job is not None else NOTHING_TO_CANCEL
    parts = []
    if result.now:
        parts.append(f"Cancelled {_ids(result.now)}; the fast time they held is back.")
    if result.stopping:
        parts.append(f"Stopping {_ids(result.stopping)} at the next step; its fast time comes back then.")
    return " ".join(parts)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Jobs(bot))
