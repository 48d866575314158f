"""A member's account: ``/info``, ``/fast``, ``/relax``, ``/turbo``, ``/settings``, ``/subscribe``; and the
gateway's entitlement events, which keep Discord premium subscriptions current in the database.

Every answer is ephemeral: it is about the member who asked. Each command is acknowledged (an ephemeral
"thinking…") before it reads anything; its answer replaces that.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy.orm import Session

from bot.accounts import entitlement_info, load_account, requester_of
from bot.acks import acknowledge, refuse
from bot.cogs.imagine import ASPECTS
from db import plans as plans_db
from db.models import Job
from db.plans import Account, Requester
from domain.errors import DomainError, NotAllowedError
from domain.lanes import check_lane_allowed, describe_lane, renewal_text
from domain.plans import PlanBook, format_ms
from domain.spec import Lane

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

#: Jobs /info lists (the rest are counted).
_JOBS_SHOWN = 10
_PROMPT_SHOWN = 60
LANES = [app_commands.Choice(name=lane.value, value=lane.value) for lane in (Lane.FAST, Lane.RELAX, Lane.TURBO)]
_LANE_TEXT = {
    Lane.FAST: "Fast mode: your jobs use your fast time ({left} left).",
    Lane.RELAX: "Relax mode: your jobs use no fast time, and start after fast and turbo jobs.",
    Lane.TURBO: "Turbo mode: your jobs start first and use twice the fast time ({left} left).",
}


@dataclass(frozen=True, slots=True)
class Info:
    account: Account
    jobs: list[tuple[Job, int]]


def _load_info(*, session: Session, requester: Requester, book: PlanBook, now: datetime) -> Info:
    account = plans_db.load_account(session=session, requester=requester, book=book, now=now)
    return Info(account, plans_db.user_jobs(session=session, user_id=requester.user_id, limit=_JOBS_SHOWN + 1))


def _day(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d} (<t:{int(at.timestamp())}:R>)"


def _job_line(job: Job, position: int) -> str:
    prompt = job.prompt if len(job.prompt) <= _PROMPT_SHOWN else job.prompt[: _PROMPT_SHOWN - 1] + "…"
    if job.state == "running":
        where = f"running, {int(100 * job.progress_step / job.progress_total)}%" if job.progress_total else "starting"
    else:
        where = "next in line" if position == 0 else f"waiting, position {position + 1}"
    return f"- `#{job.id}` {job.lane} · {where} · {prompt}"


def info_content(info: Info) -> str:
    """The text of /info: plan, renewal, fast time, lane, visibility, jobs."""
    account = info.account
    plan, balance, period = account.plan, account.balance, account.resolved.period
    source = account.resolved.source.detail
    lines = [f"**Plan:** {plan.display_name}" + (f" ({source})" if source else "")]
    ends = account.resolved.source.expires_at
    if ends is not None and (period.end is None or ends <= period.end):
        # A grant that ends before its period would renew: say when it ends, not a renewal it will not see.
        last_day = ends - timedelta(microseconds=1)
        lines.append(f"**Ends:** {last_day.astimezone(UTC):%Y-%m-%d} (<t:{int(ends.timestamp())}:R>), the last day "
                     "of this grant; then the plan your roles or subscription give, or the default one")
    elif period.end is not None:
        lines.append(f"**Renews:** {_day(period.end)}")
    else:
        lines.append("**Renews:** never (this plan's fast time is given once)")
    held = f", {format_ms(balance.reserved_ms)} held for waiting jobs" if balance.reserved_ms else ""
    lines.append(
        f"**Fast time:** {format_ms(balance.used_ms)} used of {format_ms(balance.limit_ms)}, "
        f"**{format_ms(balance.left_ms)} left**{held}"
    )
    lines.append(f"**Lane:** {describe_lane(account.lane, plan, balance.left_ms)}")
    lines.append(f"**Visibility:** {'stealth' if account.user.stealth and plan.stealth else 'public'}")
    running = sum(1 for job, _ in info.jobs if job.state == "running")
    waiting = len(info.jobs) - running
    if not info.jobs:
        lines.append("**Jobs:** none waiting or running")
    else:
        more = "+" if len(info.jobs) > _JOBS_SHOWN else ""
        lines.append(f"**Jobs:** {running} running, {waiting}{more} waiting")
        lines += [_job_line(job, position) for job, position in info.jobs[:_JOBS_SHOWN]]
    if account.banned:
        lines.append(f"**Banned:** {account.ban_reason or 'yes'}")
    return "\n".join(lines)


def settings_content(account: Account) -> str:
    user = account.user
    return "\n".join([
        "**Your settings**",
        f"Lane: {describe_lane(account.lane, account.plan, account.left_ms)}",
        f"Default model: {user.default_model or 'the server default'}",
        f"Default aspect: {user.default_aspect or '1:1'}",
        f"Default stylize: {user.default_stylize if user.default_stylize is not None else 'the model default'}",
        f"Visibility: {'stealth' if user.stealth else 'public'}",
        f"Remix: {'on (buttons open the prompt to edit first)' if user.remix else 'off'}",
    ])


def subscribe_content(book: PlanBook, current: str) -> str:
    lines = ["**Plans**"]
    for plan in book.ranked():
        price = f" ({plan.price})" if plan.price else ""
        mine = " ← your plan" if plan.name == current else ""
        lines.append(f"- **{plan.display_name}**{price}: {plan.summary()}{mine}")
    if book.sku_ids:
        lines.append("Subscribe with a button below; your plan changes as soon as Discord confirms it.")
    else:
        lines.append("Ask this server's admins about plans: they can give you one with a role or a grant.")
    return "\n".join(lines)


def subscribe_view(book: PlanBook) -> discord.ui.View | None:
    """A premium button for each SKU the plans file names (Discord shows the SKU's name and price)."""
    skus = book.sku_ids[:25]
    if not skus:
        return None
    view = discord.ui.View(timeout=None)
    for sku in skus:
        view.add_item(discord.ui.Button(sku_id=sku))
    return view


class AccountCog(commands.Cog, name="Account"):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[ImagineBot], /) -> bool:  # type: ignore[override]
        """Every command here: acknowledged first, then the member's rate limit (``bot.acks``)."""
        return await acknowledge(interaction, interaction.command.name if interaction.command else "account") \
            is not None

    async def _account(self, interaction: discord.Interaction[ImagineBot]) -> Account:
        return await load_account(self.bot.services, interaction)

    async def _set(self, interaction: discord.Interaction[ImagineBot], **changes: Any) -> Account:
        await self.bot.services.db.run(plans_db.update_settings, user_id=interaction.user.id,
                                       name=interaction.user.name, **changes)
        return await self._account(interaction)

    @app_commands.command(name="info", description="Your plan, fast time left, lane and jobs")
    async def info(self, interaction: discord.Interaction[ImagineBot]) -> None:
        services = self.bot.services
        info = await services.db.run(_load_info, requester=requester_of(interaction), book=services.plans,
                                     now=datetime.now(UTC))
        await interaction.followup.send(info_content(info), ephemeral=True)

    async def _lane(self, interaction: discord.Interaction[ImagineBot], lane: Lane) -> None:
        account = await self._account(interaction)
        try:
            check_lane_allowed(lane, account.plan)
        except NotAllowedError as error:
            await refuse(interaction, str(error))
            return
        account = await self._set(interaction, lane=lane.value)
        await interaction.followup.send(_LANE_TEXT[lane].format(left=format_ms(account.left_ms)), ephemeral=True)

    @app_commands.command(name="fast", description="Run your jobs in fast mode (uses your fast time)")
    async def fast(self, interaction: discord.Interaction[ImagineBot]) -> None:
        await self._lane(interaction, Lane.FAST)

    @app_commands.command(name="relax", description="Run your jobs in relax mode (free, after fast jobs)")
    async def relax(self, interaction: discord.Interaction[ImagineBot]) -> None:
        await self._lane(interaction, Lane.RELAX)

    @app_commands.command(name="turbo", description="Run your jobs in turbo mode (first, twice the fast time)")
    async def turbo(self, interaction: discord.Interaction[ImagineBot]) -> None:
        await self._lane(interaction, Lane.TURBO)

    @app_commands.command(name="settings", description="Your defaults: model, aspect, stylize, lane, stealth, remix")
    @app_commands.describe(
        model="Model for your prompts that name none",
        aspect="Aspect ratio for your prompts that give none",
        stylize="Stylize for your prompts that give none (0 to 1000)",
        lane="Where your jobs run: fast, relax or turbo",
        stealth="Keep your jobs out of public listings (plans with stealth)",
        remix="Edit the prompt before V, 🔄, Vary, Zoom, Pan and Vary (Region) start their job",
        reset="Forget your default model, aspect and stylize",
    )
    @app_commands.choices(aspect=ASPECTS, lane=LANES)
    async def settings(
        self,
        interaction: discord.Interaction[ImagineBot],
        model: str | None = None,
        aspect: str | None = None,
        stylize: app_commands.Range[int, 0, 1000] | None = None,
        lane: str | None = None,
        stealth: bool | None = None,
        remix: bool | None = None,
        reset: bool = False,
    ) -> None:
        services = self.bot.services
        account = await self._account(interaction)
        changes: dict[str, Any] = {}
        try:
            if reset:
                changes.update(default_model=None, default_aspect=None, default_stylize=None)
            if model is not None:
                changes["default_model"] = services.catalog.get(model).name
            if aspect is not None:
                changes["default_aspect"] = aspect
            if stylize is not None:
                changes["default_stylize"] = stylize
            if lane is not None:
                check_lane_allowed(Lane(lane), account.plan)
                changes["lane"] = lane
            if stealth is not None:
                if stealth and not account.plan.stealth:
                    raise NotAllowedError(
                        f"Your plan ({account.plan.display_name}) has no stealth mode. "
                        "Use `/subscribe` to see the plans that include it."
                    )
                changes["stealth"] = stealth
            if remix is not None:
                changes["remix"] = remix
        except DomainError as error:
            await refuse(interaction, str(error))
            return
        if changes:
            account = await self._set(interaction, **changes)
        await interaction.followup.send(settings_content(account), ephemeral=True)

    @settings.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction[ImagineBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=p.name, value=p.name) for p in self.bot.services.catalog.search(current)]

    @app_commands.command(name="subscribe", description="The plans, and how to get one")
    async def subscribe(self, interaction: discord.Interaction[ImagineBot]) -> None:
        services = self.bot.services
        account = await self._account(interaction)
        content = subscribe_content(services.plans, account.plan.name)
        if account.resolved.period.end is not None:
            content += f"\nYour fast time {renewal_text(account.resolved.period)}."
        view = subscribe_view(services.plans)
        if view is None:
            await interaction.followup.send(content, ephemeral=True)
        else:
            await interaction.followup.send(content, view=view, ephemeral=True)

    # -- Discord premium subscriptions -------------------------------------------------------------------

    async def _record(self, entitlement: discord.Entitlement, *, deleted: bool = False) -> None:
        info = entitlement_info(entitlement)
        if deleted:
            info = dataclasses.replace(info, deleted=True)
        await self.bot.services.db.run(plans_db.record_entitlement, entitlement=info)
        log.info("entitlement %s (SKU %s, user %s): %s", info.id, info.sku_id, info.user_id,
                 "deleted" if info.deleted else f"ends {info.ends_at}")

    @commands.Cog.listener()
    async def on_entitlement_create(self, entitlement: discord.Entitlement) -> None:
        await self._record(entitlement)

    @commands.Cog.listener()
    async def on_entitlement_update(self, entitlement: discord.Entitlement) -> None:
        await self._record(entitlement)

    @commands.Cog.listener()
    async def on_entitlement_delete(self, entitlement: discord.Entitlement) -> None:
        await self._record(entitlement, deleted=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(AccountCog(bot))
