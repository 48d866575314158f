"""A loopback fake Discord (REST + gateway) that the real discord.py client logs in to.

The test owns the server: it starts it on 127.0.0.1 (a free port), points the client at
:attr:`FakeDiscord.api_base` and :attr:`FakeDiscord.gateway_url`, plays the user (slash commands,
autocomplete, button clicks, modal submits, entitlement events) and reads back what a user would see
(messages with their attachments and buttons) plus a log of every request and gateway frame.

What it enforces, because real Discord does and a bot must cope:

- an interaction callback later than ``interaction_deadline`` (3 s) → 404 code 10062;
  a second callback → 400 code 40060;
- a webhook call with an expired interaction token (``token_lifetime``, 15 min) → 401 code 50027;
- files over ``attachment_size_limit`` → 413 code 40005; content over 2,000 characters, more than 5 rows or
  5 buttons a row, a ``custom_id`` over 100 characters, duplicate custom ids → 400 code 50035;
- every JSON response carries ``Content-Type: application/json`` exactly
  (discord.py compares the whole header).

Faults on demand: :meth:`FakeDiscord.inject_rate_limit` (a 429 with ``Via``, which discord.py retries) and
:meth:`FakeDiscord.inject_error` (any status and code, 5xx included).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import BodyPartReader, WSMsgType, web

from .models import (
    DEFAULT_BOT_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    RecordedFile,
    iso,
    snowflake,
)
from .openapi import RequestRejected, validate_request

__all__ = [
    "API_PREFIX",
    "ApiError",
    "CallbackRecord",
    "Event",
    "FakeDiscord",
    "FakeInteraction",
    "Fault",
    "GatewayRecord",
    "GatewaySession",
    "RequestRecord",
    "Upload",
    "buttons",
    "iter_components",
    "point_client_at",
    "run_client",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
MIB = 1024 * 1024
#: Gateway intents that message events need (Discord sends a message event only to a session that asked):
#: GUILD_MESSAGES for a server channel's messages, DIRECT_MESSAGES for a DM's.
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12

# Interaction types and callback types (https://discord.com/developers/docs/interactions/receiving-and-responding).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 1, 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9

# Message flags.
SUPPRESS_EMBEDS, EPHEMERAL, LOADING, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2 = 4, 64, 128, 4096, 32768

T = TypeVar("T")


# ----------------------------------------------------------------------------------------------------------
# Records the test reads


@dataclass
class Upload:
    """One ``files[n]`` part of a multipart request, as it arrived."""

    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class RequestRecord:
    """One REST request: what came in and what the fake answered. ``path`` is relative to the API base."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[Upload]
    status: int
    response: Any
    at: float
    route: str
    authorized: bool
    kind: str = "request"

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} → {self.status}>"


@dataclass
class GatewayRecord:
    """One gateway frame. ``direction`` is ``"out"`` (fake → client) or ``"in"`` (client → fake)."""

    direction: str
    session_id: str | None
    op: int | None
    t: str | None
    data: Any
    at: float
    kind: str = "gateway"

    def __repr__(self) -> str:
        arrow = "→" if self.direction == "out" else "←"
        return f"<gateway {arrow} op={self.op} t={self.t}>"


Event = RequestRecord | GatewayRecord


@dataclass
class CallbackRecord:
    """The interaction callback the bot sent: ``type`` (4–9), ``data``, and ``delay`` after creation."""

    type: int
    data: dict[str, Any]
    files: list[Upload]
    at: float
    delay: float


@dataclass
class Fault:
    """An injected failure: the next ``times`` requests matching ``method`` and ``pattern`` get it."""

    method: str
    pattern: str | re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.hits >= self.times or self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.search(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)


class ApiError(Exception):
    """An error answer in Discord's shape: ``{"message": ..., "code": ...}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def _form_error(path: str, code: str, message: str) -> ApiError:
    """A 400 code 50035 naming the offending field, e.g. ``components.0.components.5``."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return ApiError(400, 50035, "Invalid Form Body", errors=errors)


# ----------------------------------------------------------------------------------------------------------
# Components


def iter_components(message: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every component on a message, depth first (rows, buttons, selects, v2 containers and accessories)."""

    def walk(items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from walk(item.get("components") or [])
            for key in ("accessory", "component"):
                if isinstance(item.get(key), dict):
                    yield from walk([item[key]])

    yield from walk(message.get("components") or [])


def buttons(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The buttons on a message in display order, each as sent (``custom_id``, ``label``, ``style``…)."""
    return [c for c in iter_components(message) if c.get("type") == 2]


# ----------------------------------------------------------------------------------------------------------
# Interactions


class FakeInteraction:
    """An interaction the fake sent to the bot, and everything the bot answered to it.

    Await :meth:`wait_ack`, :meth:`wait_original` or :meth:`wait_followup`; read :attr:`callback`,
    :attr:`original`, :attr:`followups`, :attr:`choices` (autocomplete) and :attr:`modal`.
    """

    def __init__(
        self,
        fake: FakeDiscord,
        payload: dict[str, Any],
        *,
        user: FakeUser,
        channel: FakeChannel,
        message_id: int | None,
        created_at: float,
    ) -> None:
        self.fake = fake
        self.payload = payload
        self.id: int = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.user = user
        self.channel = channel
        self.message_id = message_id
        self.created_at = created_at
        self.token_expires_at = created_at + fake.token_lifetime
        self.callback: CallbackRecord | None = None
        self.original_id: int | None = None
        self.followup_ids: list[int] = []

    def __repr__(self) -> str:
        ack = self.callback.type if self.callback else None
        return f"<FakeInteraction id={self.id} type={self.type} ack={ack} original={self.original_id}>"

    @property
    def data(self) -> dict[str, Any]:
        return self.payload.get("data") or {}

    @property
    def token_expired(self) -> bool:
        return self.fake._now() >= self.token_expires_at

    @property
    def original(self) -> dict[str, Any] | None:
        """The original response message in its current state (None before a type 4/5/6/7 callback)."""
        return self.fake.messages.get(self.original_id) if self.original_id else None

    @property
    def followups(self) -> list[dict[str, Any]]:
        """Follow-up messages still existing, in the order sent."""
        return [self.fake.messages[i] for i in self.followup_ids if i in self.fake.messages]

    @property
    def responses(self) -> list[dict[str, Any]]:
        """The original response (when it is a message of its own) followed by the follow-ups."""
        own = self.original if self.original_id != self.message_id else None
        return ([own] if own else []) + self.followups

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """The autocomplete choices answered (callback type 8), else None."""
        if self.callback is None or self.callback.type != AUTOCOMPLETE_RESULT:
            return None
        return list(self.callback.data.get("choices") or [])

    @property
    def modal(self) -> dict[str, Any] | None:
        """The modal the bot opened (callback type 9: ``custom_id``, ``title``, ``components``), else None."""
        if self.callback is None or self.callback.type != MODAL:
            return None
        return self.callback.data

    def expire_token(self) -> None:
        """From now on, webhook calls with this interaction's token get 401 code 50027."""
        self.token_expires_at = self.fake._now()

    async def wait_ack(self, timeout: float | None = None) -> CallbackRecord:
        """The callback, once the bot sent one (default timeout: the deadline plus a second)."""
        limit = timeout if timeout is not None else self.fake.interaction_deadline + 1.0
        return await self.fake.wait_until(
            lambda: self.callback, timeout=limit, what=f"a callback to {self!r}"
        )

    async def wait_original(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The original response once it matches ``predicate`` (default: it exists and is not loading)."""
        check = predicate or (lambda m: not m["flags"] & LOADING)

        def ready() -> dict[str, Any] | None:
            message = self.original
            return message if message is not None and check(message) else None

        return await self.fake.wait_until(ready, timeout=timeout, what=f"the original response of {self!r}")

    async def wait_followup(
        self, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first follow-up message matching ``predicate`` (default: any)."""

        def ready() -> dict[str, Any] | None:
            return next((m for m in self.followups if predicate is None or predicate(m)), None)

        return await self.fake.wait_until(ready, timeout=timeout, what=f"a follow-up to {self!r}")

    async def wait_response(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first message of this interaction (original or follow-up) matching ``predicate``."""

        def ready() -> dict[str, Any] | None:
            candidates = ([self.original] if self.original else []) + self.followups
            return next((m for m in candidates if predicate(m)), None)

        return await self.fake.wait_until(ready, timeout=timeout, what=f"a response to {self!r}")


# ----------------------------------------------------------------------------------------------------------
# Gateway


class _Connection:
    def __init__(self, fake: FakeDiscord, ws: web.WebSocketResponse, query: dict[str, str]) -> None:
        self.fake = fake
        self.ws = ws
        self.query = query
        self.session: GatewaySession | None = None
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return not self.ws.closed

    async def send(self, frame: dict[str, Any]) -> None:
        self.fake._log_gateway("out", self.session, frame)
        async with self._lock:
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway send failed: %s", exc)


@dataclass(eq=False)
class GatewaySession:
    """One identified gateway session. It survives disconnects and can be resumed."""

    id: str
    intents: int
    shard: tuple[int, int]
    identify: dict[str, Any]
    identified_at: float
    seq: int = 0
    resumes: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    connection: _Connection | None = None
    closed: bool = False

    @property
    def alive(self) -> bool:
        return not self.closed and self.connection is not None and self.connection.alive


# ----------------------------------------------------------------------------------------------------------
# The server


_Handler = Callable[..., Any]


class _Request:
    def __init__(self, raw: web.Request, path: str, body: Any, uploads: list[Upload]) -> None:
        self.raw = raw
        self.method = raw.method
        self.path = path
        self.query = {k: v for k, v in raw.query.items()}
        self.json = body
        self.uploads = uploads

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")


class FakeDiscord:
    """A loopback Discord for the real discord.py client.

    REST is served under :attr:`api_base`, the gateway at :attr:`gateway_url`.

    Parameters
    ----------
    guilds:
        The guilds the bot is in. Default: one guild ``Test Guild`` with text channels ``general`` and
        ``imagine`` and roles ``@everyone`` and ``Admin`` (administrator). The bot, :attr:`owner` and
        :attr:`user` are added as members.
    bot_name:
        The bot user's username; :attr:`application_id` equals the bot user's id, as on Discord.
    bot_token:
        The token the client must log in with (REST ``Authorization: Bot …`` and IDENTIFY).
    token_lifetime:
        Seconds an interaction token accepts webhook calls (Discord: 15 min). Can be changed at any time;
        it applies to interactions created afterwards.
    interaction_deadline:
        Seconds the bot has to send the first callback (Discord: 3 s).
    attachment_size_limit:
        Bytes allowed per file; sent as ``attachment_size_limit`` on interactions (Discord: 10 MiB).
    client_timeout:
        Seconds :meth:`slash_command` and friends wait for a connected client before giving up.
    dispatch_message_events:
        Send MESSAGE_CREATE/UPDATE/DELETE for non-ephemeral messages to connected clients that asked for them
        (the GUILD_MESSAGES or DIRECT_MESSAGES intent), as Discord does.
    validate_openapi:
        Refuse (400, code 50035) every request body that Discord's own OpenAPI description refuses, and record
        it in :attr:`schema_rejections` (see ``openapi.py``). On by default.

    Use ``async with FakeDiscord() as fake:`` or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        *,
        guilds: Sequence[FakeGuild] | None = None,
        bot_name: str = "imagine",
        bot_token: str = "fake-bot-token",
        token_lifetime: float = 15 * 60,
        interaction_deadline: float = 3.0,
        attachment_size_limit: int = 10 * MIB,
        client_timeout: float = 10.0,
        heartbeat_interval_ms: int = 41_250,
        dispatch_message_events: bool = True,
        validate_openapi: bool = True,
    ) -> None:
        self.bot_user = FakeUser(bot_name, bot=True)
        self.application_id: int = self.bot_user.id
        self.bot_token = bot_token
        self.owner = FakeUser("owner")
        self.user = FakeUser("alice", global_name="Alice")
        self.token_lifetime = token_lifetime
        self.interaction_deadline = interaction_deadline
        self.attachment_size_limit = attachment_size_limit
        self.client_timeout = client_timeout
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.dispatch_message_events = dispatch_message_events
        #: Check every request body against Discord's OpenAPI description (``tests/fakediscord/openapi.py``).
        self.validate_openapi = validate_openapi
        #: Seconds Discord's clock (the time in interaction ids) is ahead of the real one: :meth:`advance_clock`.
        self.clock_ahead = 0.0
        #: ``(method, path, reason)`` of each request refused by that check.
        self.schema_rejections: list[tuple[str, str, str]] = []
        self.recheck_interval = 0.05

        if guilds is None:
            admin = FakeRole("Admin", 8, position=2)
            default = FakeGuild(
                "Test Guild",
                channels=[FakeChannel("general"), FakeChannel("imagine", position=1)],
                roles=[admin],
            )
            guilds = [default]
        self.guilds: list[FakeGuild] = list(guilds)
        self.users: dict[int, FakeUser] = {u.id: u for u in (self.bot_user, self.owner, self.user)}
        for guild in self.guilds:
            self._join(guild)

        # State the test reads.
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_messages: dict[int, dict[str, Any]] = {}
        self.message_versions: dict[int, list[dict[str, Any]]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.events: list[Event] = []
        self.global_commands: dict[str, dict[str, Any]] = {}
        self.guild_commands: dict[int, dict[str, dict[str, Any]]] = {}
        self.entitlements: dict[int, dict[str, Any]] = {}
        self.skus: list[dict[str, Any]] = []
        self.sessions: list[GatewaySession] = []
        self.unhandled: list[RequestRecord] = []
        self.server_errors: list[BaseException] = []
        self.faults: list[Fault] = []
        self.dm_channels: dict[int, FakeChannel] = {}

        self._by_token: dict[str, FakeInteraction] = {}
        self._files: dict[int, RecordedFile] = {}
        self._message_interaction: dict[int, FakeInteraction] = {}
        #: (channel id, author id, nonce) -> message id, for ``enforce_nonce``.
        self._nonces: dict[tuple[int, int, str], int] = {}
        self._connections: set[_Connection] = set()
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes = self._route_table()

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        """Listen on 127.0.0.1 at a free port. Returns self."""
        if self._runner is not None:
            raise RuntimeError("FakeDiscord is already started")
        app = web.Application(client_max_size=256 * MIB)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_get("/attachments/{channel}/{file_id}/{filename}", self._attachment)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Close every gateway connection (code 1001) and stop listening."""
        for session in self.sessions:
            session.closed = True
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"fake discord stopped")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started: await fake.start() first")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """The REST base, e.g. ``http://127.0.0.1:PORT/api/v10`` (for ``discord.http.Route.BASE``)."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The gateway, e.g. ``ws://127.0.0.1:PORT/gateway`` (for ``DiscordWebSocket.DEFAULT_GATEWAY``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- world -----------------------------------------------------------------------------------------------

    @property
    def guild(self) -> FakeGuild:
        """The first guild."""
        return self.guilds[0]

    @property
    def channel(self) -> FakeChannel:
        """The first guild's first channel."""
        return self.guild.channels[0]

    def _join(self, guild: FakeGuild) -> None:
        if not guild.owner_id:
            guild.owner_id = self.owner.id
        if self.bot_user.id not in guild.members:
            bot_role = FakeRole(self.bot_user.username, DEFAULT_BOT_PERMISSIONS, position=1, managed=True)
            guild.roles.append(bot_role)
            guild.add_member(self.bot_user, [bot_role])
        for user in (self.owner, self.user):
            if user.id not in guild.members:
                guild.add_member(user)

    def add_guild(self, guild: FakeGuild) -> FakeGuild:
        """Add a guild the bot is in. Before a client connects it arrives in GUILD_CREATE at login;
        afterwards, ``await fake.dispatch("GUILD_CREATE", guild.payload())`` announces it."""
        self._join(guild)
        self.guilds.append(guild)
        return guild

    def add_user(
        self,
        username: str,
        *,
        guild: FakeGuild | None = None,
        roles: Sequence[FakeRole | str] = (),
        locale: str = "en-US",
    ) -> FakeUser:
        """A new user, member of ``guild`` (default: the first) with these roles (objects or names)."""
        user = FakeUser(username, global_name=username.title(), locale=locale)
        self.users[user.id] = user
        target = guild or self.guild
        target.add_member(user, [r if isinstance(r, FakeRole) else target.role(r) for r in roles])
        return user

    def channel_by_id(self, channel_id: int) -> FakeChannel | None:
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return channel
        return self.dm_channels.get(channel_id)

    def guild_by_id(self, guild_id: int | None) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        for channel in self.dm_channels.values():
            if channel.recipient is user:
                return channel
        channel = FakeChannel(user.username, type=1, recipient=user)
        self.dm_channels[channel.id] = channel
        return channel

    # -- state helpers ---------------------------------------------------------------------------------------

    def channel_messages(
        self, channel: FakeChannel | int, *, include_ephemeral: bool = True
    ) -> list[dict[str, Any]]:
        """Messages in a channel, oldest first."""
        channel_id = channel.id if isinstance(channel, FakeChannel) else int(channel)
        return [
            m
            for m in self.messages.values()
            if int(m["channel_id"]) == channel_id and (include_ephemeral or not m["flags"] & EPHEMERAL)
        ]

    def message(self, message: Mapping[str, Any] | int | str) -> dict[str, Any]:
        """The current state of a message (give its id or any earlier copy of it)."""
        message_id = int(message["id"]) if isinstance(message, Mapping) else int(message)
        try:
            return self.messages[message_id]
        except KeyError:
            raise KeyError(
                f"no message {message_id} (deleted: {message_id in self.deleted_messages})"
            ) from None

    def files(self, message: Mapping[str, Any] | int | str) -> list[RecordedFile]:
        """The files attached to a message, in order, with their bytes."""
        return list(self.message(message)["files"])

    @property
    def requests(self) -> list[RequestRecord]:
        return [e for e in self.events if isinstance(e, RequestRecord)]

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        """The synced global commands by name."""
        return self.global_commands

    def mark(self) -> int:
        """A position in :attr:`events`; pass it as ``since`` to :meth:`wait_for` to skip what came before."""
        return len(self.events)

    def expire_token(self, interaction: FakeInteraction | str) -> None:
        """Make an interaction token expired now (webhook calls get 401 code 50027)."""
        target = interaction if isinstance(interaction, FakeInteraction) else self._by_token[interaction]
        target.expire_token()

    def advance_clock(self, seconds: float) -> None:
        """Move Discord's clock on: interactions from now on carry ids (timestamps) ``seconds`` later, as if
        that much time had passed between a user's clicks. Nothing else waits."""
        if seconds < 0:
            raise ValueError("Discord's clock only moves forward")
        self.clock_ahead += seconds

    # -- waiting ---------------------------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _bump(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(
        self, condition: Callable[[], T | None], *, timeout: float = 5.0, what: str = ""
    ) -> T:
        """Wait until ``condition()`` returns something truthy; return it.

        The condition is re-checked at once on every change of the fake's state (a request, a gateway frame),
        and every ``recheck_interval`` seconds for conditions on other state, such as the bot's own.
        Raises ``TimeoutError`` listing the last events.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = condition()
            if result:
                return result
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_report(what or repr(condition), timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, self.recheck_interval))

    async def wait_for(
        self, predicate: Callable[[Event], bool], *, timeout: float = 5.0, since: int = 0
    ) -> Event:
        """The first event in :attr:`events` (from index ``since``) matching ``predicate``, waiting for it."""

        def found() -> Event | None:
            return next((e for e in self.events[since:] if predicate(e)), None)

        return await self.wait_until(found, timeout=timeout, what=f"an event matching {predicate!r}")

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        channel: FakeChannel | int | None = None,
        new: bool = False,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first message (oldest first, current state) matching ``predicate``.

        ``channel`` limits the search to one channel; ``new=True`` to messages created after this call.
        """
        after = snowflake() if new else 0
        channel_id = (
            None if channel is None else (channel.id if isinstance(channel, FakeChannel) else int(channel))
        )

        def found() -> dict[str, Any] | None:
            for message in self.messages.values():
                if int(message["id"]) <= after:
                    continue
                if channel_id is not None and int(message["channel_id"]) != channel_id:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.wait_until(found, timeout=timeout, what="a message matching the predicate")

    async def wait_for_client(self, timeout: float | None = None) -> GatewaySession:
        """The most recently identified session with a live connection, waiting for one to log in."""
        return await self.wait_until(
            self._active_session, timeout=self.client_timeout if timeout is None else timeout, what="a client"
        )

    def _active_session(self) -> GatewaySession | None:
        return next((s for s in reversed(self.sessions) if s.alive), None)

    def _timeout_report(self, what: str, timeout: float) -> str:
        recent = "\n".join(f"  {e!r}" for e in self.events[-15:]) or "  (none)"
        extra = ""
        if self.server_errors:
            extra = f"\nfake server errors: {self.server_errors!r}"
        return f"timed out after {timeout}s waiting for {what}; last events:\n{recent}{extra}"

    # -- faults ----------------------------------------------------------------------------------------------

    def inject_rate_limit(
        self,
        pattern: str | re.Pattern[str],
        *,
        method: str = "*",
        retry_after: float = 0.05,
        is_global: bool = False,
        times: int = 1,
        via: bool = True,
    ) -> Fault:
        """Answer the next ``times`` matching requests with 429.

        ``pattern`` is a glob or regex over the API path, e.g. ``"/channels/*/messages"``.
        With ``via`` the answer carries ``Via`` and discord.py retries it;
        without, discord.py takes it for a Cloudflare ban and raises."""
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        fault = Fault(method.upper(), pattern, 429, body, headers, times)
        self.faults.append(fault)
        return fault

    def inject_error(
        self,
        pattern: str | re.Pattern[str],
        *,
        method: str = "*",
        status: int = 500,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` and ``{"message", "code"}``.
        discord.py retries 500, 502, 504 and 524 (sleeping 1 s, 3 s, …) and raises on the rest."""
        body = {"message": message or f"{status}: injected error", "code": code}
        fault = Fault(method.upper(), pattern, status, body, dict(headers or {}), times)
        self.faults.append(fault)
        return fault

    # -- gateway ---------------------------------------------------------------------------------------------

    def _log_gateway(self, direction: str, session: GatewaySession | None, frame: Mapping[str, Any]) -> None:
        self.events.append(
            GatewayRecord(
                direction=direction,
                session_id=session.id if session else None,
                op=frame.get("op"),
                t=frame.get("t"),
                data=frame.get("d"),
                at=self._now(),
            )
        )
        self._bump()

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(self, ws, dict(request.query))
        self._connections.add(conn)
        try:
            await conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    frame = json.loads(msg.data)
                except (ValueError, UnicodeDecodeError):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                self._log_gateway("in", conn.session, frame)
                try:
                    await self._on_frame(conn, frame)
                except Exception as exc:  # a bug in the fake: keep it visible
                    log.exception("fake gateway failed on %r", frame)
                    self.server_errors.append(exc)
        finally:
            self._connections.discard(conn)
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            self._bump()
        return ws

    async def _on_frame(self, conn: _Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:  # heartbeat
            await conn.send({"op": 11})
        elif op == 2:  # identify
            await self._identify(conn, data or {})
        elif op == 6:  # resume
            await self._resume(conn, data or {})
        elif op in (3, 4, 8):  # presence, voice state, request guild members: accepted, ignored
            pass
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.bot_token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        session = GatewaySession(
            id=secrets.token_hex(16),
            intents=int(data.get("intents") or 0),
            shard=(shard_id, shard_count),
            identify=data,
            identified_at=self._now(),
        )
        conn.session = session
        session.connection = conn
        guilds = [g for g in self.guilds if (g.id >> 22) % shard_count == shard_id]
        ready = {
            "v": 10,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        await self._send_dispatch(session, "READY", ready)
        for guild in guilds:
            await self._send_dispatch(session, "GUILD_CREATE", guild.payload())
        # Only now is the session offered to interactions: the client has its guilds.
        self.sessions.append(session)
        self._bump()

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if session is None or session.closed or data.get("token") != self.bot_token:
            await conn.send({"op": 9, "d": False})
            return
        old = session.connection
        if old is not None and old is not conn and old.alive:
            await old.ws.close(code=4000, message=b"Session resumed elsewhere.")
        conn.session = session
        session.connection = conn
        session.resumes += 1
        last = int(data.get("seq") or 0)
        for frame in [f for f in session.buffer if f["s"] > last]:
            await conn.send(frame)
        await self._send_dispatch(session, "RESUMED", {})
        self._bump()

    async def _send_dispatch(self, session: GatewaySession, event: str, data: Any) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.buffer.append(frame)
        del session.buffer[:-500]
        if session.connection is not None:
            await session.connection.send(frame)

    async def dispatch(
        self, event: str, data: Any, *, session: GatewaySession | None = None
    ) -> GatewaySession:
        """Send a dispatch event (e.g. ``ENTITLEMENT_CREATE``) to ``session`` or the active client
        (waiting up to ``client_timeout`` for one). Returns the session it went to."""
        target = session or await self.wait_for_client()
        await self._send_dispatch(target, event, data)
        return target

    async def _broadcast(self, event: str, data: Any, *, intent: int = 0) -> None:
        """Send ``event`` to every live session (that asked for ``intent``, when given)."""
        for session in self.sessions:
            if session.alive and (not intent or session.intents & intent):
                await self._send_dispatch(session, event, data)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every live client: discord.py reconnects and resumes."""
        for session in self.sessions:
            if session.alive and session.connection is not None:
                await session.connection.send({"op": 7, "d": None})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (4000: the client resumes; 4004: it gives up)."""
        for conn in list(self._connections):
            await conn.ws.close(code=code, message=b"dropped by the test")

    # -- entitlements ----------------------------------------------------------------------------------------

    def entitlement(
        self,
        user: FakeUser,
        sku_id: int,
        *,
        type: int = 8,
        guild: FakeGuild | None = None,
        ends_at: dt.datetime | None = None,
        starts_at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """An entitlement payload (type 8 = application subscription), stored as the user's.
        Interactions from the user carry their active entitlements."""
        data: dict[str, Any] = {
            "id": str(snowflake()),
            "sku_id": str(sku_id),
            "application_id": str(self.application_id),
            "user_id": str(user.id),
            "guild_id": str(guild.id) if guild else None,
            "type": type,
            "deleted": False,
            "consumed": False,
            "starts_at": iso(starts_at or dt.datetime.now(dt.UTC)),
            "ends_at": iso(ends_at) if ends_at else None,
        }
        self.entitlements[int(data["id"])] = data
        return data

    async def grant_entitlement(self, user: FakeUser, sku_id: int, **kwargs: Any) -> dict[str, Any]:
        """Store an entitlement (see :meth:`entitlement`) and send ENTITLEMENT_CREATE to live clients."""
        data = self.entitlement(user, sku_id, **kwargs)
        await self._broadcast("ENTITLEMENT_CREATE", data)
        return data

    async def end_entitlement(
        self, entitlement: Mapping[str, Any], *, ends_at: dt.datetime | None = None
    ) -> dict:
        """Set ``ends_at`` (default now) and send ENTITLEMENT_UPDATE."""
        data = self.entitlements[int(entitlement["id"])]
        data["ends_at"] = iso(ends_at or dt.datetime.now(dt.UTC))
        await self._broadcast("ENTITLEMENT_UPDATE", data)
        return data

    async def delete_entitlement(self, entitlement: Mapping[str, Any]) -> dict:
        """Mark it deleted (a refund) and send ENTITLEMENT_DELETE."""
        data = self.entitlements[int(entitlement["id"])]
        data["deleted"] = True
        await self._broadcast("ENTITLEMENT_DELETE", data)
        return data

    def active_entitlements(self, user: FakeUser) -> list[dict[str, Any]]:
        now = dt.datetime.now(dt.UTC)
        return [
            e
            for e in self.entitlements.values()
            if e["user_id"] == str(user.id)
            and not e["deleted"]
            and (e["ends_at"] is None or dt.datetime.fromisoformat(e["ends_at"]) > now)
        ]

    # -- playing the user ------------------------------------------------------------------------------------

    async def slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser | None = None,
        channel: FakeChannel | None = None,
        dm: bool = False,
        types: Mapping[str, int] | None = None,
        entitlements: Sequence[Mapping[str, Any]] | None = None,
        roles: Sequence[FakeRole | str] | None = None,
        permissions: int | None = None,
        app_permissions: int | None = None,
        locale: str | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        """Run ``/name`` (``"admin grant"`` for a subcommand) as ``user`` (default :attr:`user`).

        In ``channel`` (default :attr:`channel`; ``dm=True`` for the bot's DM with the user). Returns at once;
        await the outcome on the returned :class:`FakeInteraction`.

        ``options`` maps option names to values; their types come from ``types``, else from the synced
        command, else from the Python value (bool → 5, int → 4, float → 10, str → 3, FakeUser → 6,
        FakeChannel → 7, FakeRole → 8, bytes or ``(filename, bytes)`` → 11 attachment).
        ``roles`` / ``permissions`` override the member's roles and permissions for this interaction.
        """
        return await self._command_interaction(
            APPLICATION_COMMAND,
            name,
            options or {},
            focused=None,
            user=user,
            channel=channel,
            dm=dm,
            types=types,
            entitlements=entitlements,
            roles=roles,
            permissions=permissions,
            app_permissions=app_permissions,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: FakeUser | None = None,
        channel: FakeChannel | None = None,
        types: Mapping[str, int] | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """Type into option ``focused`` of ``/name``; return the choices the bot answered (name, value)."""
        interaction = await self._command_interaction(
            AUTOCOMPLETE, name, options, focused=focused, user=user, channel=channel, types=types
        )
        callback = await interaction.wait_ack(timeout)
        if callback.type != AUTOCOMPLETE_RESULT:
            raise AssertionError(f"autocomplete answered with callback type {callback.type}, not 8")
        return interaction.choices or []

    async def click(
        self,
        message: Mapping[str, Any] | int | str,
        custom_id: str,
        *,
        user: FakeUser | None = None,
        values: Sequence[str] | None = None,
        roles: Sequence[FakeRole | str] | None = None,
        entitlements: Sequence[Mapping[str, Any]] | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        """Click the button (or choose ``values`` in the select) ``custom_id`` on a message's current state.

        Raises ``LookupError`` when the message shows no such component, ``ValueError`` when it is disabled:
        a user could not click it either. ``attachment_size_limit`` overrides the upload limit the
        interaction carries (and the fake enforces on its responses).
        """
        current = self.message(message)
        component = next((c for c in iter_components(current) if c.get("custom_id") == custom_id), None)
        if component is None:
            shown = [c.get("custom_id") for c in iter_components(current) if c.get("custom_id")]
            raise LookupError(f"message {current['id']} has no component {custom_id!r}; it shows {shown}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} on message {current['id']} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if "id" in component:
            data["id"] = component["id"]
        if component["type"] != 2:
            data["values"] = list(values or [])
        elif values is not None:
            raise ValueError(f"{custom_id!r} is a button: it takes no values")
        channel = self.channel_by_id(int(current["channel_id"]))
        if channel is None:
            raise LookupError(f"message {current['id']} is in unknown channel {current['channel_id']}")
        return await self._interaction(
            MESSAGE_COMPONENT,
            data,
            user=user,
            channel=channel,
            message=current,
            roles=roles,
            entitlements=entitlements,
            attachment_size_limit=attachment_size_limit,
        )

    async def submit_modal(
        self,
        opened: FakeInteraction,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: FakeUser | None = None,
    ) -> FakeInteraction:
        """Fill in and submit the modal the bot opened in answer to ``opened`` (``values`` by custom_id)."""
        modal = opened.modal
        if modal is None:
            raise LookupError(f"{opened!r} opened no modal")

        def answer(component: dict[str, Any]) -> dict[str, Any]:
            value = values.get(component["custom_id"], "")
            answered = {"type": component["type"], "custom_id": component["custom_id"]}
            if "id" in component:
                answered["id"] = component["id"]
            if isinstance(value, str):
                answered["value"] = value
            else:
                answered["values"] = list(value)
            return answered

        components: list[dict[str, Any]] = []
        for top in modal.get("components") or []:
            if top.get("type") == 1:
                components.append({"type": 1, "components": [answer(c) for c in top.get("components") or []]})
            elif top.get("type") == 18 and isinstance(top.get("component"), dict):
                components.append({"type": 18, "id": top.get("id"), "component": answer(top["component"])})
        data = {"custom_id": modal["custom_id"], "components": components}
        message = self.messages.get(opened.message_id) if opened.message_id else None
        return await self._interaction(
            MODAL_SUBMIT, data, user=user or opened.user, channel=opened.channel, message=message
        )

    async def post_as_user(
        self, content: str, *, user: FakeUser | None = None, channel: FakeChannel | None = None
    ) -> dict[str, Any]:
        """A user writes a message in a channel (sent as MESSAGE_CREATE to a client with the intent for it)."""
        target = channel or self.channel
        author = user or self.user
        message = self._new_message(target, {"content": content}, [], author=author)
        await self._message_event("MESSAGE_CREATE", message)
        self._bump()
        return message

    # -- building interactions -------------------------------------------------------------------------------

    def find_command(self, name: str, guild: FakeGuild | None = None) -> dict[str, Any] | None:
        """The synced command ``name``: the guild's own first, then the global one."""
        if guild is not None and name in self.guild_commands.get(guild.id, {}):
            return self.guild_commands[guild.id][name]
        return self.global_commands.get(name)

    async def _command_interaction(
        self,
        interaction_type: int,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str | None,
        user: FakeUser | None = None,
        channel: FakeChannel | None = None,
        dm: bool = False,
        types: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> FakeInteraction:
        actor = user or self.user
        where = self.dm_channel(actor) if dm else (channel or self.channel)
        guild = self.guild_by_id(where.guild_id)
        parts = name.split()
        command = self.find_command(parts[0], guild)
        synced = any(self.global_commands.values()) or any(self.guild_commands.values())
        if command is None and synced:
            known = sorted(set(self.global_commands) | {n for g in self.guild_commands.values() for n in g})
            raise LookupError(f"command /{parts[0]} was never synced; synced commands: {known}")

        # Walk down to the subcommand's option definitions.
        definitions: list[dict[str, Any]] = list(command.get("options") or []) if command else []
        chain: list[tuple[str, int]] = []
        for part in parts[1:]:
            sub = next((o for o in definitions if o.get("name") == part), None)
            if command is not None and sub is None:
                raise LookupError(f"/{parts[0]} has no subcommand {part!r}")
            chain.append((part, int(sub.get("type", 1)) if sub else 1))
            definitions = list(sub.get("options") or []) if sub else []

        resolved: dict[str, dict[str, Any]] = {}
        built: list[dict[str, Any]] = []
        for option_name, value in options.items():
            definition = next((o for o in definitions if o.get("name") == option_name), None)
            if command is not None and definition is None:
                known_options = [o.get("name") for o in definitions]
                raise LookupError(f"/{name} has no option {option_name!r}; it has {known_options}")
            option_type = (types or {}).get(option_name) or (
                int(definition["type"]) if definition else _infer_type(value)
            )
            option: dict[str, Any] = {
                "name": option_name,
                "type": option_type,
                "value": self._option_value(option_type, value, resolved, guild, where),
            }
            if option_name == focused:
                option["focused"] = True
            elif definition is not None:
                _check_option(name, definition, option["value"])
            built.append(option)
        if focused is None:
            missing = [o["name"] for o in definitions if o.get("required") and o["name"] not in options]
            if missing:
                raise ValueError(f"/{name} needs the required options {missing}: Discord would not send it")
        if focused is not None and focused not in options:
            built.append({"name": focused, "type": 3, "value": "", "focused": True})
        for part, part_type in reversed(chain):
            built = [{"name": part, "type": part_type, "options": built}]

        data: dict[str, Any] = {
            "id": str(command["id"]) if command else str(snowflake()),
            "name": parts[0],
            "type": 1,
            "options": built,
        }
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return await self._interaction(interaction_type, data, user=actor, channel=where, **kwargs)

    def _option_value(
        self,
        option_type: int,
        value: Any,
        resolved: dict[str, dict[str, Any]],
        guild: FakeGuild | None,
        channel: FakeChannel,
    ) -> Any:
        if option_type == 3:
            return str(value)
        if option_type == 4:
            return int(value)
        if option_type == 5:
            return bool(value)
        if option_type == 10:
            return float(value)
        if option_type in (6, 9) and isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            member = guild.members.get(value.id) if guild else None
            if member is not None and guild is not None:
                resolved.setdefault("members", {})[str(value.id)] = {
                    **member.payload(with_user=False),
                    "permissions": str(guild.permissions_of(value.id)),
                }
            return str(value.id)
        if option_type in (8, 9) and isinstance(value, FakeRole):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if option_type == 7 and isinstance(value, FakeChannel):
            resolved.setdefault("channels", {})[str(value.id)] = {
                **value.payload(),
                "permissions": str(DEFAULT_BOT_PERMISSIONS),
            }
            return str(value.id)
        if option_type == 11:
            if isinstance(value, RecordedFile):
                upload = value
            else:
                filename, raw = value if isinstance(value, tuple) else ("upload.png", value)
                upload = RecordedFile.build(
                    filename, bytes(raw), url_prefix=f"{self.base_url}/attachments/{channel.id}"
                )
            self._files[upload.id] = upload
            resolved.setdefault("attachments", {})[str(upload.id)] = upload.attachment()
            return str(upload.id)
        return str(value.id) if hasattr(value, "id") else value

    async def _interaction(
        self,
        interaction_type: int,
        data: dict[str, Any],
        *,
        user: FakeUser | None,
        channel: FakeChannel,
        message: Mapping[str, Any] | None = None,
        entitlements: Sequence[Mapping[str, Any]] | None = None,
        roles: Sequence[FakeRole | str] | None = None,
        permissions: int | None = None,
        app_permissions: int | None = None,
        locale: str | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        session = await self.wait_for_client()
        actor = user or self.user
        interaction_id = snowflake(ahead=self.clock_ahead)
        guild = self.guild_by_id(channel.guild_id)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "token": f"fake-{interaction_id}-{secrets.token_urlsafe(32)}",
            "version": 1,
            "locale": locale or actor.locale,
            "entitlements": [dict(e) for e in entitlements]
            if entitlements is not None
            else self.active_entitlements(actor),
            "attachment_size_limit": attachment_size_limit or self.attachment_size_limit,
            "channel_id": str(channel.id),
            "channel": channel.payload(),
        }
        if guild is not None:
            member = guild.members.get(actor.id) or guild.add_member(actor)
            member_roles = member.roles
            if roles is not None:
                member_roles = [r if isinstance(r, FakeRole) else guild.role(r) for r in roles]
                member = FakeMember(actor, member_roles, member.nick, member.joined_at)
            if permissions is None:
                permissions = guild.everyone.permissions
                for role in member_roles:
                    permissions |= role.permissions
                if actor.id == guild.owner_id or permissions & 8:
                    permissions = (1 << 53) - 1
            payload.update(
                {
                    "guild_id": str(guild.id),
                    "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                    "guild_locale": guild.preferred_locale,
                    "member": {**member.payload(), "permissions": str(permissions)},
                    "app_permissions": str(
                        app_permissions
                        if app_permissions is not None
                        else guild.permissions_of(self.bot_user.id)
                    ),
                    "authorizing_integration_owners": {"0": str(guild.id)},
                    "context": 0,
                }
            )
        else:
            payload.update(
                {
                    "user": actor.payload(),
                    "app_permissions": str(
                        app_permissions if app_permissions is not None else DEFAULT_BOT_PERMISSIONS
                    ),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                }
            )
        if message is not None:
            payload["message"] = _public(message)
        interaction = FakeInteraction(
            self,
            payload,
            user=actor,
            channel=channel,
            message_id=int(message["id"]) if message is not None else None,
            created_at=self._now(),
        )
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        await self._send_dispatch(session, "INTERACTION_CREATE", payload)
        self._bump()
        return interaction

    # -- REST plumbing ---------------------------------------------------------------------------------------

    def _route_table(self) -> list[tuple[str, re.Pattern[str], _Handler, bool]]:
        snow = r"(?P<{}>\d+)"
        app = snow.format("app")
        token = r"(?P<token>[^/]+)"
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", r"/users/@me", self._get_me, True),
            ("GET", rf"/users/{snow.format('user')}", self._get_user, True),
            ("POST", r"/users/@me/channels", self._create_dm, True),
            ("GET", r"/oauth2/applications/@me", self._get_application, True),
            ("GET", r"/applications/@me", self._get_application, True),
            ("GET", r"/gateway", self._get_gateway, False),
            ("GET", r"/gateway/bot", self._get_gateway, True),
            ("POST", r"/auth/logout", self._no_content, True),
            ("GET", rf"/applications/{app}/commands", self._get_commands, True),
            ("PUT", rf"/applications/{app}/commands", self._put_commands, True),
            ("POST", rf"/applications/{app}/commands", self._post_command, True),
            ("DELETE", rf"/applications/{app}/commands/{snow.format('command')}", self._delete_command, True),
            ("GET", rf"/applications/{app}/guilds/{snow.format('guild')}/commands", self._get_commands, True),
            ("PUT", rf"/applications/{app}/guilds/{snow.format('guild')}/commands", self._put_commands, True),
            (
                "POST",
                rf"/applications/{app}/guilds/{snow.format('guild')}/commands",
                self._post_command,
                True,
            ),
            ("GET", rf"/applications/{app}/entitlements", self._get_entitlements, True),
            ("POST", rf"/applications/{app}/entitlements/{snow.format('ent')}/consume", self._consume, True),
            ("GET", rf"/applications/{app}/skus", self._get_skus, True),
            ("POST", rf"/interactions/{snow.format('interaction')}/{token}/callback", self._callback, False),
            ("POST", rf"/webhooks/{app}/{token}", self._execute_webhook, False),
            ("GET", rf"/webhooks/{app}/{token}/messages/(?P<message>@original|\d+)", self._get_wh_msg, False),
            (
                "PATCH",
                rf"/webhooks/{app}/{token}/messages/(?P<message>@original|\d+)",
                self._edit_wh_msg,
                False,
            ),
            (
                "DELETE",
                rf"/webhooks/{app}/{token}/messages/(?P<message>@original|\d+)",
                self._del_wh_msg,
                False,
            ),
            ("GET", rf"/channels/{snow.format('channel')}", self._get_channel, True),
            ("GET", rf"/channels/{snow.format('channel')}/messages", self._history, True),
            ("POST", rf"/channels/{snow.format('channel')}/messages", self._create_channel_message, True),
            (
                "GET",
                rf"/channels/{snow.format('channel')}/messages/{snow.format('message')}",
                self._get_msg,
                True,
            ),
            (
                "PATCH",
                rf"/channels/{snow.format('channel')}/messages/{snow.format('message')}",
                self._edit_msg,
                True,
            ),
            (
                "DELETE",
                rf"/channels/{snow.format('channel')}/messages/{snow.format('message')}",
                self._del_msg,
                True,
            ),
            ("POST", rf"/channels/{snow.format('channel')}/typing", self._no_content, True),
            (
                "PUT",
                rf"/channels/{snow.format('channel')}/messages/{snow.format('message')}/reactions/(?P<emoji>[^/]+)/@me",
                self._add_reaction,
                True,
            ),
            ("GET", rf"/guilds/{snow.format('guild')}", self._get_guild, True),
            ("GET", rf"/guilds/{snow.format('guild')}/channels", self._get_guild_channels, True),
            ("GET", rf"/guilds/{snow.format('guild')}/roles", self._get_guild_roles, True),
            ("GET", rf"/guilds/{snow.format('guild')}/members/{snow.format('user')}", self._get_member, True),
        ]
        return [
            (method, re.compile(pattern + "$"), handler, auth) for method, pattern, handler, auth in table
        ]

    async def _api(self, raw: web.Request) -> web.StreamResponse:
        arrived = self._now()
        path = raw.path[len(API_PREFIX) :] or "/"
        authorized = raw.headers.get("Authorization") == f"Bot {self.bot_token}"
        status, body, route = 500, None, "?"
        headers: dict[str, str] = {}
        json_body: Any = None
        uploads: list[Upload] = []
        try:
            json_body, uploads = await _read_body(raw)
            self._check_schema(raw, path, json_body)
            status, body, headers, route = await self._handle(
                _Request(raw, path, json_body, uploads), path, authorized
            )
        except ApiError as exc:
            status, body, headers = exc.status, exc.body(), exc.headers
        except Exception as exc:  # a bug in the fake: answer 400 (a 5xx would make discord.py retry for 20 s)
            log.exception("fake discord failed on %s %s", raw.method, path)
            self.server_errors.append(exc)
            status, body = 400, {"message": f"fake discord internal error: {exc!r}", "code": 0}
        record = RequestRecord(
            method=raw.method,
            path=path,
            query=dict(raw.query.items()),
            json=json_body,
            files=uploads,
            status=status,
            response=body,
            at=arrived,
            route=route,
            authorized=authorized,
        )
        self.events.append(record)
        if route == "unhandled":
            self.unhandled.append(record)
        self._bump()
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.Response(
            status=status, body=json.dumps(body).encode(), content_type="application/json", headers=headers
        )

    def _check_schema(self, raw: web.Request, path: str, body: Any) -> None:
        """Refuse a body that Discord's OpenAPI description refuses (400, code 50035), and remember it."""
        if not self.validate_openapi:
            return
        try:
            validate_request(raw.method, path, body, multipart=raw.content_type.startswith("multipart/"))
        except RequestRejected as exc:
            log.warning("fake discord refused %s %s: %s", raw.method, path, exc)
            self.schema_rejections.append((raw.method, path, str(exc)))
            raise _form_error(exc.path or "_body", "OPENAPI_SCHEMA", exc.message) from None

    async def _handle(
        self, request: _Request, path: str, authorized: bool
    ) -> tuple[int, Any, dict[str, str], str]:
        fault = next((f for f in self.faults if f.matches(request.method, path)), None)
        if fault is not None:
            fault.hits += 1
            return fault.status, fault.body, dict(fault.headers), "fault"
        path_matched = False
        for method, pattern, handler, needs_auth in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if method != request.method:
                continue
            if needs_auth and not authorized:
                raise ApiError(401, 0, "401: Unauthorized")
            status, body = await handler(request, **match.groupdict())
            return status, body, {}, handler.__name__.lstrip("_")
        if path_matched:
            raise ApiError(405, 0, "405: Method Not Allowed")
        return 404, {"message": "404: Not Found", "code": 0}, {}, "unhandled"

    async def _attachment(self, raw: web.Request) -> web.Response:
        stored = self._files.get(int(raw.match_info["file_id"]))
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type=stored.content_type)

    # -- REST: login, application, commands ------------------------------------------------------------------

    async def _no_content(self, request: _Request, **_: str) -> tuple[int, Any]:
        return 204, None

    async def _get_me(self, request: _Request) -> tuple[int, Any]:
        return 200, {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "locale": "en-US"}

    async def _get_user(self, request: _Request, user: str) -> tuple[int, Any]:
        found = self.users.get(int(user))
        if found is None:
            raise ApiError(404, 10013, "Unknown User")
        return 200, found.payload()

    async def _create_dm(self, request: _Request) -> tuple[int, Any]:
        found = self.users.get(int((request.json or {}).get("recipient_id", 0)))
        if found is None:
            raise ApiError(404, 10013, "Unknown User")
        return 200, self.dm_channel(found).payload()

    async def _get_application(self, request: _Request) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.owner.payload(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
            "bot": self.bot_user.payload(),
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "integration_types_config": {"0": {}},
        }

    async def _get_gateway(self, request: _Request) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
        }

    def _check_app(self, app: str) -> None:
        if int(app) != self.application_id:
            raise ApiError(404, 10002, "Unknown Application")

    def _command_store(self, guild: str | None) -> dict[str, dict[str, Any]]:
        if guild is None:
            return self.global_commands
        if self.guild_by_id(int(guild)) is None:
            raise ApiError(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(int(guild), {})

    def _stored_command(
        self, definition: dict[str, Any], guild: str | None, old: dict | None
    ) -> dict[str, Any]:
        stored = {
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "description": "",
            "type": 1,
            **definition,
            "id": old["id"] if old else str(snowflake()),
            "application_id": str(self.application_id),
            "version": str(snowflake()),
        }
        if guild is not None:
            stored["guild_id"] = guild
        return stored

    async def _get_commands(self, request: _Request, app: str, guild: str | None = None) -> tuple[int, Any]:
        self._check_app(app)
        return 200, list(self._command_store(guild).values())

    async def _put_commands(self, request: _Request, app: str, guild: str | None = None) -> tuple[int, Any]:
        self._check_app(app)
        store = self._command_store(guild)
        definitions = request.json or []
        if len(definitions) > 100:
            raise _form_error("_errors", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        fresh = {d["name"]: self._stored_command(d, guild, store.get(d["name"])) for d in definitions}
        store.clear()
        store.update(fresh)
        return 200, list(store.values())

    async def _post_command(self, request: _Request, app: str, guild: str | None = None) -> tuple[int, Any]:
        self._check_app(app)
        store = self._command_store(guild)
        definition = request.json or {}
        stored = self._stored_command(definition, guild, store.get(definition["name"]))
        store[definition["name"]] = stored
        return 200, stored

    async def _delete_command(self, request: _Request, app: str, command: str) -> tuple[int, Any]:
        self._check_app(app)
        for name, stored in list(self.global_commands.items()):
            if stored["id"] == command:
                del self.global_commands[name]
                return 204, None
        raise ApiError(404, 10063, "Unknown application command")

    async def _get_entitlements(self, request: _Request, app: str) -> tuple[int, Any]:
        self._check_app(app)
        found = list(self.entitlements.values())
        if "user_id" in request.query:
            found = [e for e in found if e["user_id"] == request.query["user_id"]]
        if request.query.get("exclude_ended", "").lower() in ("1", "true"):
            now = dt.datetime.now(dt.UTC)
            found = [
                e for e in found if e["ends_at"] is None or dt.datetime.fromisoformat(e["ends_at"]) > now
            ]
        if request.query.get("exclude_deleted", "true").lower() in ("1", "true"):
            found = [e for e in found if not e["deleted"]]
        return 200, found

    async def _consume(self, request: _Request, app: str, ent: str) -> tuple[int, Any]:
        self._check_app(app)
        if int(ent) not in self.entitlements:
            raise ApiError(404, 10069, "Unknown Entitlement")
        self.entitlements[int(ent)]["consumed"] = True
        return 204, None

    async def _get_skus(self, request: _Request, app: str) -> tuple[int, Any]:
        self._check_app(app)
        return 200, self.skus

    # -- REST: guilds and channels ---------------------------------------------------------------------------

    def _guild(self, guild: str) -> FakeGuild:
        found = self.guild_by_id(int(guild))
        if found is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return found

    async def _get_guild(self, request: _Request, guild: str) -> tuple[int, Any]:
        return 200, self._guild(guild).payload(full=False)

    async def _get_guild_channels(self, request: _Request, guild: str) -> tuple[int, Any]:
        return 200, [c.payload() for c in self._guild(guild).channels]

    async def _get_guild_roles(self, request: _Request, guild: str) -> tuple[int, Any]:
        return 200, [r.payload() for r in self._guild(guild).roles]

    async def _get_member(self, request: _Request, guild: str, user: str) -> tuple[int, Any]:
        member = self._guild(guild).members.get(int(user))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return 200, member.payload()

    def _channel(self, channel: str | int) -> FakeChannel:
        found = self.channel_by_id(int(channel))
        if found is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return found

    async def _get_channel(self, request: _Request, channel: str) -> tuple[int, Any]:
        return 200, self._channel(channel).payload()

    def _channel_message(self, channel: str, message: str) -> dict[str, Any]:
        self._channel(channel)
        found = self.messages.get(int(message))
        if found is None or found["channel_id"] != channel or found["flags"] & EPHEMERAL:
            raise ApiError(404, 10008, "Unknown Message")
        return found

    async def _history(self, request: _Request, channel: str) -> tuple[int, Any]:
        found = [m for m in self.channel_messages(self._channel(channel), include_ephemeral=False)]
        if "before" in request.query:
            found = [m for m in found if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            found = [m for m in found if int(m["id"]) > int(request.query["after"])]
        limit = int(request.query.get("limit", 50))
        return 200, [_public(m) for m in reversed(found)][:limit]

    async def _create_channel_message(self, request: _Request, channel: str) -> tuple[int, Any]:
        target = self._channel(channel)
        payload = request.json or {}
        _validate_message(payload, request.uploads, self.attachment_size_limit, creating=True)
        # enforce_nonce: a second post with the nonce of an earlier one from the same author returns that
        # message and makes none (Discord keeps nonces a few minutes; this fake keeps them all).
        nonce = payload.get("nonce")
        key = (target.id, self.bot_user.id, str(nonce)) if nonce is not None else None
        if key is not None and payload.get("enforce_nonce") and key in self._nonces:
            existing = self.messages.get(self._nonces[key])
            if existing is not None:
                return 200, _public(existing)
        message = self._new_message(target, payload, request.uploads, author=self.bot_user)
        if key is not None:
            self._nonces[key] = int(message["id"])
        await self._message_event("MESSAGE_CREATE", message)
        return 200, _public(message)

    async def _get_msg(self, request: _Request, channel: str, message: str) -> tuple[int, Any]:
        return 200, _public(self._channel_message(channel, message))

    async def _edit_msg(self, request: _Request, channel: str, message: str) -> tuple[int, Any]:
        found = self._channel_message(channel, message)
        if found["author"]["id"] != str(self.bot_user.id):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        payload = request.json or {}
        _validate_message(payload, request.uploads, self.attachment_size_limit, creating=False)
        self._edit_message(found, payload, request.uploads)
        await self._message_event("MESSAGE_UPDATE", found)
        return 200, _public(found)

    async def _del_msg(self, request: _Request, channel: str, message: str) -> tuple[int, Any]:
        found = self._channel_message(channel, message)
        await self._delete_message(found)
        return 204, None

    async def _add_reaction(
        self, request: _Request, channel: str, message: str, emoji: str
    ) -> tuple[int, Any]:
        found = self._channel_message(channel, message)
        reactions = found.setdefault("reactions", [])
        existing = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
        if existing is None:
            reactions.append({"count": 1, "me": True, "emoji": {"id": None, "name": emoji}})
        return 204, None

    # -- REST: interactions and webhooks ---------------------------------------------------------------------

    async def _callback(self, request: _Request, interaction: str, token: str) -> tuple[int, Any]:
        found = self.interactions.get(int(interaction))
        if found is None or found.token != token:
            raise ApiError(404, 10062, "Unknown interaction")
        now = self._now()
        if found.callback is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if now - found.created_at > self.interaction_deadline:
            raise ApiError(404, 10062, "Unknown interaction")
        body = request.json or {}
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        allowed = {
            APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
            MESSAGE_COMPONENT: {
                CHANNEL_MESSAGE,
                DEFERRED_CHANNEL_MESSAGE,
                DEFERRED_UPDATE,
                UPDATE_MESSAGE,
                MODAL,
            },
            AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
            MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE}
            | ({DEFERRED_UPDATE, UPDATE_MESSAGE} if found.message_id else set()),
        }
        if kind not in allowed.get(found.type, set()):
            raise _form_error(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Callback type {kind} is invalid here"
            )
        if kind == AUTOCOMPLETE_RESULT and len(data.get("choices") or []) > 25:
            raise _form_error("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            _validate_message(
                data, request.uploads, self._size_limit(found), creating=kind == CHANNEL_MESSAGE
            )
        if kind == MODAL:
            _validate_modal(data)

        found.callback = CallbackRecord(kind, data, request.uploads, now, now - found.created_at)
        message: dict[str, Any] | None = None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            flags = int(data.get("flags") or 0) & (
                EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
            )
            if kind == DEFERRED_CHANNEL_MESSAGE:
                flags = (flags & EPHEMERAL) | LOADING
                contents: dict[str, Any] = {}
            else:
                contents = data
            message = self._new_message(
                found.channel,
                contents,
                request.uploads if kind == CHANNEL_MESSAGE else [],
                author=self.bot_user,
                interaction=found,
                flags=flags,
            )
            found.original_id = int(message["id"])
            await self._message_event("MESSAGE_CREATE", message)
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            found.original_id = found.message_id
            message = self.messages.get(found.message_id or 0)
            if kind == UPDATE_MESSAGE and message is not None:
                self._edit_message(message, data, request.uploads)
                await self._message_event("MESSAGE_UPDATE", message)
        self._bump()

        if not request.flag("with_response"):
            return 204, None
        result: dict[str, Any] = {
            "interaction": {
                "id": str(found.id),
                "type": found.type,
                "activity_instance_id": None,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": bool(message and message["flags"] & LOADING),
                "response_message_ephemeral": bool(message and message["flags"] & EPHEMERAL),
            },
            "resource": {"type": kind},
        }
        if message is not None:
            result["resource"]["message"] = _public(message)
        return 200, result

    def _size_limit(self, interaction: FakeInteraction) -> int:
        return int(interaction.payload.get("attachment_size_limit") or self.attachment_size_limit)

    def _webhook_interaction(self, app: str, token: str) -> FakeInteraction:
        if int(app) != self.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        found = self._by_token.get(token)
        if found is None or found.token_expired:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        if found.callback is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        return found

    def _webhook_message(self, found: FakeInteraction, message: str) -> dict[str, Any]:
        message_id = found.original_id if message == "@original" else int(message)
        if message_id is None or (message_id != found.original_id and message_id not in found.followup_ids):
            raise ApiError(404, 10008, "Unknown Message")
        stored = self.messages.get(message_id)
        if stored is None:
            raise ApiError(404, 10008, "Unknown Message")
        return stored

    async def _execute_webhook(self, request: _Request, app: str, token: str) -> tuple[int, Any]:
        found = self._webhook_interaction(app, token)
        payload = request.json or {}
        original = found.original
        # After a deferred (type 5) response, the first follow-up replaces the "thinking…" message.
        if (
            found.callback is not None
            and found.callback.type == DEFERRED_CHANNEL_MESSAGE
            and original is not None
            and original["flags"] & LOADING
        ):
            _validate_message(payload, request.uploads, self._size_limit(found), creating=True)
            self._edit_message(original, payload, request.uploads)
            await self._message_event("MESSAGE_UPDATE", original)
            message = original
        else:
            _validate_message(payload, request.uploads, self._size_limit(found), creating=True)
            flags = int(payload.get("flags") or 0) & (
                EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
            )
            message = self._new_message(
                found.channel,
                payload,
                request.uploads,
                author=self.bot_user,
                interaction=found,
                flags=flags,
                followup=True,
            )
            found.followup_ids.append(int(message["id"]))
            await self._message_event("MESSAGE_CREATE", message)
        return (200, _public(message)) if request.flag("wait") else (204, None)

    async def _get_wh_msg(self, request: _Request, app: str, token: str, message: str) -> tuple[int, Any]:
        found = self._webhook_interaction(app, token)
        return 200, _public(self._webhook_message(found, message))

    async def _edit_wh_msg(self, request: _Request, app: str, token: str, message: str) -> tuple[int, Any]:
        found = self._webhook_interaction(app, token)
        stored = self._webhook_message(found, message)
        payload = request.json or {}
        _validate_message(payload, request.uploads, self._size_limit(found), creating=False)
        self._edit_message(stored, payload, request.uploads)
        await self._message_event("MESSAGE_UPDATE", stored)
        return 200, _public(stored)

    async def _del_wh_msg(self, request: _Request, app: str, token: str, message: str) -> tuple[int, Any]:
        found = self._webhook_interaction(app, token)
        await self._delete_message(self._webhook_message(found, message))
        return 204, None

    # -- messages --------------------------------------------------------------------------------------------

    def _new_message(
        self,
        channel: FakeChannel,
        payload: Mapping[str, Any],
        uploads: Sequence[Upload],
        *,
        author: FakeUser,
        interaction: FakeInteraction | None = None,
        flags: int | None = None,
        followup: bool = False,
    ) -> dict[str, Any]:
        message_id = snowflake()
        content = payload.get("content") or ""
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts")),
            "mention_everyone": "@everyone" in content,
            "mentions": self._mentions(content),
            "mention_roles": [],
            "attachments": [],
            "embeds": list(payload.get("embeds") or []),
            "pinned": False,
            "type": 0,
            "components": list(payload.get("components") or []),
            "flags": int(payload.get("flags") or 0) if flags is None else flags,
            "files": [],
        }
        if payload.get("nonce") is not None:
            message["nonce"] = payload["nonce"]
        reference = payload.get("message_reference")
        if reference:
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reference.get("message_id")),
                "channel_id": str(reference.get("channel_id") or channel.id),
                "guild_id": str(channel.guild_id) if channel.guild_id else None,
            }
            referenced = self.messages.get(int(reference.get("message_id") or 0))
            if referenced is not None:
                message["referenced_message"] = _public(referenced)
        if interaction is not None:
            if interaction.type == APPLICATION_COMMAND and not followup:
                message["type"] = 20
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user.payload(),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if followup and interaction.original_id:
                metadata["original_response_message_id"] = str(interaction.original_id)
            if interaction.message_id:
                metadata["interacted_message_id"] = str(interaction.message_id)
            if interaction.type == APPLICATION_COMMAND:
                metadata["name"] = interaction.data.get("name")
                message["interaction"] = {
                    "id": str(interaction.id),
                    "type": interaction.type,
                    "name": interaction.data.get("name"),
                    "user": interaction.user.payload(),
                }
            message["interaction_metadata"] = metadata
            self._message_interaction[message_id] = interaction
        self._set_files(message, payload, uploads, channel.id)
        self.messages[message_id] = message
        self.message_versions[message_id] = [_snapshot(message)]
        return message

    def _edit_message(
        self, message: dict[str, Any], payload: Mapping[str, Any], uploads: Sequence[Upload]
    ) -> None:
        was_loading = bool(message["flags"] & LOADING)
        if "content" in payload:
            message["content"] = payload["content"] or ""
            message["mentions"] = self._mentions(message["content"])
        if "embeds" in payload:
            message["embeds"] = list(payload["embeds"] or [])
        if "components" in payload:
            message["components"] = list(payload["components"] or [])
        flags = message["flags"] & ~LOADING
        if payload.get("flags") is not None:
            editable = SUPPRESS_EMBEDS | IS_COMPONENTS_V2
            flags = (flags & ~editable) | (int(payload["flags"]) & editable)
        message["flags"] = flags
        self._set_files(message, payload, uploads, int(message["channel_id"]))
        if not was_loading:
            message["edited_timestamp"] = iso()
        self.message_versions.setdefault(int(message["id"]), []).append(_snapshot(message))
        self._bump()

    def _set_files(
        self, message: dict[str, Any], payload: Mapping[str, Any], uploads: Sequence[Upload], channel_id: int
    ) -> None:
        """Discord's rule: an ``attachments`` list keeps the listed existing ids plus new files; without it,
        existing attachments stay and new files are added."""
        existing: list[RecordedFile] = message["files"]
        by_index = {u.index: u for u in uploads}
        prefix = f"{self.base_url}/attachments/{channel_id}"

        def record(upload: Upload, spec: Mapping[str, Any] | None = None) -> RecordedFile:
            stored = RecordedFile.build(
                (spec or {}).get("filename") or upload.filename,
                upload.data,
                sent_content_type=upload.content_type,
                url_prefix=prefix,
                description=(spec or {}).get("description"),
            )
            self._files[stored.id] = stored
            return stored

        if "attachments" in payload:
            kept: list[RecordedFile] = []
            used: set[int] = set()
            for spec in payload.get("attachments") or []:
                spec_id = int(spec["id"])
                old = next((f for f in existing if f.id == spec_id), None)
                if old is not None:
                    kept.append(old)
                elif spec_id in by_index and spec_id not in used:
                    kept.append(record(by_index[spec_id], spec))
                    used.add(spec_id)
            kept.extend(record(u) for i, u in sorted(by_index.items()) if i not in used)
        else:
            kept = existing + [record(u) for _, u in sorted(by_index.items())]
        message["files"] = kept
        message["attachments"] = [f.attachment() for f in kept]

    def _mentions(self, content: str) -> list[dict[str, Any]]:
        ids = {int(m) for m in re.findall(r"<@!?(\d+)>", content)}
        return [self.users[i].payload() for i in ids if i in self.users]

    async def _delete_message(self, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        self.deleted_messages[message_id] = self.messages.pop(message_id)
        if self.dispatch_message_events and not message["flags"] & EPHEMERAL:
            data = {"id": message["id"], "channel_id": message["channel_id"]}
            channel = self.channel_by_id(int(message["channel_id"]))
            if channel is not None and channel.guild_id:
                data["guild_id"] = str(channel.guild_id)
            await self._broadcast("MESSAGE_DELETE", data, intent=_message_intent(data))
        self._bump()

    async def _message_event(self, event: str, message: dict[str, Any]) -> None:
        self._bump()
        if not self.dispatch_message_events or message["flags"] & EPHEMERAL:
            return
        data = _public(message)
        channel = self.channel_by_id(int(message["channel_id"]))
        if channel is not None and channel.guild_id:
            data["guild_id"] = str(channel.guild_id)
            guild = self.guild_by_id(channel.guild_id)
            author_id = int(message["author"]["id"])
            member = guild.members.get(author_id) if guild else None
            if member is not None:
                data["member"] = member.payload(with_user=False)
        await self._broadcast(event, data, intent=_message_intent(data))


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _message_intent(data: Mapping[str, Any]) -> int:
    """The intent a message event needs: GUILD_MESSAGES in a server, DIRECT_MESSAGES in a DM."""
    return GUILD_MESSAGES if data.get("guild_id") else DIRECT_MESSAGES


def _public(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as the API returns it (without the recorded ``files``)."""
    return {k: v for k, v in message.items() if k != "files"}


def _snapshot(message: Mapping[str, Any]) -> dict[str, Any]:
    snapshot = json.loads(json.dumps(_public(message)))
    snapshot["files"] = list(message["files"])
    return snapshot


def _infer_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, FakeUser):
        return 6
    if isinstance(value, FakeChannel):
        return 7
    if isinstance(value, FakeRole):
        return 8
    if isinstance(value, bytes | tuple | RecordedFile):
        return 11
    return 3


def _check_option(command: str, definition: Mapping[str, Any], value: Any) -> None:
    """Refuse a value Discord's client would not let a user send (choices, ranges, lengths)."""
    name = definition["name"]
    choices = definition.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(
            f"/{command} {name}={value!r} is not one of its choices {[c['value'] for c in choices]}"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = definition.get("min_value"), definition.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"/{command} {name}={value!r} is outside [{low}, {high}]")
    if isinstance(value, str) and definition.get("type") == 3:
        shortest, longest = definition.get("min_length", 0), definition.get("max_length", 6000)
        if not shortest <= len(value) <= longest:
            raise ValueError(
                f"/{command} {name} must be {shortest} to {longest} characters, got {len(value)}"
            )


_FILES_PART = re.compile(r"files\[(\d+)\]$")


async def _read_body(raw: web.Request) -> tuple[Any, list[Upload]]:
    """The JSON payload (``payload_json`` for multipart) and the uploaded ``files[n]`` parts."""
    if raw.content_type.startswith("multipart/"):
        reader = await raw.multipart()
        payload: Any = None
        uploads: list[Upload] = []
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):  # a nested multipart: Discord does not use them
                continue
            data = await part.read(decode=False)
            if part.name == "payload_json":
                payload = json.loads(bytes(data).decode())
                continue
            matched = _FILES_PART.match(part.name or "")
            if matched is None:
                raise _form_error(part.name or "?", "UNKNOWN_FIELD", "Unexpected multipart field")
            uploads.append(
                Upload(
                    index=int(matched.group(1)),
                    filename=part.filename or f"file{matched.group(1)}",
                    content_type=part.headers.get("Content-Type", "application/octet-stream"),
                    data=bytes(data),
                )
            )
        return payload, uploads
    text = await raw.text()
    if not text:
        return None, []
    try:
        return json.loads(text), []
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def _validate_message(
    payload: Mapping[str, Any], uploads: Sequence[Upload], size_limit: int, *, creating: bool
) -> None:
    """Reject what Discord rejects: empty or oversized messages, bad component layouts, large files."""
    content = payload.get("content") or ""
    if len(content) > 2000:
        raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    if len(payload.get("embeds") or []) > 10:
        raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if len(uploads) > 10:
        raise _form_error("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    for upload in uploads:
        if len(upload.data) > size_limit:
            raise ApiError(413, 40005, "Request entity too large")
    components = payload.get("components") or []
    flags = int(payload.get("flags") or 0)
    if not flags & IS_COMPONENTS_V2:
        if len(components) > 5:
            raise _form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        for row_index, row in enumerate(components):
            children = row.get("components") or []
            if row.get("type") != 1 or not 1 <= len(children) <= 5:
                raise _form_error(
                    f"components.{row_index}",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "Action rows hold 1 to 5 items.",
                )
    seen: set[str] = set()
    for index, component in enumerate(iter_components(payload)):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if len(custom_id) > 100:
            raise _form_error(
                f"components.{index}.custom_id", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer."
            )
        if custom_id in seen:
            raise _form_error(
                f"components.{index}.custom_id",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id is duplicated",
            )
        seen.add(custom_id)
        if len(component.get("label") or "") > 80:
            raise _form_error(
                f"components.{index}.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length."
            )
    if creating and not (content or payload.get("embeds") or uploads or components or payload.get("poll")):
        raise ApiError(400, 50006, "Cannot send an empty message")


#: The modal components Discord takes inside a Label (type 18), by type: text input, string select,
#: file upload, radio group, checkbox group, checkbox; and a text display (10) at the top level.
_MODAL_INPUTS = {4, 3, 19, 21, 22, 23}
_MODAL_OPTIONS_MAX = {3: 25, 21: 10, 22: 10}


def _modal_field(path: str, component: Mapping[str, Any]) -> None:
    kind = component.get("type")
    if kind not in _MODAL_INPUTS:
        raise _form_error(f"{path}.type", "COMPONENT_TYPE_INVALID", f"Component type {kind} is invalid in a modal")
    custom_id = component.get("custom_id") or ""
    if not 1 <= len(custom_id) <= 100:
        raise _form_error(f"{path}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    if kind == 4:
        if int(component.get("max_length") or 4000) > 4000:
            raise _form_error(f"{path}.max_length", "NUMBER_TYPE_MAX", "Must be 4000 or less.")
        if len(component.get("value") or "") > int(component.get("max_length") or 4000):
            raise _form_error(f"{path}.value", "BASE_TYPE_MAX_LENGTH", "Longer than max_length.")
    if kind in _MODAL_OPTIONS_MAX:
        options = component.get("options") or []
        if not 1 <= len(options) <= _MODAL_OPTIONS_MAX[kind]:
            raise _form_error(f"{path}.options", "BASE_TYPE_BAD_LENGTH",
                              f"Must be between 1 and {_MODAL_OPTIONS_MAX[kind]} in length.")
        if int(component.get("max_values") or 1) > len(options):
            raise _form_error(f"{path}.max_values", "NUMBER_TYPE_MAX", "More than the options.")


def _validate_modal(data: Mapping[str, Any]) -> None:
    """Reject the modals Discord rejects: a title over 45 characters, no or more than 5 top-level
    components, labels over 45 characters, inputs that do not belong in a modal, duplicate custom ids."""
    title = data.get("title") or ""
    if not 1 <= len(title) <= 45:
        raise _form_error("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    custom_id = data.get("custom_id") or ""
    if not 1 <= len(custom_id) <= 100:
        raise _form_error("data.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        raise _form_error("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    seen: set[str] = set()
    for index, top in enumerate(components):
        path = f"data.components.{index}"
        if top.get("type") == 18:  # Label
            if not 1 <= len(top.get("label") or "") <= 45:
                raise _form_error(f"{path}.label", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
            if len(top.get("description") or "") > 100:
                raise _form_error(f"{path}.description", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer.")
            fields = [top.get("component") or {}]
        elif top.get("type") == 1:  # the older action row holding one text input
            fields = list(top.get("components") or [])
            if len(fields) != 1 or fields[0].get("type") != 4:
                raise _form_error(path, "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "A modal row holds one text input.")
        elif top.get("type") == 10:  # Text display
            continue
        else:
            raise _form_error(f"{path}.type", "COMPONENT_TYPE_INVALID", "Invalid top-level modal component")
        for field_index, component in enumerate(fields):
            _modal_field(f"{path}.component" if top.get("type") == 18 else f"{path}.components.{field_index}",
                         component)
            if component["custom_id"] in seen:
                raise _form_error(path, "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id is duplicated")
            seen.add(component["custom_id"])


# ----------------------------------------------------------------------------------------------------------
# Pointing discord.py at the fake


class point_client_at:
    """Point discord.py's REST base and gateway at ``fake`` now.

    Undo with :meth:`restore`, or use it as a context manager.

    >>> with point_client_at(fake):
    ...     await client.start(fake.bot_token)
    """

    def __init__(self, fake: FakeDiscord) -> None:
        import discord.gateway
        import discord.http
        import yarl

        self._old = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = fake.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)

    def restore(self) -> None:
        import discord.gateway
        import discord.http

        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._old

    def __enter__(self) -> point_client_at:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()


@contextlib.asynccontextmanager
async def run_client(
    client: Any, fake: FakeDiscord, *, redirect: bool = True, timeout: float = 10.0
) -> AsyncIterator[Any]:
    """Log ``client`` (a ``discord.Client``) in to ``fake``, wait until it is ready, yield it, then close it.

    ``redirect`` also points discord.py at the fake for the duration (see :func:`point_client_at`); turn it
    off when the code under test sets ``Route.BASE`` and ``DEFAULT_GATEWAY`` itself. If the client dies while
    starting, its exception is raised here instead of a timeout.
    """
    pointer = point_client_at(fake) if redirect else None
    connect: asyncio.Task[None] | None = None
    try:
        await client.login(fake.bot_token)
        connect = asyncio.create_task(client.connect(reconnect=True))
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({connect, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if connect in done:
                connect.result()
                raise RuntimeError("the client stopped before it was ready")
            raise TimeoutError(fake._timeout_report("the client to become ready", timeout))
        yield client
    finally:
        await client.close()
        if connect is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(connect, timeout=5.0)
        if pointer is not None:
            pointer.restore()
