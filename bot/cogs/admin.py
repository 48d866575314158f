"""``/admin``: grants of plans, role plans, a member's usage, bans. For server managers and operators only
(see ``bot/checks.py``); every answer is ephemeral, every refusal changes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import is_admin
from db import plans as plans_db
from domain.errors import DomainError
from domain.plans import MAX_GRANT_DAYS, format_ms, grant_expiry

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


def usage_content(report: dict[str, Any]) -> str:
    """``/admin usage``: the same facts as ``imagine admin usage --json``, for people."""
    fast = report["fast_ms"]
    period = report["period"]
    end = period["end"][:10] if period["end"] else "never renews"
    jobs = ", ".join(f"{count} {state}" for state, count in report["jobs"].items())
    grants = "; ".join(
        f"{g['plan']} until {g['expires_at'][:10] if g['expires_at'] else 'revoked'}" for g in report["grants"]
    ) or "none"
    lines = [
        f"**<@{report['user_id']}>** ({report['name'] or 'unknown'}): plan **{report['plan_display_name']}**, "
        f"period {period['start'][:10]} → {end}",
        f"Fast time: {format_ms(fast['used'])} used, {format_ms(fast['reserved'])} held, "
        f"{format_ms(fast['limit'] - fast['used'] - fast['reserved'])} left of {format_ms(fast['limit'])}",
        f"Jobs: {jobs} (this period: {report['period_jobs']}, {report['period_gpu_seconds']:.1f} GPU seconds)",
        f"Lane: {report['lane']} · Grants: {grants}",
        f"Banned: {report['ban_reason'] or 'yes'}" if report["banned"] else "Banned: no",
    ]
    return "\n".join(lines)


@app_commands.default_permissions(manage_guild=True)
class Admin(commands.GroupCog, group_name="admin", group_description="Plans, usage and bans (server managers)"):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    async def _reply(self, interaction: discord.Interaction[ImagineBot], text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="grant", description="Give a member a plan, for some days or until revoked")
    @app_commands.describe(
        user="Who gets the plan", plan="The plan's name", days="For how many days (default: until revoked)"
    )
    @is_admin()
    async def grant(
        self,
        interaction: discord.Interaction[ImagineBot],
        user: discord.User,
        plan: str,
        days: app_commands.Range[int, 1, MAX_GRANT_DAYS] | None = None,
    ) -> None:
        services = self.bot.services
        try:
            expires_at = grant_expiry(datetime.now(UTC), days)
            grant = await services.db.run(plans_db.grant_plan, user_id=user.id, plan=plan, book=services.plans,
                                          granted_by=interaction.user.id, expires_at=expires_at)
        except DomainError as error:
            await self._reply(interaction, str(error))
            return
        until = f"until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else "until revoked"
        log.info("admin %s granted %s to %s %s", interaction.user.id, grant.plan, user.id, until)
        await self._reply(interaction, f"Granted **{services.plans.get(grant.plan).display_name}** to "
                                       f"{user.mention} {until}.")

    @app_commands.command(name="revoke", description="End a member's granted plan now")
    @is_admin()
    async def revoke(self, interaction: discord.Interaction[ImagineBot], user: discord.User) -> None:
        count = await self.bot.services.db.run(plans_db.revoke_grants, user_id=user.id)
        await self._reply(interaction, f"Revoked {user.mention}'s grant." if count else
                          f"{user.mention} has no grant to revoke.")

    @app_commands.command(name="role-plan", description="Members with a role get a plan (no plan: remove)")
    @app_commands.describe(role="The role", plan="The plan its members get; leave out to remove the mapping")
    @is_admin()
    async def role_plan(
        self, interaction: discord.Interaction[ImagineBot], role: discord.Role, plan: str | None = None
    ) -> None:
        services = self.bot.services
        if interaction.guild_id is None:
            await self._reply(interaction, "Role plans belong to a server: use this command in one.")
            return
        try:
            await services.db.run(plans_db.set_role_plan, guild_id=interaction.guild_id, role_id=role.id,
                                  plan=plan, book=services.plans, set_by=interaction.user.id)
        except DomainError as error:
            await self._reply(interaction, str(error))
            return
        if plan is None:
            await self._reply(interaction, f"Members with {role.mention} no longer get a plan from it.")
        else:
            name = services.plans.get(plan).display_name
            await self._reply(interaction, f"Members with {role.mention} now get **{name}**.")

    @app_commands.command(name="usage", description="A member's plan, fast time and jobs")
    @is_admin()
    async def usage(self, interaction: discord.Interaction[ImagineBot], user: discord.User) -> None:
        services = self.bot.services
        try:
            report = await services.db.run(plans_db.usage_report, user_id=user.id, book=services.plans,
                                           now=datetime.now(UTC))
        except DomainError as error:
            await self._reply(interaction, str(error))
            return
        await self._reply(interaction, usage_content(report))

    @app_commands.command(name="ban", description="Stop a member from using the bot")
    @app_commands.describe(reason="Shown to them when they try")
    @is_admin()
    async def ban(
        self, interaction: discord.Interaction[ImagineBot], user: discord.User,
        reason: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        if user.id == interaction.user.id:
            await self._reply(interaction, "You cannot ban yourself.")
            return
        await self.bot.services.db.run(plans_db.ban, user_id=user.id, by=interaction.user.id, reason=reason)
        log.info("admin %s banned %s (%s)", interaction.user.id, user.id, reason)
        await self._reply(interaction, f"Banned {user.mention}." + (f" Reason: {reason}" if reason else ""))

    @app_commands.command(name="unban", description="Let a banned member use the bot again")
    @is_admin()
    async def unban(self, interaction: discord.Interaction[ImagineBot], user: discord.User) -> None:
        lifted = await self.bot.services.db.run(plans_db.unban, user_id=user.id)
        await self._reply(interaction, f"Unbanned {user.mention}." if lifted else f"{user.mention} is not banned.")

    @grant.autocomplete("plan")
    @role_plan.autocomplete("plan")
    async def plan_autocomplete(
        self, interaction: discord.Interaction[ImagineBot], current: str
    ) -> list[app_commands.Choice[str]]:
        needle = current.strip().lower()
        return [
            app_commands.Choice(name=f"{p.display_name} ({p.name})"[:100], value=p.name)
            for p in self.bot.services.plans.ranked()
            if needle in p.name or needle in p.display_name.lower()
        ][:25]


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Admin(bot))
