"""The bot: a ``commands.Bot`` that loads one extension per feature and registers persistent buttons.

:func:`create_bot` picks the class: :class:`ImagineBot` (one gateway connection), or, with ``DISCORD_SHARDS``
set, :class:`ShardedImagineBot`, the same bot on discord.py's ``AutoShardedBot`` (several shards in one
process; Discord requires sharding from 2,500 servers).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.acks import TRY_AGAIN, is_outage, refuse
from bot.backlog import AckBacklog, MemberTurns
from bot.components import JobButton
from bot.delivery import Delivery
from bot.gateway import drop_malformed_events
from bot.guard import MALFORMED, UNKNOWN_COMMAND, GuardedTree, answer_unknown_component
from bot.metrics import watch_event_loop
from bot.moderation import AppealButton
from bot.services import BotServices

__all__ = ["EXTENSIONS", "ImagineBot", "ShardedImagineBot", "create_bot", "point_discord_at"]

log = logging.getLogger(__name__)

EXTENSIONS = (
    "bot.cogs.imagine", "bot.cogs.buttons", "bot.cogs.canvas", "bot.cogs.jobs", "bot.cogs.account", "bot.cogs.admin",
)


#: The custom_ids the bot's buttons take (their DynamicItem templates).
_BUTTON_TEMPLATES = tuple(item.__discord_ui_compiled_template__ for item in (JobButton, AppealButton))


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Aim discord.py at a Discord API (the real one, a REST proxy, or a test fake).

    discord.py has no setting for this: every REST route (webhooks and interaction callbacks included)
    is built from ``Route.BASE``, and a client connects to ``DEFAULT_GATEWAY`` (an auto-sharded client
    with no shard count asks ``GET /gateway/bot`` instead, which is a REST route).
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class ImagineBot(commands.Bot):
    def __init__(self, services: BotServices, **options: Any) -> None:
        # Only what the bot uses: its servers (channels, roles). Interactions and entitlements need no intent;
        # without GUILD_MESSAGES a busy server's chat never reaches the bot's event loop.
        intents = discord.Intents.none()
        intents.guilds = True
        # A bounded pool of kept-alive connections to Discord's API: a burst of acknowledgements reuses them
        # instead of opening (and, against discord.com, TLS-handshaking) one connection per interaction.
        connections = services.settings.discord_http_connections
        options.setdefault("connector", aiohttp.TCPConnector(limit=0, limit_per_host=connections))
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         tree_cls=GuardedTree, **options)
        self.services = services
        self.delivery = Delivery(self, services)
        self.backlog = AckBacklog()
        self.turns = MemberTurns()
        self._loop_probe: asyncio.Task[None] | None = None
        drop_malformed_events(self._connection.parsers)
        point_discord_at(services.settings.discord_api_base, services.settings.discord_gateway_url)

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(AppealButton)  # JobButton: the buttons feature registers it
        self.tree.error(self.on_app_command_error)
        guild_id = self.services.settings.discord_guild_id
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        self.delivery.start()
        self._loop_probe = asyncio.create_task(watch_event_loop(), name="event-loop-lag")
        # What start-up made (modules, discord.py, SQLAlchemy: some 150,000 objects) lives as long as the
        # process: kept out of the collector's full passes, each of which held the loop for 100-200 ms.
        gc.collect()
        gc.freeze()

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        # Called as the gateway event is parsed, before any handler of it runs: the backlog counts it now.
        if event_name == "interaction":
            self.backlog.received(args[0])
        super().dispatch(event_name, *args, **kwargs)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A click on a button none of ours takes (forged, or from another bot's message) is answered too."""
        await answer_unknown_component(interaction, _BUTTON_TEMPLATES)

    async def on_ready(self) -> None:
        log.info("logged in as %s (%s); serving %d guilds", self.user, self.application_id, len(self.guilds))

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command and interaction.command.qualified_name
        message = "Something went wrong on our side. Please try again in a moment."
        if isinstance(error, app_commands.CheckFailure):  # an expected refusal (bot.checks), not a fault
            log.info("command %r refused for %s: %s", name, interaction.user.id, error)
            message = str(error) or "You can't use this command here."
        elif isinstance(error, app_commands.CommandNotFound):
            log.info("unknown command %r from %s", error.name, interaction.user.id)
            message = UNKNOWN_COMMAND
        elif isinstance(error, app_commands.CommandSignatureMismatch | app_commands.TransformerError):
            log.info("command %r from %s did not match its declaration: %s", name, interaction.user.id, error)
            message = MALFORMED
        elif is_outage(error):
            log.warning("command %r from %s: a service is unreachable (%s)", name, interaction.user.id,
                        error.__cause__ or error)
            message = TRY_AGAIN
        else:
            log.error("command %r failed", name, exc_info=error)
        await refuse(interaction, message)

    async def close(self) -> None:
        if self._loop_probe is not None:
            self._loop_probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_probe
        await self.delivery.stop()
        await super().close()
        await self.services.close()


class ShardedImagineBot(ImagineBot, commands.AutoShardedBot):
    """:class:`ImagineBot` on ``AutoShardedBot``: each shard is a gateway connection for a share of the servers.

    Nothing else changes: interactions carry their own tokens, and deliveries go through webhooks and REST.
    """


def create_bot(services: BotServices, **options: Any) -> ImagineBot:
    """The bot ``DISCORD_SHARDS`` asks for: unsharded (empty), Discord's shard count (``auto``), or N shards."""
    shards = services.settings.discord_shards
    if not shards:
        return ImagineBot(services, **options)
    if shards != "auto":
        options.setdefault("shard_count", int(shards))
    return ShardedImagineBot(services, **options)
