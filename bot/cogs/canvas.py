"""The buttons that ask something first: Custom Zoom, Vary (Region), and every button under Remix mode.

A modal must be the *first* answer to a click (it cannot follow a defer), and what it shows comes from the
database (the image's prompt, the member's Remix setting). So for these buttons, and only for them, the
click reads one job row and one user row before it answers, bounded by :data:`MODAL_READ_S`: past that, a
Custom Zoom or Vary (Region) click is told to try again, and a Remix-able click goes on without Remix.

- **Custom Zoom**: the prompt (without its ``--ar``), a zoom from 1.0 to 2.0, and an optional ``--ar``.
- **Vary (Region)**: cells of a 3x3 grid and named regions (:mod:`domain.canvas`), and an optional prompt
  for the region (blank keeps the image's; pre-filled with it under Remix).
- **Remix** (``/settings remix``): V1–V4, 🔄, Vary (Strong/Subtle), Zoom Out, Make Square and the pans open
  the prompt, with its parameters, to edit before the job starts.

Opening a modal takes no rate-limit token; its submit does, right after it is acknowledged.
The submit is checked before it is acknowledged: an empty or unreadable prompt, a zoom out of range, a
region of nothing or everything gets an ephemeral message and no job. Then the button's own path makes the
job (:meth:`bot.cogs.buttons.Buttons.submit_edited`) with what the modal added (:class:`domain.actions.Edit`).

Modals live in this process for :data:`MODAL_TIMEOUT_S`; one opened before a restart cannot be submitted
after it (Discord says the interaction failed, and the member clicks the button again). The buttons
themselves are persistent (:class:`bot.components.JobButton`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands
from sqlalchemy.orm import Session

from bot.acks import TRY_AGAIN, acknowledge, is_outage, refuse
from db import jobs as jobs_db
from db.models import User
from domain.actions import Action, ButtonError, ButtonRef, Edit, source_index
from domain.aspect import parse_aspect
from domain.canvas import CELL_NAMES, NAMED_REGIONS, CanvasError, parse_zoom, region_cells
from domain.catalog import Catalog
from domain.errors import PromptError
from domain.prompt import canonical_prompt, parse_prompt
from domain.spec import JobKind, JobSpec, JobState

if TYPE_CHECKING:
    from bot.client import ImagineBot

__all__ = ["MODAL_READ_S", "MODAL_TIMEOUT_S", "Canvas", "JobModal"]

log = logging.getLogger(__name__)

#: The most a click may wait for the database before it must answer (Discord allows 3 s in all).
MODAL_READ_S = 1.5
#: How long an open modal can still be submitted.
MODAL_TIMEOUT_S = 15 * 60.0
#: Discord's longest text input.
_TEXT_INPUT_MAX = 4000
BUSY = "I'm busy right now and couldn't open that. Please click the button again in a moment."
EMPTY_PROMPT = "The prompt is empty. Write what to draw, then submit again."

_TITLES = {
    Action.ZOOM_CUSTOM: "Custom Zoom",
    Action.VARY_REGION: "Vary (Region)",
    Action.VARY: "Remix: Variations",
    Action.REROLL: "Remix: Reroll",
    Action.VARY_STRONG: "Remix: Vary (Strong)",
    Action.VARY_SUBTLE: "Remix: Vary (Subtle)",
    Action.ZOOM_2X: "Remix: Zoom Out 2x",
    Action.ZOOM_1_5X: "Remix: Zoom Out 1.5x",
    Action.SQUARE: "Remix: Make Square",
    Action.PAN_LEFT: "Remix: Pan Left",
    Action.PAN_RIGHT: "Remix: Pan Right",
    Action.PAN_UP: "Remix: Pan Up",
    Action.PAN_DOWN: "Remix: Pan Down",
}


@dataclass(frozen=True, slots=True)
class _Asked:
    remix: bool
    spec: JobSpec


def _read_asked(*, session: Session, ref: ButtonRef, user_id: int) -> _Asked | None:
    """The image's spec and the clicker's Remix setting; None when the button cannot work on that job (the
    button's own path then says why)."""
    job = jobs_db.get(session=session, job_id=ref.job_id)
    if job is None or job.state != JobState.SUCCEEDED:
        return None
    try:
        source_index(ref, JobKind(job.kind), len(jobs_db.images_of(session=session, job_id=job.id)))
    except ButtonError:
        return None
    user = session.get(User, user_id)
    return _Asked(remix=bool(user is not None and user.remix), spec=JobSpec.from_dict(job.spec))


class JobModal(discord.ui.Modal):
    """The modal of one button: the prompt, and Custom Zoom's or Vary (Region)'s own fields."""

    def __init__(self, cog: Canvas, ref: ButtonRef, parent: JobSpec, *, remix: bool) -> None:
        super().__init__(title=_TITLES[ref.action], timeout=MODAL_TIMEOUT_S,
                         custom_id=f"canvas:{ref.job_id}:{ref.action.value}")
        self.cog, self.ref, self.parent = cog, ref, parent
        catalog = cog.bot.services.catalog
        region = ref.action is Action.VARY_REGION
        # Custom Zoom takes its --ar in a field of its own.
        shown = parent.replace(aspect="1:1") if ref.action is Action.ZOOM_CUSTOM else parent
        self.prompt_required = not region
        self.prompt: discord.ui.TextInput[JobModal] = discord.ui.TextInput(
            custom_id="prompt", style=discord.TextStyle.paragraph, max_length=_TEXT_INPUT_MAX,
            required=self.prompt_required,
            default=canonical_prompt(shown, catalog)[:_TEXT_INPUT_MAX] if remix or not region else None,
            placeholder="Leave blank to keep the prompt" if region else None,
        )
        self.zoom: discord.ui.TextInput[JobModal] | None = None
        self.aspect: discord.ui.TextInput[JobModal] | None = None
        self.cells: discord.ui.CheckboxGroup[JobModal] | None = None
        self.regions: discord.ui.Select[JobModal] | None = None
        if ref.action is Action.ZOOM_CUSTOM:
            self.zoom = discord.ui.TextInput(custom_id="zoom", default="2", max_length=6, placeholder="1.0 to 2.0")
            self.aspect = discord.ui.TextInput(custom_id="aspect", required=False, max_length=12,
                                               placeholder="16:9 (blank keeps the shape)")
            self.add_item(discord.ui.Label(text="Zoom out (1.0 to 2.0)", component=self.zoom))
            self.add_item(discord.ui.Label(text="Aspect ratio (--ar), optional", component=self.aspect))
        if region:
            self.cells = discord.ui.CheckboxGroup(
                custom_id="cells", required=False, min_values=0, max_values=len(CELL_NAMES),
                options=[discord.CheckboxGroupOption(label=name.capitalize(), value=str(number))
                         for number, name in enumerate(CELL_NAMES, start=1)],
            )
            self.regions = discord.ui.Select(
                custom_id="regions", required=False, min_values=0, max_values=len(NAMED_REGIONS),
                placeholder="Or whole parts of the image",
                options=[discord.SelectOption(label=name.capitalize(), value=name) for name in NAMED_REGIONS],
            )
            self.add_item(discord.ui.Label(text="Cells to vary (3x3 grid)", component=self.cells))
            self.add_item(discord.ui.Label(text="Named regions to vary", component=self.regions))
        self.add_item(discord.ui.Label(text="Prompt for the region" if region else "Prompt", component=self.prompt))

    def edit(self, catalog: Catalog) -> Edit:
        """What was submitted, checked. Raises :class:`PromptError` or :class:`CanvasError` saying what to change."""
        text = self.prompt.value.strip()
        prompt: JobSpec | None = None
        if text:
            prompt = parse_prompt(text, catalog, max_jobs=1).specs[0]
        elif self.prompt_required:
            raise PromptError(EMPTY_PROMPT)
        zoom = aspect = None
        if self.zoom is not None and self.aspect is not None:
            zoom = parse_zoom(self.zoom.value)
            typed = self.aspect.value.strip().removeprefix("--ar").strip()
            if typed:
                try:
                    aspect = parse_aspect(typed)
                except ValueError as error:
                    raise CanvasError(f"Aspect ratio: {error}") from None
            elif prompt is not None and prompt.aspect != "1:1":  # an --ar written into the prompt instead
                aspect = parse_aspect(prompt.aspect)
            if prompt is not None:
                prompt = prompt.replace(aspect=self.parent.aspect)  # the shape is the zoom's business
        cells: tuple[int, ...] = ()
        if self.cells is not None and self.regions is not None:
            cells = region_cells(self.cells.values, self.regions.values)
        return Edit(prompt=prompt, zoom=zoom, aspect=aspect, cells=cells)

    async def on_submit(self, interaction: discord.Interaction[ImagineBot]) -> None:  # type: ignore[override]
        try:
            edit = self.edit(interaction.client.services.catalog)
        except (PromptError, CanvasError) as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        if not await acknowledge(interaction, "modal", "update"):  # the job's own message follows
            return
        buttons: Any = interaction.client.get_cog("Buttons")
        await buttons.submit_edited(interaction, self.ref, edit)

    async def on_error(self, interaction: discord.Interaction[ImagineBot], error: Exception) -> None:  # type: ignore[override]
        if is_outage(error):
            log.warning("modal %s: a service is unreachable (%s)", self.custom_id, error)
            await refuse(interaction, TRY_AGAIN)
            return
        log.error("modal %s failed", self.custom_id, exc_info=error)
        await refuse(interaction, "Something went wrong on our side. Please try again in a moment.")


class Canvas(commands.Cog):
    """Opens the modals of the buttons that ask (see the module docstring)."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def open_modal(self, interaction: discord.Interaction[ImagineBot], ref: ButtonRef) -> bool:
        """Answer the click with its modal when it has one now; False: the click goes on as a plain click."""
        if not (ref.action.asks or ref.action.remixes):
            return False
        read = self.bot.services.db.run(_read_asked, ref=ref, user_id=interaction.user.id)
        try:
            asked = await asyncio.wait_for(read, MODAL_READ_S)
        except TimeoutError:
            log.warning("click on %s: the database was too slow to open its modal", ref.custom_id)
            if not ref.action.asks:
                return False  # go on without Remix rather than not at all
            await interaction.response.send_message(BUSY, ephemeral=True)
            return True
        if asked is None or not (ref.action.asks or asked.remix):
            return False
        await interaction.response.send_modal(JobModal(self, ref, asked.spec, remix=asked.remix))
        return True


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Canvas(bot))
