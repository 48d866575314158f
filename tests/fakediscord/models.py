"""Plain data the fake Discord serves: snowflakes, users, guilds, channels, roles, uploaded files.

Each class renders itself in Discord's API v10 shape (``payload()``); nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import io
import mimetypes
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DISCORD_EPOCH_MS",
    "FakeChannel",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "RecordedFile",
    "iso",
    "snowflake",
    "snowflake_time",
]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADD_REACTIONS = 1 << 6
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

DEFAULT_EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS

_lock = threading.Lock()
_last_ms = 0
_increment = 0


def snowflake(at: float | None = None, *, ahead: float = 0.0) -> int:
    """A fresh snowflake for now (unique and increasing in this process), or for ``at`` (Unix seconds).

    ``ahead`` moves "now" that many seconds on (a Discord clock a test advanced, see
    ``FakeDiscord.advance_clock``); later snowflakes never go back before it.
    """
    global _last_ms, _increment
    with _lock:
        if at is not None:
            ms = int(at * 1000)
        else:
            ms = max(int((time.time() + ahead) * 1000), _last_ms)
            if ms == _last_ms:
                _increment += 1
                if _increment > 0xFFF:
                    ms, _increment = ms + 1, 0
            else:
                _increment = 0
            _last_ms = ms
        return ((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (_increment & 0xFFF)


def snowflake_time(value: int) -> dt.datetime:
    """The creation time encoded in a snowflake."""
    return dt.datetime.fromtimestamp(((value >> 22) + DISCORD_EPOCH_MS) / 1000, tz=dt.UTC)


def iso(at: dt.datetime | None = None) -> str:
    """An ISO 8601 timestamp as Discord writes them."""
    return (at or dt.datetime.now(dt.UTC)).isoformat()


@dataclass(eq=False)
class FakeUser:
    """A Discord user. ``bot=True`` for the application's own user."""

    username: str
    id: int = field(default_factory=snowflake)
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None
    locale: str = "en-US"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "public_flags": 0,
            "flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(eq=False)
class FakeRole:
    """A guild role. The ``@everyone`` role has the guild's id."""

    name: str
    permissions: int = 0
    id: int = field(default_factory=snowflake)
    position: int = 1
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeChannel:
    """A channel: ``type`` 0 is a guild text channel, 1 a DM."""

    name: str
    id: int = field(default_factory=snowflake)
    type: int = 0
    guild_id: int | None = None
    position: int = 0
    nsfw: bool = False
    recipient: FakeUser | None = None

    def payload(self) -> dict[str, Any]:
        if self.type == 1:
            return {
                "id": str(self.id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.recipient.payload()] if self.recipient else [],
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id) if self.guild_id else None,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": self.nsfw,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeMember:
    """A user's membership of a guild."""

    user: FakeUser
    roles: list[FakeRole] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso)

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r.id) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass(eq=False)
class FakeGuild:
    """A guild with its text channels, roles (``@everyone`` first) and members."""

    name: str
    id: int = field(default_factory=snowflake)
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: dict[int, FakeMember] = field(default_factory=dict)
    owner_id: int = 0
    preferred_locale: str = "en-US"

    def __post_init__(self) -> None:
        if not any(r.id == self.id for r in self.roles):
            self.roles.insert(0, FakeRole("@everyone", DEFAULT_EVERYONE_PERMISSIONS, id=self.id, position=0))
        for channel in self.channels:
            channel.guild_id = self.id

    @property
    def everyone(self) -> FakeRole:
        return next(r for r in self.roles if r.id == self.id)

    def channel(self, name_or_id: str | int) -> FakeChannel:
        """The channel with this name or id; raises ``KeyError`` naming the channels there are."""
        for channel in self.channels:
            if name_or_id in (channel.name, channel.id):
                return channel
        raise KeyError(f"no channel {name_or_id!r} in guild {self.name!r}: {[c.name for c in self.channels]}")

    def role(self, name_or_id: str | int) -> FakeRole:
        """The role with this name or id; raises ``KeyError`` naming the roles there are."""
        for role in self.roles:
            if name_or_id in (role.name, role.id):
                return role
        raise KeyError(f"no role {name_or_id!r} in guild {self.name!r}: {[r.name for r in self.roles]}")

    def add_channel(self, name: str, **kwargs: Any) -> FakeChannel:
        channel = FakeChannel(name, guild_id=self.id, position=len(self.channels), **kwargs)
        self.channels.append(channel)
        return channel

    def add_role(self, name: str, permissions: int = 0) -> FakeRole:
        role = FakeRole(name, permissions, position=len(self.roles))
        self.roles.append(role)
        return role

    def add_member(self, user: FakeUser, roles: list[FakeRole] | None = None) -> FakeMember:
        member = FakeMember(user, list(roles or []))
        self.members[user.id] = member
        return member

    def permissions_of(self, user_id: int) -> int:
        """The member's guild permissions: ``@everyone`` plus their roles; owner and admins get all."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.everyone.permissions
        member = self.members.get(user_id)
        for role in member.roles if member else []:
            value |= role.permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def payload(self, *, full: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": [r.payload() for r in self.roles],
            "emojis": [],
            "stickers": [],
            "max_members": 500000,
        }
        if full:
            data.update(
                {
                    "unavailable": False,
                    "large": False,
                    "member_count": len(self.members),
                    "joined_at": iso(),
                    "channels": [c.payload() for c in self.channels],
                    "threads": [],
                    "members": [m.payload() for m in self.members.values()],
                    "voice_states": [],
                    "presences": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                }
            )
        return data


@dataclass(eq=False)
class RecordedFile:
    """A file that arrived as a multipart ``files[n]`` part, as Discord would store it.

    ``content_type`` is what Discord reports (sniffed from the name and bytes; discord.py always
    sends ``application/octet-stream``); ``sent_content_type`` is the part's own header.
    """

    id: int
    filename: str
    data: bytes
    content_type: str
    sent_content_type: str = "application/octet-stream"
    description: str | None = None
    width: int | None = None
    height: int | None = None
    url: str = ""

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def build(
        cls,
        filename: str,
        data: bytes,
        *,
        sent_content_type: str = "application/octet-stream",
        url_prefix: str = "",
        description: str | None = None,
    ) -> RecordedFile:
        file_id = snowflake()
        width, height = _image_size(data)
        return cls(
            id=file_id,
            filename=filename,
            data=data,
            content_type=_sniff_content_type(filename, data, sent_content_type),
            sent_content_type=sent_content_type,
            description=description,
            width=width,
            height=height,
            url=f"{url_prefix}/{file_id}/{filename}",
        )

    def attachment(self) -> dict[str, Any]:
        """This file as a message's attachment object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        if self.width is not None:
            data["width"] = self.width
            data["height"] = self.height
        return data

    def image(self) -> Any:
        """The file opened with Pillow (``PIL.Image.Image``); raises if it is not an image."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image


_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
]


def _sniff_content_type(filename: str, data: bytes, sent: str) -> str:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if sent and sent != "application/octet-stream":
        return sent
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:
        return None, None
