"""Moderation in Discord: the prompt filter's refusal with its **Appeal** button, the checks a click
passes (its job belongs to this channel; a stealth job only to its owner), and the texts of
``/admin moderation``.

The rules are :mod:`domain.moderation`; the rows :mod:`db.moderation`. ``/imagine`` calls
:func:`check_prompts` after parsing, with the filter loaded along with the member's account (no extra
round trip), and answers a :class:`~domain.errors.PromptBlockedError` with :func:`refuse_prompt`: the
ephemeral refusal is sent first, then the audit row is written (keyed by the interaction, which the
Appeal button names).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.acks import acknowledge, refuse
from db import moderation as moderation_db
from db.models import Job, ModerationEvent
from domain.actions import ButtonError
from domain.errors import PromptBlockedError
from domain.moderation import PromptFilter, may_see_job, same_place
from domain.spec import JobSpec

if TYPE_CHECKING:
    from bot.services import BotServices

__all__ = [
    "NOT_HERE",
    "STEALTH",
    "AppealButton",
    "Clicker",
    "check_click",
    "check_prompts",
    "event_line",
    "refuse_prompt",
]

log = logging.getLogger(__name__)

NOT_HERE = "That button belongs to a message in another channel, so it doesn't work here."
STEALTH = "That image is private to the member who made it, so only they can use its buttons."
_APPEAL_RECORDED = "Your appeal was sent to this server's admins. They'll review the prompt."
_APPEAL_ANSWERS = {
    "already": "You already appealed this; the admins have it.",
    "not_yours": "Only the member whose prompt was blocked can appeal it.",
    "gone": "That refusal is no longer on record, so it can't be appealed. Try the prompt again.",
}
_EVENT_TEXT = {"prompt_blocked": "prompt blocked", "image_blocked": "image blocked",
               "image_spoiler": "image sent as spoiler"}
_PROMPT_SHOWN = 80


def prompt_texts(specs: Sequence[JobSpec]) -> list[str]:
    """What the text encoder will be asked to draw: each spec's prompt and its positively weighted parts
    (negative prompts and negative weights ask to keep things *out*)."""
    texts: list[str] = []
    for spec in specs:
        texts.append(spec.prompt)
        texts += [text for text, weight in spec.weighted_prompts if weight > 0]
    return texts


def check_prompts(prompt_filter: PromptFilter, specs: Sequence[JobSpec]) -> None:
    """Raise :class:`PromptBlockedError` when the server's filter (``Account.prompt_filter``, loaded with
    the member) blocks what ``specs`` would draw."""
    for text in prompt_texts(specs):
        term = prompt_filter.find(text)
        if term is not None:
            raise PromptBlockedError(term, text)


async def refuse_prompt(services: BotServices, interaction: discord.Interaction[Any],
                        blocked: PromptBlockedError) -> None:
    """Answer a blocked prompt (ephemeral, with Appeal), then write it to the audit log."""
    view = discord.ui.View(timeout=None)
    view.add_item(AppealButton(interaction.id))
    await refuse(interaction, str(blocked), view=view)
    log.info("prompt of %s blocked in %s (%r)", interaction.user.id, interaction.guild_id, blocked.term)
    await services.db.run(
        moderation_db.record_event, kind="prompt_blocked", user_id=interaction.user.id,
        guild_id=interaction.guild_id, channel_id=interaction.channel_id, prompt=blocked.prompt, term=blocked.term,
        interaction_id=interaction.id,
    )


class AppealButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"appeal:(?P<id>[0-9]{1,20})"):
    """The Appeal button under a blocked prompt's refusal: ``appeal:<interaction id of the refusal>``."""

    def __init__(self, interaction_id: int) -> None:
        self.interaction_id = interaction_id
        super().__init__(discord.ui.Button(label="Appeal", style=discord.ButtonStyle.secondary,
                                           custom_id=f"appeal:{interaction_id}"))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AppealButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if not await acknowledge(interaction, "appeal"):
            return
        services: BotServices = interaction.client.services
        outcome = await services.db.run(moderation_db.appeal, interaction_id=self.interaction_id,
                                        user_id=interaction.user.id)
        if outcome.outcome == "recorded":
            log.info("appeal of moderation event %s by %s", outcome.event and outcome.event.id, interaction.user.id)
        await interaction.followup.send(_APPEAL_RECORDED if outcome.outcome == "recorded"
                                        else _APPEAL_ANSWERS[outcome.outcome], ephemeral=True)


@dataclass(frozen=True, slots=True)
class Clicker:
    """Who clicked a job's button, and where."""

    user_id: int
    guild_id: int | None
    channel_id: int | None

    @classmethod
    def of(cls, interaction: discord.Interaction[Any]) -> Clicker:
        return cls(interaction.user.id, interaction.guild_id, interaction.channel_id)


def check_click(job: Job, clicker: Clicker) -> None:
    """Refuse (:class:`ButtonError`) a click whose job was made in another server or channel (a forged or
    copied custom_id), or that is someone else's stealth job."""
    if not same_place(job_guild_id=job.guild_id, job_channel_id=job.channel_id, guild_id=clicker.guild_id,
                      channel_id=clicker.channel_id):
        raise ButtonError(NOT_HERE)
    if not may_see_job(owner_id=job.user_id, stealth=job.stealth, viewer_id=clicker.user_id):
        raise ButtonError(STEALTH)


def event_line(event: ModerationEvent) -> str:
    """One row of ``/admin moderation``."""
    prompt = event.prompt if len(event.prompt) <= _PROMPT_SHOWN else event.prompt[: _PROMPT_SHOWN - 1] + "…"
    parts = [f"`#{event.id}` <t:{int(event.created_at.timestamp())}:R> {_EVENT_TEXT.get(event.kind, event.kind)}",
             f"<@{event.user_id}>"]
    if event.term:
        parts.append(f"“{event.term}”")
    if event.job_id is not None:
        parts.append(f"job `#{event.job_id}`")
    if prompt:
        parts.append(discord.utils.escape_markdown(prompt))
    if event.appealed_at is not None:
        parts.append(f"**appealed** <t:{int(event.appealed_at.timestamp())}:R>")
    return " · ".join(parts)
