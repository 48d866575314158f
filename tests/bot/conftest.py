"""The bot under test: the real ImagineBot against the loopback fake Discord, a real worker, real services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.client import ImagineBot
from bot.services import BotServices
from imagine.settings import Settings
from tests.fakediscord import FakeDiscord, run_client
from tests.support.services import WorkerProcess, make_settings

#: Plans for the end-to-end tests: a roomy default, tiny plans that run out, a premium SKU.
TEST_PLANS = Path(__file__).with_name("plans.toml")


@pytest.fixture(scope="session")
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server
        assert server.server_errors == []
        assert server.schema_rejections == [], "the bot sent what Discord would refuse"


@pytest.fixture(autouse=True)
def refuses_what_discord_refuses(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that talks to the fake: nothing the bot sent was refused by Discord's OpenAPI description."""
    yield
    if "fake" in request.fixturenames:
        fake: FakeDiscord = request.getfixturevalue("fake")
        rejected, fake.schema_rejections[:] = list(fake.schema_rejections), []
        assert rejected == [], "the bot sent what Discord would refuse"


@pytest.fixture(scope="session")
def bot_settings(
    fake: FakeDiscord, database_url: str, redis_url: str, tiny_models: Path, data_dir: Path
) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        models_file=tiny_models,
        plans_file=TEST_PLANS,
        data_dir=data_dir,
        discord_token=fake.bot_token,
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
    )


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, fake: FakeDiscord, **options: Any) -> AsyncIterator[ImagineBot]:
    """A fresh bot process-equivalent: new services, new client, logged in and listening for job events."""
    services = BotServices.create(settings, database_url=settings.database_url, broker_url=settings.redis_url)
    bot = ImagineBot(services, guild_ready_timeout=0.1, **options)
    async with run_client(bot, fake, redirect=False):
        await bot.delivery.wait_listening()
        yield bot


@pytest.fixture(scope="module")
async def bot(bot_settings: Settings, fake: FakeDiscord, worker: WorkerProcess) -> AsyncIterator[ImagineBot]:
    """One bot per test module: modules that restart the bot themselves don't use it (and so see no other bot)."""
    async with running_bot(bot_settings, fake) as client:
        yield client
