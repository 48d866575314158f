"""``/imagine``: a prompt in, a 2x2 grid out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.accounts import load_account, parse_for_member, precheck
from bot.submission import submit_jobs, token_expiry, withdraw
from db.jobs import NewJob
from domain.catalog import Catalog
from domain.errors import PromptError, RefusedError
from domain.prompt import MAX_INPUT_CHARS, PromptOptions, canonical_prompt
from domain.spec import MAX_SEED, JobKind, JobSpec, queue_name

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

ASPECTS = [
    app_commands.Choice(name="1:1 square", value="1:1"),
    app_commands.Choice(name="3:2 landscape", value="3:2"),
    app_commands.Choice(name="2:3 portrait", value="2:3"),
    app_commands.Choice(name="16:9 wide", value="16:9"),
    app_commands.Choice(name="9:16 tall", value="9:16"),
    app_commands.Choice(name="4:5 portrait", value="4:5"),
    app_commands.Choice(name="5:4 landscape", value="5:4"),
    app_commands.Choice(name="21:9 cinema", value="21:9"),
]


def _placeholder(spec: JobSpec, catalog: Catalog) -> str:
    return f"**{canonical_prompt(spec, catalog)}** (Waiting to start)"


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to draw. Midjourney parameters work too: --ar 16:9 --seed 7 --no text",
        aspect="Aspect ratio of the images",
        seed="Seed for reproducible images (0 to 4294967295)",
        negative="What to keep out of the images",
        model="Which model draws the images",
        lora="LoRAs of that model, with an optional weight: ink or ink:0.8,film",
    )
    @app_commands.choices(aspect=ASPECTS)
    async def imagine(
        self,
        interaction: discord.Interaction[ImagineBot],
        prompt: app_commands.Range[str, 1, MAX_INPUT_CHARS],
        aspect: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        negative: app_commands.Range[str, 1, 1000] | None = None,
        model: str | None = None,
        lora: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        services = self.bot.services
        catalog = services.catalog
        options = PromptOptions(aspect=aspect, seed=seed, negative=negative, model=model, lora=lora)
        try:
            # The member's plan, settings and fast time; what they would be refused is refused now, cheaply.
            account = await load_account(services, interaction)
            precheck(account, [])
            parsed = parse_for_member(prompt, catalog, options, account)
            costs = [services.plans.estimate_ms(spec, JobKind.IMAGINE, catalog.get(spec.model))
                     for spec in parsed.specs]
            lane = parsed.lane or account.lane  # --relax / --fast / --turbo in the prompt win over /settings
            precheck(account, costs, lane)
        except (PromptError, RefusedError) as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return

        response = await interaction.response.defer(thinking=True)
        message_ids: list[int | None] = [response.message_id if response else None]
        if len(parsed.specs) > 1:
            # One message per job. The first follow-up after a defer would replace the "thinking" message,
            # so that one is edited first and every further job gets a follow-up of its own.
            first = await interaction.edit_original_response(content=_placeholder(parsed.specs[0], catalog))
            message_ids = [first.id]
            for spec in parsed.specs[1:]:
                extra = await interaction.followup.send(_placeholder(spec, catalog), wait=True)
                message_ids.append(extra.id)

        new_jobs = [
            NewJob(
                user_id=interaction.user.id,
                user_name=interaction.user.name,
                kind=JobKind.IMAGINE,
                spec=spec,
                lane=lane,
                queue=queue_name(spec.model, lane),
                idem_key=f"slash:{interaction.id}:{index}",
                prompt=canonical_prompt(spec, catalog),
                guild_id=interaction.guild_id,
                guild_name=interaction.guild.name if interaction.guild else "",
                channel_id=interaction.channel_id,
                interaction_id=interaction.id,
                interaction_token=interaction.token,
                token_expires_at=token_expiry(interaction.created_at),
                message_id=message_ids[index],
                estimated_ms=costs[index],
                upload_limit=interaction.filesize_limit,
            )
            for index, spec in enumerate(parsed.specs)
        ]
        try:
            results = await submit_jobs(services, new_jobs, interaction, account=account, lane=lane)
        except RefusedError as error:  # the submit transaction saw what the snapshot did not (a race)
            await withdraw(interaction, message_ids[1:], str(error))
            return
        for job, _created, _position in results:
            self.bot.delivery.wake(job.id)

    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction[ImagineBot], current: str
    ) -> list[app_commands.Choice[str]]:
        presets = self.bot.services.catalog.search(current)
        return [
            app_commands.Choice(name=(f"{p.name} — {p.description}" if p.description else p.name)[:100], value=p.name)
            for p in presets
        ]

    @imagine.autocomplete("lora")
    async def lora_autocomplete(
        self, interaction: discord.Interaction[ImagineBot], current: str
    ) -> list[app_commands.Choice[str]]:
        """The LoRAs of the model chosen so far (else the default), after what is already typed: ``ink:0.8,f``
        offers ``ink:0.8,film``."""
        preset = self.bot.services.catalog.find(getattr(interaction.namespace, "model", None))
        if preset is None:
            return []
        done, _, typing = current.rpartition(",")
        prefix = f"{done}," if done else ""
        needle = typing.strip().lower()
        return [
            app_commands.Choice(
                name=(f"{lora.name} — {lora.description}" if lora.description else lora.name)[:100],
                value=(prefix + lora.name)[:100],
            )
            for lora in preset.loras if lora.name.lower().startswith(needle) or needle in lora.description.lower()
        ][:25]


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
