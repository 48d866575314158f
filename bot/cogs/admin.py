"""``/admin``: grants of plans, role plans, a member's usage, bans, the content filter, the image policy and
the moderation log. For server managers and operators only (see ``bot/checks.py``): a server's managers
act in that server only, on its members; the operators everywhere. Every answer is ephemeral, every
refusal changes nothing. Each is acknowledged before anything else (``Admin.interaction_check``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.acks import acknowledge
from bot.checks import AdminScope, admin_scope, is_admin
from bot.moderation import event_line
from db import moderation as moderation_db
from db import plans as plans_db
from db.plans import Requester
from domain.errors import DomainError
from domain.moderation import MAX_TERM_CHARS, ImageAction, check_term
from domain.plans import MAX_GRANT_DAYS, format_ms, grant_expiry

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


def _grant_scope(grant: dict[str, Any], report: dict[str, Any]) -> str:
    if grant["guild_id"] is None:
        return "everywhere"
    return "here" if report["guild_id"] is not None else f"server {grant['guild_id']}"


def usage_content(report: dict[str, Any]) -> str:
    """``/admin usage``: the same facts as ``imagine admin usage --json``, for people."""
    fast = report["fast_ms"]
    period = report["period"]
    end = period["end"][:10] if period["end"] else "never renews"
    jobs = ", ".join(f"{count} {state}" for state, count in report["jobs"].items())
    grants = "; ".join(
        f"{g['plan']} until {g['expires_at'][:10] if g['expires_at'] else 'revoked'} ({_grant_scope(g, report)})"
        for g in report["grants"]
    ) or "none"
    where = "in this server" if report["guild_id"] is not None else "in every server"
    lines = [
        f"**<@{report['user_id']}>** ({report['name'] or 'unknown'}) {where}: plan **{report['plan_display_name']}**, "
        f"period {period['start'][:10]} → {end}",
        f"Fast time: {format_ms(fast['used'])} used, {format_ms(fast['reserved'])} held, "
        f"{format_ms(fast['limit'] - fast['used'] - fast['reserved'])} left of {format_ms(fast['limit'])}",
        f"Jobs: {jobs} (this period: {report['period_jobs']}, {report['period_gpu_seconds']:.1f} GPU seconds)",
        f"Lane: {report['lane']} · Grants: {grants}",
        f"Banned: {report['ban_reason'] or 'yes'}" if report["banned"] else "Banned: no",
    ]
    return "\n".join(lines)


NOT_A_MEMBER = "{mention} is not a member of this server: a server's admins manage its own members only."
_SCOPES = [
    app_commands.Choice(name="ordinary channels of this server", value="server"),
    app_commands.Choice(name="age-restricted channels of this server", value="age_restricted"),
    app_commands.Choice(name="one channel (this one, or the channel option)", value="channel"),
]
_ACTIONS = [app_commands.Choice(name=action.value, value=action.value) for action in ImageAction]
_EVENTS_SHOWN = 15


def _where(scope: AdminScope) -> str:
    return "everywhere" if scope.everywhere else "in this server"


@app_commands.default_permissions(manage_guild=True)
class Admin(commands.GroupCog, group_name="admin", group_description="Plans, usage and bans (server managers)"):
    filter = app_commands.Group(name="filter", description="This server's additions to the content filter")

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[ImagineBot], /) -> bool:  # type: ignore[override]
        """Every admin command: acknowledged first (then its ``is_admin`` check and the rate limit)."""
        name = interaction.command.qualified_name if interaction.command else "admin"
        return await acknowledge(interaction, name.replace(" ", "_")) is not None

    async def _reply(self, interaction: discord.Interaction[ImagineBot], text: str) -> None:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    def _scope(self, interaction: discord.Interaction[ImagineBot]) -> AdminScope:
        return admin_scope(interaction, self.bot.services.settings.admins)

    async def _member_scope(
        self, interaction: discord.Interaction[ImagineBot], user: discord.User | discord.Member
    ) -> AdminScope | None:
        """The scope, when ``user`` may be managed from here: a server's admins manage its members only.
        Otherwise answers and returns None."""
        scope = self._scope(interaction)
        if scope.everywhere or (isinstance(user, discord.Member) and user.guild.id == scope.guild_id):
            return scope
        await self._reply(interaction, NOT_A_MEMBER.format(mention=user.mention))
        return None

    @app_commands.command(name="grant", description="Give a member a plan, for some days or until revoked")
    @app_commands.describe(
        user="Who gets the plan", plan="The plan's name", days="For how many days (default: until revoked)"
    )
    @is_admin()
    async def grant(
        self,
        interaction: discord.Interaction[ImagineBot],
        user: discord.User,
        plan: app_commands.Range[str, 1, 40],
        days: app_commands.Range[int, 1, MAX_GRANT_DAYS] | None = None,
    ) -> None:
        services = self.bot.services
        scope = await self._member_scope(interaction, user)
        if scope is None:
            return
        try:
            expires_at = grant_expiry(datetime.now(UTC), days)
            grant = await services.db.run(plans_db.grant_plan, user_id=user.id, plan=plan, book=services.plans,
                                          granted_by=interaction.user.id, expires_at=expires_at,
                                          guild_id=scope.guild_id)
        except DomainError as error:
            await self._reply(interaction, str(error))
            return
        until = f"until {grant.expires_at:%Y-%m-%d}" if grant.expires_at else "until revoked"
        log.info("admin %s granted %s to %s %s (guild %s)", interaction.user.id, grant.plan, user.id, until,
                 scope.guild_id)
        await self._reply(interaction, f"Granted **{services.plans.get(grant.plan).display_name}** to "
                                       f"{user.mention} {_where(scope)} {until}.")

    @app_commands.command(name="revoke", description="End a member's granted plan now")
    @is_admin()
    async def revoke(self, interaction: discord.Interaction[ImagineBot], user: discord.User) -> None:
        scope = self._scope(interaction)
        count = await self.bot.services.db.run(plans_db.revoke_grants, user_id=user.id, guild_id=scope.guild_id)
        await self._reply(interaction, f"Revoked {user.mention}'s grant {_where(scope)}." if count else
                          f"{user.mention} has no grant to revoke {_where(scope)}.")

    @app_commands.command(name="role-plan", description="Members with a role get a plan (no plan: remove)")
    @app_commands.describe(role="The role", plan="The plan its members get; leave out to remove the mapping")
    @is_admin()
    async def role_plan(
        self, interaction: discord.Interaction[ImagineBot], role: discord.Role,
        plan: app_commands.Range[str, 1, 40] | None = None,
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
        scope = await self._member_scope(interaction, user)
        if scope is None:
            return
        requester = None
        if not scope.everywhere:  # what they have in this server: their roles here, this server's grants
            roles = tuple(int(r) for r in user._roles) if isinstance(user, discord.Member) else ()
            requester = Requester(user.id, user.name, scope.guild_id, roles)
        try:
            report = await services.db.run(plans_db.usage_report, user_id=user.id, book=services.plans,
                                           now=datetime.now(UTC), requester=requester)
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
        scope = await self._member_scope(interaction, user)
        if scope is None:
            return
        await self.bot.services.db.run(plans_db.ban, user_id=user.id, guild_id=scope.guild_id,
                                       by=interaction.user.id, reason=reason)
        log.info("admin %s banned %s (%s) in guild %s", interaction.user.id, user.id, reason, scope.guild_id)
        await self._reply(interaction, f"Banned {user.mention} {_where(scope)}."
                          + (f" Reason: {reason}" if reason else ""))

    @app_commands.command(name="unban", description="Let a banned member use the bot again")
    @is_admin()
    async def unban(self, interaction: discord.Interaction[ImagineBot], user: discord.User) -> None:
        scope = self._scope(interaction)
        lifted = await self.bot.services.db.run(plans_db.unban, user_id=user.id, guild_id=scope.guild_id)
        await self._reply(interaction, f"Unbanned {user.mention} {_where(scope)}." if lifted else
                          f"{user.mention} is not banned {_where(scope)}.")

    # -- moderation ------------------------------------------------------------------------------------------

    @app_commands.command(name="moderation", description="Blocked prompts and images, and appeals, newest first")
    @app_commands.describe(appeals="Only what members appealed")
    @is_admin()
    async def moderation(self, interaction: discord.Interaction[ImagineBot], appeals: bool = False) -> None:
        scope = self._scope(interaction)
        guild_id = scope.guild_id if not scope.everywhere else interaction.guild_id
        events = await self.bot.services.db.run(moderation_db.list_events, guild_id=guild_id,
                                                limit=_EVENTS_SHOWN, appeals_only=appeals)
        where = "this server" if guild_id is not None else "every server"
        if not events:
            await self._reply(interaction, f"Nothing {'appealed' if appeals else 'blocked'} in {where}.")
            return
        title = f"**{'Appeals' if appeals else 'Moderation log'}** ({where}, newest first)"
        text = "\n".join([title, *(event_line(event) for event in events)])
        await self._reply(interaction, text[:1990])

    async def _filter_guild(self, interaction: discord.Interaction[ImagineBot]) -> int | None:
        if interaction.guild_id is None:
            await self._reply(interaction, "The content filter is set per server: use this command in one.")
        return interaction.guild_id

    async def _set_term(self, interaction: discord.Interaction[ImagineBot], term: str, kind: str) -> None:
        guild_id = await self._filter_guild(interaction)
        if guild_id is None:
            return
        try:
            normalized = check_term(term)
        except ValueError as error:
            await self._reply(interaction, str(error))
            return
        await self.bot.services.db.run(moderation_db.set_filter_term, guild_id=guild_id, term=normalized,
                                       shown=term.strip(), kind=kind, by=interaction.user.id)
        log.info("admin %s: filter %s %r in guild %s", interaction.user.id, kind, normalized, guild_id)
        await self._reply(interaction, f"Prompts with “{term.strip()}” are now "
                          + ("blocked in this server." if kind == "block" else "allowed in this server."))

    @filter.command(name="block", description="Block prompts with a word or phrase in this server")
    @app_commands.describe(term="A word or phrase; end it with * to block every word that starts with it")
    @is_admin()
    async def filter_block(self, interaction: discord.Interaction[ImagineBot],
                           term: app_commands.Range[str, 1, MAX_TERM_CHARS]) -> None:
        await self._set_term(interaction, term, "block")

    @filter.command(name="allow", description="Let a word the default list blocks through in this server")
    @is_admin()
    async def filter_allow(self, interaction: discord.Interaction[ImagineBot],
                           term: app_commands.Range[str, 1, MAX_TERM_CHARS]) -> None:
        await self._set_term(interaction, term, "allow")

    @filter.command(name="remove", description="Forget this server's block or allow of a term")
    @is_admin()
    async def filter_remove(self, interaction: discord.Interaction[ImagineBot],
                            term: app_commands.Range[str, 1, MAX_TERM_CHARS]) -> None:
        guild_id = await self._filter_guild(interaction)
        if guild_id is None:
            return
        try:
            normalized = check_term(term)
        except ValueError as error:
            await self._reply(interaction, str(error))
            return
        removed = await self.bot.services.db.run(moderation_db.remove_filter_term, guild_id=guild_id,
                                                 term=normalized)
        await self._reply(interaction, f"Forgot “{term.strip()}”: the default list decides again." if removed
                          else f"This server has no block or allow of “{term.strip()}”.")

    @filter.command(name="list", description="This server's blocked and allowed terms")
    @is_admin()
    async def filter_list(self, interaction: discord.Interaction[ImagineBot]) -> None:
        guild_id = await self._filter_guild(interaction)
        if guild_id is None:
            return
        rows = await self.bot.services.db.run(moderation_db.filter_terms, guild_id=guild_id)
        blocked = ", ".join(f"“{r.shown}”" for r in rows if r.kind == "block") or "none"
        allowed = ", ".join(f"“{r.shown}”" for r in rows if r.kind == "allow") or "none"
        await self._reply(interaction, (f"**Blocked here too:** {blocked}\n**Allowed here:** {allowed}\n"
                                        "Everything else follows the default list (docs/moderation.md).")[:1990])

    @app_commands.command(name="image-policy", description="What happens to images the safety check flags")
    @app_commands.describe(action="allow, spoiler (hidden until clicked) or block (not shown, not charged)",
                           applies_to="Which channels", channel="The channel (default: this one)")
    @app_commands.choices(action=_ACTIONS, applies_to=_SCOPES)
    @is_admin()
    async def image_policy(
        self, interaction: discord.Interaction[ImagineBot], action: str, applies_to: str = "server",
        channel: discord.TextChannel | None = None,
    ) -> None:
        guild_id = interaction.guild_id
        if guild_id is None:
            await self._reply(interaction, "Image policies are set per server: use this command in one.")
            return
        channel_id = (channel.id if channel is not None else interaction.channel_id) if applies_to == "channel" \
            else None
        await self.bot.services.db.run(moderation_db.set_image_policy, guild_id=guild_id, scope=applies_to,
                                       channel_id=channel_id, action=ImageAction(action), by=interaction.user.id)
        where = {"server": "this server's ordinary channels", "age_restricted": "this server's age-restricted "
                 "channels", "channel": f"<#{channel_id}>"}[applies_to]
        await self._reply(interaction, f"Flagged images in {where}: **{action}**.")

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
