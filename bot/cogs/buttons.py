"""The buttons under job messages: U1–U4, V1–V4, 🔄, and Vary / Upscale / Recipe under an upscaled image.

Each click (but the recipe) is a job whose parent is the image it works on (``jobs.parent_image_id``).
What job a button makes is decided by :mod:`domain.actions`; this module reads the parent from the database,
submits the child and posts its message.

Who may click: anyone who can see the message, in the channel where the job was made (a custom_id copied
or forged to name a job of another server or channel is refused), except on a stealth job, whose buttons
(its recipe included) are its owner's alone (``bot.moderation.check_click``). The job is the clicker's: it
is queued in their lane, charged to their plan, and its message mentions them. (Midjourney lets only the
author use their buttons; on a self-hosted server building on each other's images is the point, and nobody
can spend another member's time this way.) The recipe answers only the clicker. Cancel, under a queued or
running job, is the one button only the job's own member may use: a queued job is cancelled at once and
refunded, a running one stops at its worker's next step (then refunded); its message then says
"(cancelled)", with no buttons.

A click, answered within Discord's 3 seconds:

1. a custom_id this bot did not make: an ephemeral message at once;
2. acknowledge (a deferred update: nothing shows yet), then the member's rate limit (``bot.acks``);
3. read the parent job and image; refuse a job of another channel or someone else's stealth job, one that
   failed, was cancelled or is gone, a tile out of range, an image no longer stored (ephemerally: no job,
   no charge);
4. a second click of the same button by the same member within ``DOUBLE_CLICK_S`` (Discord's timestamps) is
   a double click: it makes no second job. Every other click makes a new job, as in Midjourney (🔄, V1–V4
   and Vary draw a new seed each time). U1–U4 on a tile the clicker already upscaled (waiting, running or
   done) points to that upscale instead: the same tile, method and seed give the same pixels, so drawing
   it again would only spend their GPU time;
5. the clicker's plan: refuse what it already shows would be refused (banned, no fast time, too many jobs);
6. post the job's message as a follow-up in the channel ("**prompt** - Image #2 @member"), submit the job
   with that message, and hand it to :mod:`bot.delivery` as /imagine does. A used U button turns blurple
   on the grid (the grid's components are edited), as Midjourney marks it.

Custom Zoom and Vary (Region), and with Remix on the buttons that redraw, answer with a modal instead
(:mod:`bot.cogs.canvas`); its submit comes back here (:meth:`Buttons.submit_edited`) for steps 3 to 6.

This feature registers :class:`~bot.components.JobButton` (``add_dynamic_items``) when it loads, and takes
its clicks as the client event ``job_button``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands
from sqlalchemy.orm import Session

from bot.accounts import load_account, precheck
from bot.acks import TRY_AGAIN, acknowledge, is_outage, refuse
from bot.components import JobButton, grid_view
from bot.moderation import Clicker, check_click
from bot.render import Recipe, canvas_label, job_detail, recipe_content
from bot.submission import new_job, placeholder, release_slots, submit_jobs
from db import jobs as jobs_db
from db.models import Image as ImageRow
from domain.actions import (
    ALREADY_FINISHED,
    IMAGE_GONE,
    JOB_GONE,
    Action,
    ButtonError,
    ButtonRef,
    Edit,
    SourceImage,
    check_cancel,
    check_parent,
    child_spec,
    rerolls_source,
    source_index,
)
from domain.errors import DomainError
from domain.prompt import canonical_prompt
from domain.spec import MAX_SEED, JobKind, JobSpec, JobState

if TYPE_CHECKING:
    from bot.client import ImagineBot

__all__ = ["Buttons"]

log = logging.getLogger(__name__)

SOMETHING_WRONG = "Something went wrong on our side. Please try again in a moment."
CANCELLING = "Cancelling… the job stops at its next step."
#: Upscales followed back from an image to the grid it came from (the recipe); a guard, not a real limit.
_MAX_LINEAGE = 32
_GRIDS = frozenset({JobKind.IMAGINE, JobKind.REROLL, JobKind.VARY})


@dataclass(frozen=True, slots=True)
class _Click:
    """What a click needs from the database."""

    parent_kind: JobKind
    parent_spec: JobSpec
    source: SourceImage
    #: The child's ``parent_image_id``: the image it works on (for a reroll, the grid's source or first tile).
    lineage_image_id: int | None
    #: The image number shown on the child's message (U2 -> 2), when the source is a grid tile.
    image_number: int | None
    #: The job this member made from this button moments ago (a double click), if any.
    double_click_of: int | None
    #: The source image's row id, and the tiles of the grid already upscaled (by anyone).
    image_id: int
    upscaled: frozenset[int]


def _image(session: Session, image_id: int | None) -> ImageRow | None:
    return jobs_db.get_image(session=session, image_id=image_id) if image_id is not None else None


def _read_click(*, session: Session, ref: ButtonRef, clicker: Clicker, click_key: str, interaction_id: int) -> _Click:
    parent = jobs_db.get(session=session, job_id=ref.job_id)
    if parent is None:
        raise ButtonError(JOB_GONE)
    check_click(parent, clicker)  # made in this channel; not someone else's stealth job
    user_id = clicker.user_id
    check_parent(JobState(parent.state))
    kind = JobKind(parent.kind)
    images = jobs_db.images_of(session=session, job_id=parent.id)
    image = images[source_index(ref, kind, len(images))]
    if ref.action is Action.REDO_UPSCALE:  # the upscale that made this image, again from its source
        source = _image(session, parent.parent_image_id)
        if source is None:
            raise ButtonError(IMAGE_GONE)
        image = source
    lineage: int | None = image.id
    if rerolls_source(ref.action, kind):
        lineage = parent.parent_image_id  # the rerolled grid is drawn from the same source again
    existing = jobs_db.same_click(session=session, user_id=user_id, click_key=click_key,
                                  interaction_id=interaction_id)
    upscaled = frozenset(jobs_db.upscaled_tiles(session=session, job_id=parent.id)) if kind in _GRIDS else frozenset()
    return _Click(
        parent_kind=kind,
        parent_spec=JobSpec.from_dict(parent.spec),
        source=SourceImage(image.storage_key, image.seed, image.width, image.height),
        lineage_image_id=lineage,
        image_number=image.index + 1 if kind is not JobKind.UPSCALE else None,
        double_click_of=existing.id if existing is not None else None,
        image_id=image.id,
        upscaled=upscaled,
    )


@dataclass(frozen=True, slots=True)
class _Upscaled:
    """Where a member's earlier upscale of a tile is shown."""

    job_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None


def _earlier_upscale(*, session: Session, user_id: int, image_id: int, mode: str | None) -> _Upscaled | None:
    job = jobs_db.upscale_of(session=session, user_id=user_id, image_id=image_id, mode=mode)
    if job is None:
        return None
    return _Upscaled(job.id, job.guild_id, job.channel_id, job.message_id)


def _request_cancel(*, session: Session, ref: ButtonRef, clicker: Clicker) -> JobState:
    """Cancel the clicker's own job: ``CANCELLED`` (it was queued), or ``RUNNING`` (its worker will stop it)."""
    job = jobs_db.get(session=session, job_id=ref.job_id)
    if job is None:
        raise ButtonError(JOB_GONE)
    check_click(job, clicker)
    check_cancel(owner_id=job.user_id, user_id=clicker.user_id, state=JobState(job.state))
    state = jobs_db.request_cancel(session=session, job_id=job.id)
    if state is None:  # it ended between the read and the update
        raise ButtonError(ALREADY_FINISHED)
    jobs_db.notify(session=session, job_id=job.id)
    return state


@dataclass(frozen=True, slots=True)
class _RecipeRows:
    spec: JobSpec
    width: int
    height: int
    upscales: tuple[tuple[str, int, int, int], ...]
    variation_strength: float | None
    canvas: tuple[str, int, int] | None


def _read_recipe(*, session: Session, ref: ButtonRef, clicker: Clicker) -> _RecipeRows:
    job = jobs_db.get(session=session, job_id=ref.job_id)
    if job is None:
        raise ButtonError(JOB_GONE)
    check_click(job, clicker)  # a stealth job's recipe is its owner's alone
    check_parent(JobState(job.state))
    images = jobs_db.images_of(session=session, job_id=job.id)
    image = images[source_index(ref, JobKind(job.kind), len(images))]
    spec = JobSpec.from_dict(job.spec)
    # Follow the upscales back to the grid the image was drawn in.
    upscales: list[tuple[str, int, int, int]] = []
    current = job
    while JobKind(current.kind) is JobKind.UPSCALE and len(upscales) < _MAX_LINEAGE:
        step = JobSpec.from_dict(current.spec)
        upscales.append((current.upscale_method or "", step.upscale_factor or 1, step.width, step.height))
        source = None
        if current.parent_image_id is not None:
            source = jobs_db.get_image(session=session, image_id=current.parent_image_id)
        parent = jobs_db.get(session=session, job_id=source.job_id) if source is not None else None
        if parent is None:
            break
        current = parent
    drawn = JobSpec.from_dict(current.spec)
    drawn_kind = JobKind(current.kind)
    variation = drawn.strength if drawn_kind is JobKind.VARY else None
    canvas = None
    if drawn_kind.is_canvas:
        source = _image(session, current.parent_image_id)
        label = canvas_label(drawn_kind, zoom=drawn.zoom, pan=drawn.pan, region=drawn.region)
        canvas = (label, source.width, source.height) if source is not None else (label, 0, 0)
    return _RecipeRows(spec, image.width, image.height, tuple(reversed(upscales)), variation, canvas)


class Buttons(commands.Cog):
    """Turns clicks on job buttons into jobs (see the module docstring)."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(JobButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(JobButton)

    @commands.Cog.listener()
    async def on_job_button(self, interaction: discord.Interaction[ImagineBot], button: JobButton) -> None:
        """A click on a :class:`~bot.components.JobButton`. Must answer within 3 seconds."""
        if button.ref is None:
            await interaction.response.send_message(button.error or "That button doesn't work.", ephemeral=True)
            return
        ref = button.ref
        if ref.action.asks or ref.action.remixes:
            # Custom Zoom, Vary (Region), and Remix: a modal must be the first answer (bot.cogs.canvas).
            canvas = self.bot.get_cog("Canvas")
            opens_modal = getattr(canvas, "open_modal", None)
            if opens_modal is not None and await opens_modal(interaction, ref):
                return
        # The recipe answers in a message of its own; other clicks with the job's own message.
        if not await acknowledge(interaction, "button", "ephemeral" if ref.action is Action.RECIPE else "update"):
            return
        if ref.action is Action.RECIPE:
            await self._answering(interaction, ref, self._send_recipe(interaction, ref))
        elif ref.action is Action.CANCEL:
            await self._answering(interaction, ref, self._cancel(interaction, ref))
        else:
            await self._answering(interaction, ref, self._submit(interaction, ref))

    async def submit_edited(self, interaction: discord.Interaction[ImagineBot], ref: ButtonRef, edit: Edit) -> None:
        """A modal's submit (already acknowledged): the button's job, with what the modal added.

        Each submit is its own job (its key is ``modal:<message id>:<custom_id>`` and the submit's id).
        """
        message_id = interaction.message.id if interaction.message is not None else 0
        click_key = f"modal:{message_id}:{ref.custom_id}"
        await self._answering(interaction, ref, self._submit(interaction, ref, edit=edit, click_key=click_key))

    async def _answering(
        self, interaction: discord.Interaction[ImagineBot], ref: ButtonRef, work: Coroutine[Any, Any, None]
    ) -> None:
        """Run an acknowledged click's work; a refusal or a fault is told to the clicker (ephemerally)."""
        try:
            await work
        except DomainError as error:  # ButtonError, or a refusal by the member's plan
            await refuse(interaction, str(error))
        except Exception as error:
            if is_outage(error):
                log.warning("click on %s by %s: a service is unreachable (%s)", ref.custom_id, interaction.user.id,
                            error)
                await refuse(interaction, TRY_AGAIN)
                return
            log.exception("click on %s by %s failed", ref.custom_id, interaction.user.id)
            await refuse(interaction, SOMETHING_WRONG)

    async def _send_recipe(self, interaction: discord.Interaction[ImagineBot], ref: ButtonRef) -> None:
        await interaction.followup.send(await self._recipe(ref, Clicker.of(interaction)), ephemeral=True)

    async def _submit(self, interaction: discord.Interaction[ImagineBot], ref: ButtonRef, *, edit: Edit | None = None,
                      click_key: str | None = None) -> None:
        services = self.bot.services
        message_id = interaction.message.id if interaction.message is not None else 0
        click_key = click_key or f"button:{message_id}:{ref.custom_id}"
        click = await services.db.run(_read_click, ref=ref, clicker=Clicker.of(interaction), click_key=click_key,
                                      interaction_id=interaction.id)
        if click.double_click_of is not None:
            log.info("click on %s by %s: a double click of job %s", ref.custom_id, interaction.user.id,
                     click.double_click_of)
            return  # its job's message is already below
        if not await asyncio.to_thread(services.store.exists, click.source.key):
            raise ButtonError(IMAGE_GONE)
        preset = services.catalog.find(click.parent_spec.model)
        if preset is None:
            raise ButtonError(f"The model `{click.parent_spec.model}` of that image is no longer served here.")
        kind, spec = child_spec(
            click.parent_spec, click.parent_kind, ref.action,
            source=click.source, new_seed=secrets.randbelow(MAX_SEED + 1), preset=preset, edit=edit,
        )
        if ref.action is Action.UPSCALE:
            earlier = await services.db.run(_earlier_upscale, user_id=interaction.user.id,
                                            image_id=click.image_id, mode=spec.upscale_mode)
            if earlier is not None:
                raise ButtonError(_already_upscaled(click.image_number, earlier))
        # The clicker's plan and lane: refuse now what their account already shows would be refused.
        account = await load_account(services, interaction)
        estimate = services.plans.estimate_ms(spec, kind, preset)
        [choice] = precheck(account, [estimate])
        lane = choice.lane
        prompt = canonical_prompt(spec, services.catalog)
        detail = job_detail(kind, image_number=click.image_number if ref.action.takes_tile else None,
                            upscale_mode=spec.upscale_mode, strength=spec.strength, zoom=spec.zoom, pan=spec.pan)
        waiting = await interaction.followup.send(placeholder(interaction, kind, prompt, detail=detail), wait=True)

        new = new_job(interaction, kind=kind, spec=spec, lane=lane, prompt=prompt,
                      idem_key=f"{click_key}:{interaction.id}", message_id=waiting.id, estimated_ms=estimate,
                      parent_image_id=click.lineage_image_id, click_key=click_key)
        try:
            [(job, created, _position)] = await submit_jobs(services, [new], interaction, account=account)
        except Exception:
            await _delete_quietly(waiting)
            raise
        if not created:  # the other click of a double click got there first
            await _delete_quietly(waiting)
            return
        log.info("job %s: %s of job %s by %s", job.id, ref.action.value, ref.job_id, interaction.user.id)
        self.bot.delivery.wake(job.id)
        if ref.action is Action.UPSCALE and ref.tile is not None and ref.tile not in click.upscaled:
            await self._mark_used(interaction, ref.job_id, click.upscaled | {ref.tile})

    async def _mark_used(self, interaction: discord.Interaction[ImagineBot], grid_id: int,
                         upscaled: frozenset[int]) -> None:
        """Show the grid's used U buttons (the clicked message is the interaction's original)."""
        try:
            await interaction.edit_original_response(view=grid_view(grid_id, upscaled=upscaled))
        except discord.HTTPException as exc:  # cosmetic: the upscale itself is on its way
            log.info("could not mark U buttons of job %s (%s)", grid_id, exc)

    async def _cancel(self, interaction: discord.Interaction[ImagineBot], ref: ButtonRef) -> None:
        state = await self.bot.services.db.run(_request_cancel, ref=ref, clicker=Clicker.of(interaction))
        log.info("job %s: cancel by %s (%s)", ref.job_id, interaction.user.id, state.value)
        self.bot.delivery.wake(ref.job_id)  # a queued job's message says "(cancelled)" now
        if state is JobState.RUNNING:
            await interaction.followup.send(CANCELLING, ephemeral=True)
        elif state is JobState.CANCELLED:
            await release_slots(self.bot.services, [ref.job_id])

    async def _recipe(self, ref: ButtonRef, clicker: Clicker) -> str:
        services = self.bot.services
        rows = await services.db.run(_read_recipe, ref=ref, clicker=clicker)
        spec = rows.spec
        preset = services.catalog.find(spec.model)
        sampler = spec.sampler or (preset.scheduler if preset is not None else "the model's default")
        return recipe_content(Recipe(
            prompt=canonical_prompt(spec, services.catalog),
            model=spec.model,
            sampler=sampler,
            steps=spec.steps,
            guidance=spec.guidance_scale,
            seed=spec.seed,
            width=rows.width,
            height=rows.height,
            upscales=rows.upscales,
            variation_strength=rows.variation_strength,
            job_id=ref.job_id,
            canvas=rows.canvas,
        ))


def _already_upscaled(image_number: int | None, earlier: _Upscaled) -> str:
    what = f"Image #{image_number}" if image_number is not None else "That image"
    where = ""
    if earlier.channel_id is not None and earlier.message_id is not None:
        where = f": https://discord.com/channels/{earlier.guild_id or '@me'}/{earlier.channel_id}/{earlier.message_id}"
    return (f"You already upscaled {what}{where} (job `{earlier.job_id}`). The same tile upscales to the same "
            "image, so use the buttons under that one to vary it or upscale it further.")


async def _delete_quietly(message: discord.WebhookMessage) -> None:
    try:
        await message.delete()
    except discord.HTTPException:
        log.warning("could not delete the unused message %s", message.id, exc_info=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Buttons(bot))
