"""Acknowledge first, and PostgreSQL briefly down.

The bot reaches the real PostgreSQL and Redis through a proxy (``tests.support.faultproxy``). Held, every
round trip waits; so an interaction acknowledged while both are held was acknowledged before any database
or Redis call (the rate limit's included). Cut, PostgreSQL refuses connections as a stopped server does.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.acks import TRY_AGAIN
from bot.client import ImagineBot
from db.models import Job
from db.session import AsyncDatabase
from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeUser
from tests.support.faultproxy import FaultProxy
from tests.support.messages import ephemeral_answer

MESSAGE_COMPONENT = 3
EPHEMERAL = 64
_names = itertools.count()


@pytest.fixture(scope="module")
async def proxies(bot_settings: Settings) -> AsyncIterator[tuple[FaultProxy, FaultProxy]]:
    postgres = await FaultProxy(bot_settings.database_url).start()
    redis = await FaultProxy(bot_settings.redis_url).start()
    yield postgres, redis
    await postgres.stop()
    await redis.stop()


@pytest.fixture(scope="module")
async def proxied_bot(
    bot_settings: Settings, fake: FakeDiscord, proxies: tuple[FaultProxy, FaultProxy]
) -> AsyncIterator[ImagineBot]:
    postgres, redis = proxies
    settings = bot_settings.model_copy(update={"database_url": postgres.url(), "redis_url": redis.url()})
    async with running_bot(settings, fake) as client:
        yield client


@pytest.fixture(scope="module")
async def truth(bot_settings: Settings) -> AsyncIterator[AsyncDatabase]:
    """The database itself, not through the proxy."""
    db = AsyncDatabase(bot_settings.database_url)
    yield db
    await db.dispose()


def _jobs_of(user_id: int) -> Any:
    def count(*, session: Session) -> int:
        return int(session.execute(select(func.count()).select_from(Job).where(Job.user_id == user_id)).scalar_one())
    return count


def _member(fake: FakeDiscord) -> FakeUser:
    return fake.add_user(f"prompt{next(_names)}")


async def _click(fake: FakeDiscord, carrier: dict[str, Any], custom_id: str, user: FakeUser) -> FakeInteraction:
    """A click on ``custom_id``, shown under ``carrier`` (a message the bot posted)."""
    shown = {**carrier, "components": [{"type": 1, "components": [
        {"type": 2, "style": 2, "label": "U1", "custom_id": custom_id}]}]}
    return await fake._interaction(MESSAGE_COMPONENT, {"custom_id": custom_id, "component_type": 2}, user=user,
                                   channel=fake.channel, message=shown)


async def _cancel_all(fake: FakeDiscord, user: FakeUser) -> None:
    """Leave no queued job behind for later tests' workers."""
    await ephemeral_answer(await fake.slash_command("cancel", {}, user=user))


async def test_every_kind_of_interaction_is_acknowledged_before_any_database_or_redis_call(
    fake: FakeDiscord, proxied_bot: ImagineBot, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    postgres, redis = proxies
    member = _member(fake)
    subject = _member(fake)
    postgres.hold()
    redis.hold()
    try:
        commands: list[tuple[str, dict[str, Any], FakeUser]] = [
            ("imagine", {"prompt": "a lighthouse at dawn"}, member),
            ("info", {}, _member(fake)), ("fast", {}, _member(fake)), ("relax", {}, _member(fake)),
            ("turbo", {}, _member(fake)), ("settings", {}, _member(fake)), ("subscribe", {}, _member(fake)),
            ("queue", {}, _member(fake)), ("show", {"job": 2**40}, _member(fake)), ("cancel", {}, _member(fake)),
            ("admin usage", {"user": subject}, fake.owner),
            ("admin filter list", {}, fake.owner),
        ]
        slash = [await fake.slash_command(name, options, user=user) for name, options, user in commands]
        await slash[0].wait_ack()
        carrier = slash[0].original
        assert carrier is not None
        clicks = [await _click(fake, carrier, custom_id, _member(fake))
                  for custom_id in (f"job:{2**40}:upscale:1", f"job:{2**40}:recipe", f"job:{2**40}:cancel",
                                    "appeal:1")]
        for interaction in [*slash, *clicks]:
            ack = await interaction.wait_ack()  # within Discord's 3 s (the fake refuses later ones)
            assert ack.type in (5, 6), (interaction, ack)
        assert not postgres._open.is_set() and not redis._open.is_set()  # still held: nothing got through
    finally:
        postgres.release()
        redis.release()
    [imagine, *answered] = slash
    original = await imagine.wait_original(lambda m: "a lighthouse at dawn" in m["content"], timeout=15)
    assert not original["flags"] & EPHEMERAL  # the job's message, for the channel
    for interaction in [*answered, *clicks]:
        assert (await ephemeral_answer(interaction, timeout=15))["content"], interaction
    await _cancel_all(fake, member)


async def test_postgres_down_means_try_again_in_a_minute_and_no_half_written_job(
    fake: FakeDiscord, proxied_bot: ImagineBot, proxies: tuple[FaultProxy, FaultProxy], truth: AsyncDatabase
) -> None:
    postgres, _ = proxies
    member = _member(fake)
    assert (await ephemeral_answer(await fake.slash_command("info", {}, user=member)))["content"]
    await postgres.cut()
    try:
        imagine = await fake.slash_command("imagine", {"prompt": "a red kite --repeat 2"}, user=member)
        assert (await ephemeral_answer(imagine, timeout=15))["content"] == TRY_AGAIN
        assert imagine.original is None and imagine.followups[0]["flags"] & EPHEMERAL  # nothing public is left
        info = await fake.slash_command("info", {}, user=member)
        assert (await ephemeral_answer(info, timeout=15))["content"] == TRY_AGAIN
        click = await _click(fake, fake.messages[imagine.followup_ids[0]], f"job:{2**40}:upscale:1", member)
        assert (await ephemeral_answer(click, timeout=15))["content"] == TRY_AGAIN
        assert await truth.run(_jobs_of(member.id)) == 0
    finally:
        await postgres.restore()
    # Back without a restart: the same bot takes the prompt now.
    again = await fake.slash_command("imagine", {"prompt": "a red kite"}, user=member)
    original = await again.wait_original(lambda m: "a red kite" in m["content"], timeout=15)
    assert not original["flags"] & EPHEMERAL
    assert await truth.run(_jobs_of(member.id)) == 1
    await _cancel_all(fake, member)


async def test_redis_down_still_takes_the_prompt_and_the_job_waits_in_postgres(
    fake: FakeDiscord, proxied_bot: ImagineBot, proxies: tuple[FaultProxy, FaultProxy], truth: AsyncDatabase
) -> None:
    _, redis = proxies
    member = _member(fake)
    await redis.cut()
    try:
        imagine = await fake.slash_command("imagine", {"prompt": "a paper boat"}, user=member)
        assert (await imagine.wait_ack()).type == 5
        original = await imagine.wait_original(lambda m: "a paper boat" in m["content"], timeout=15)
        assert not original["flags"] & EPHEMERAL
        assert await truth.run(_jobs_of(member.id)) == 1  # committed, unpublished: the reaper sends it later
    finally:
        await redis.restore()
    await _cancel_all(fake, member)
