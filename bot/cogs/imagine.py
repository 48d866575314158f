"""``/imagine``: a prompt in, a 2x2 grid out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.accounts import load_account, parse_for_member, precheck
from bot.acks import TRY_AGAIN, acknowledge, is_outage, refuse
from bot.moderation import check_prompts, refuse_prompt
from bot.submission import new_job, placeholder, submit_jobs, withdraw
from domain.catalog import SCHEDULERS
from domain.errors import PromptBlockedError, PromptError, RefusedError
from domain.params import CFG_RANGE, CHAOS_RANGE, REPEAT_RANGE, STEPS_RANGE, STOP_RANGE, STYLIZE_RANGE
from domain.prompt import MAX_INPUT_CHARS, PromptOptions, parse_prompt
from domain.spec import MAX_SEED, JobKind

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


QUALITIES = [
    app_commands.Choice(name=".25 (quarter the steps)", value=0.25),
    app_commands.Choice(name=".5 (half the steps)", value=0.5),
    app_commands.Choice(name="1 (the model's steps)", value=1.0),
    app_commands.Choice(name="2 (twice the steps)", value=2.0),
]
SAMPLERS = [app_commands.Choice(name=name, value=name) for name in SCHEDULERS]


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    # The typed options: each is an inline parameter too (docs/prompt-language.md), with the same range,
    # declared to Discord and checked again by the parser.
    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to draw. Midjourney parameters work too: --ar 16:9 --seed 7 --no text",
        aspect="Aspect ratio of the images (--ar)",
        seed="Seed for reproducible images (--seed, 0 to 4294967295)",
        negative="What to keep out of the images (--no)",
        model="Which model draws the images (--model)",
        stylize="Prompt adherence vs the model's own look (--s, 0 to 1000)",
        chaos="How far apart the four images are (--c, 0 to 100)",
        quality="Denoising steps: more is finer and slower (--q)",
        stop="Stop denoising at this percent for softer images (--stop, 10 to 100)",
        tile="Seamless tiling pattern (--tile)",
        raw="No house style: no house negative prompt (--style raw)",
        repeat="Run the prompt this many times (--r, 1 to 40)",
        steps="Exact denoising steps (--steps, 1 to 150)",
        cfg="Exact guidance scale (--cfg, 0 to 30)",
        sampler="The scheduler (--sampler)",
        lora="LoRAs of that model, with an optional weight: ink or ink:0.8,film",
    )
    @app_commands.choices(aspect=ASPECTS, sampler=SAMPLERS)
    @app_commands.choices(quality=QUALITIES)
    async def imagine(
        self,
        interaction: discord.Interaction[ImagineBot],
        prompt: app_commands.Range[str, 1, MAX_INPUT_CHARS],
        aspect: str | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        negative: app_commands.Range[str, 1, 1000] | None = None,
        model: str | None = None,
        stylize: app_commands.Range[int, STYLIZE_RANGE[0], STYLIZE_RANGE[1]] | None = None,
        chaos: app_commands.Range[int, CHAOS_RANGE[0], CHAOS_RANGE[1]] | None = None,
        quality: float | None = None,
        stop: app_commands.Range[int, STOP_RANGE[0], STOP_RANGE[1]] | None = None,
        tile: bool | None = None,
        raw: bool | None = None,
        repeat: app_commands.Range[int, REPEAT_RANGE[0], REPEAT_RANGE[1]] | None = None,
        steps: app_commands.Range[int, STEPS_RANGE[0], STEPS_RANGE[1]] | None = None,
        cfg: app_commands.Range[float, CFG_RANGE[0], CFG_RANGE[1]] | None = None,
        sampler: str | None = None,
        lora: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        services = self.bot.services
        catalog = services.catalog
        options = PromptOptions(aspect=aspect, seed=seed, negative=negative, model=model, stylize=stylize,
                                chaos=chaos, quality=quality, stop=stop, tile=tile or None, raw=raw or None,
                                repeat=repeat, steps=steps, cfg=cfg, sampler=sampler, lora=lora)
        try:
            parse_prompt(prompt, catalog, options)  # the member's own mistakes: answered at once
        except PromptError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        ack = await acknowledge(interaction, "imagine", "public")
        if ack is None:
            return
        try:
            # The member's plan, settings and fast time; what they would be refused is refused now, cheaply.
            account = await load_account(services, interaction)
            precheck(account, [])
            parsed = parse_for_member(prompt, catalog, options, account)
            check_prompts(account.prompt_filter, parsed.specs)  # the server's content filter
            costs = [services.plans.estimate_ms(spec, JobKind.IMAGINE, catalog.get(spec.model))
                     for spec in parsed.specs]
            lane = parsed.lane or account.lane  # --relax / --fast / --turbo in the prompt win over /settings
            precheck(account, costs, lane)
        except PromptBlockedError as blocked:  # ephemeral, with an Appeal button; written to the audit log
            await refuse_prompt(services, interaction, blocked)
            return
        except (PromptError, RefusedError) as error:  # the member's defaults or plan (their cap on jobs)
            await refuse(interaction, str(error))
            return

        message_ids: list[int | None] = [ack.message_id]
        prompts = parsed.canonicals
        if len(parsed.specs) > 1:
            # One message per job. The first follow-up after a defer would replace the "thinking" message,
            # so that one is edited first and every further job gets a follow-up of its own.
            first = await interaction.edit_original_response(
                content=placeholder(interaction, JobKind.IMAGINE, prompts[0]))
            message_ids = [first.id]
            for text in prompts[1:]:
                extra = await interaction.followup.send(placeholder(interaction, JobKind.IMAGINE, text), wait=True)
                message_ids.append(extra.id)

        new_jobs = [
            new_job(interaction, kind=JobKind.IMAGINE, spec=spec, lane=lane, prompt=prompts[index],
                    idem_key=f"slash:{interaction.id}:{index}", message_id=message_ids[index],
                    estimated_ms=costs[index])
            for index, spec in enumerate(parsed.specs)
        ]
        try:
            results = await submit_jobs(services, new_jobs, interaction, account=account, lane=lane)
        except RefusedError as error:  # the submit transaction saw what the snapshot did not (a race)
            await withdraw(interaction, message_ids[1:], str(error))
            return
        except Exception as error:  # rolled back: nothing was written
            if not is_outage(error):
                raise
            log.warning("/imagine of %s: a service is unreachable (%s)", interaction.user.id, error)
            await withdraw(interaction, message_ids[1:], TRY_AGAIN)
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
