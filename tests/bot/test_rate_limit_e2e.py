"""The per-member command rate limit holds across bot processes: two real clients, each with its own
services and Redis connection, sharing one Redis, take tokens from the same bucket."""

from __future__ import annotations

import re

from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.fakediscord import FakeDiscord
from tests.support.messages import ephemeral_answer

SLOW_DOWN = re.compile(r"Slow down: you're sending commands faster than this bot allows\. Try again in (\d+) s\.")


async def _answer(fake: FakeDiscord, command: str, **kwargs: object) -> str:
    interaction = await fake.slash_command(command, {}, **kwargs)  # type: ignore[arg-type]
    assert (await interaction.wait_ack()).type == 5  # acknowledged before the rate limit's Redis call
    return str((await ephemeral_answer(interaction))["content"])


async def test_the_rate_limit_is_shared_by_two_bot_processes(fake: FakeDiscord, bot_settings: Settings) -> None:
    # Three commands at once, then one every two minutes: nothing comes back during the test.
    settings = bot_settings.model_copy(update={"command_burst": 3, "command_rate_per_minute": 0.5})
    member = fake.add_user("hasty")
    async with running_bot(settings, fake) as first:
        assert first.is_ready()
        assert (await _answer(fake, "info", user=member)).startswith("**Plan:**")
        assert (await _answer(fake, "info", user=member)).startswith("**Plan:**")
        async with running_bot(settings, fake) as second:  # interactions now go to the newer client
            assert sum(session.alive for session in fake.sessions) == 2
            assert (await _answer(fake, "info", user=member)).startswith("**Plan:**")
            refused = await _answer(fake, "info", user=member)
            match = SLOW_DOWN.fullmatch(refused)
            assert match is not None, refused
            assert 100 <= int(match[1]) <= 120  # a token comes back every 120 s
            assert second.is_ready()
            other = fake.add_user("patient")  # the limit is per member
            assert (await _answer(fake, "info", user=other)).startswith("**Plan:**")
        # The second process is gone; the first answers again, from the same empty bucket.
        assert SLOW_DOWN.fullmatch(await _answer(fake, "settings", user=member))
