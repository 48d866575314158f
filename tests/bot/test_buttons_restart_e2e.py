"""A click on a message posted by a previous bot process works: job buttons are ``DynamicItem``s registered
at start-up, rebuilt from their custom_id.

This module runs its own bots (no module-wide ``bot`` fixture), so no other bot is listening meanwhile.
"""

from __future__ import annotations

from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.bot.test_buttons_e2e import TIMEOUT, UPSCALE_LABELS, custom_id, finished, image_of, labels
from tests.fakediscord import FakeDiscord
from tests.support.services import WorkerProcess


async def test_a_click_on_a_message_sent_by_a_previous_bot_process_works(
    fake: FakeDiscord, bot_settings: Settings, worker: WorkerProcess
) -> None:
    async with running_bot(bot_settings, fake) as first:
        interaction = await fake.slash_command("imagine", {"prompt": "posted before a restart --seed 77"})
        grid = await interaction.wait_original(finished, timeout=TIMEOUT)
    assert first.is_closed()

    async with running_bot(bot_settings, fake) as second:
        click = await fake.click(grid, custom_id(grid, "U3"))
        ack = await click.wait_ack()
        assert ack.type == 6 and ack.delay < 3.0
        upscaled = await click.wait_followup(finished, timeout=TIMEOUT)
        # ...and the buttons of the new message work in this process too.
        recipe = await fake.click(upscaled, custom_id(upscaled, "Recipe"))
        answer = await recipe.wait_original()
    assert second is not first
    assert labels(upscaled) == UPSCALE_LABELS and "Image #3" in upscaled["content"]
    assert image_of(fake, upscaled).size == (256, 256)
    assert "Seed: 79" in answer["content"]  # tile 3 of --seed 77
