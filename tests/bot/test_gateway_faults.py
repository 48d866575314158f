"""The bot survives what it cannot parse: a malformed gateway event is logged and dropped."""

from __future__ import annotations

import pytest

from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.fakediscord import FakeDiscord


async def test_a_malformed_interaction_is_dropped_and_the_bot_keeps_answering(
    fake: FakeDiscord, bot_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(bot_settings, fake) as bot:
        # An INTERACTION_CREATE as a buggy proxy might send it: no attachment_size_limit, no user, no data.
        await fake.dispatch("INTERACTION_CREATE", {
            "id": "1234567890123456789", "application_id": str(fake.application_id), "type": 2,
            "token": "not-a-real-token", "version": 1, "channel_id": str(fake.channel.id),
        })
        interaction = await fake.slash_command("info", {})
        await interaction.wait_ack()
        assert not bot.is_closed()
    assert any("dropped a malformed INTERACTION_CREATE event" in r.getMessage() for r in caplog.records)
