"""A loopback fake Discord (REST + gateway) for driving the real discord.py client in tests.

See README.md beside this file.
"""

from .models import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser, RecordedFile, snowflake
from .server import (
    ApiError,
    CallbackRecord,
    Event,
    FakeDiscord,
    FakeInteraction,
    Fault,
    GatewayRecord,
    GatewaySession,
    RequestRecord,
    Upload,
    buttons,
    iter_components,
    point_client_at,
    run_client,
)

__all__ = [
    "ApiError",
    "CallbackRecord",
    "Event",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "Fault",
    "GatewayRecord",
    "GatewaySession",
    "RecordedFile",
    "RequestRecord",
    "Upload",
    "buttons",
    "iter_components",
    "point_client_at",
    "run_client",
    "snowflake",
]
