"""The canvas buttons of a message posted by a previous bot process work: they are ``job:`` DynamicItems like
every job button, and the modals of Custom Zoom and Vary (Region) open in the new process.

This module runs its own bots (no module-wide ``bot`` fixture), so no other bot is listening meanwhile.
"""

from __future__ import annotations

from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.bot.test_buttons_e2e import TIMEOUT, UPSCALE_LABELS, custom_id, finished, image_of, labels
from tests.fakediscord import FakeDiscord
from tests.support.services import WorkerProcess

#: The new buttons that make a job at once (the two that ask are clicked below).
PLAIN = ["Zoom Out 2x", "Zoom Out 1.5x", "⬅️", "➡️", "⬆️", "⬇️", "Upscale (2x)", "Upscale (4x)", "Redo Upscale"]


async def test_every_canvas_button_works_after_a_restart(
    fake: FakeDiscord, bot_settings: Settings, worker: WorkerProcess
) -> None:
    async with running_bot(bot_settings, fake) as first:
        interaction = await fake.slash_command("imagine", {"prompt": "posted before a restart --seed 88"})
        grid = await interaction.wait_original(finished, timeout=TIMEOUT)
        click = await fake.click(grid, custom_id(grid, "U1"))
        upscaled = await click.wait_followup(finished, timeout=TIMEOUT)
    assert first.is_closed() and labels(upscaled) == UPSCALE_LABELS

    async with running_bot(bot_settings, fake):
        clicks = [await fake.click(upscaled, custom_id(upscaled, label)) for label in PLAIN]
        for clicked in clicks:
            ack = await clicked.wait_ack()
            assert ack.type == 6 and ack.delay < 3.0
        zoom = await fake.click(upscaled, custom_id(upscaled, "Custom Zoom"))
        region = await fake.click(upscaled, custom_id(upscaled, "Vary (Region)"))
        assert (await zoom.wait_ack()).type == (await region.wait_ack()).type == 9
        submits = [
            await fake.submit_modal(zoom, {"prompt": "after the restart", "zoom": "1.2", "aspect": ""}),
            await fake.submit_modal(region, {"cells": ["5"], "regions": [], "prompt": ""}),
        ]
        # One worker runs them one after another: give each its own time to finish.
        results = [await done.wait_followup(finished, timeout=TIMEOUT) for done in clicks + submits]
    by_label = dict(zip([*PLAIN, "Custom Zoom", "Vary (Region)"], results, strict=True))
    assert image_of(fake, by_label["Upscale (4x)"]).size == (1024, 1024)
    assert "Zoom Out 1.2x by" in by_label["Custom Zoom"]["content"]
    assert "Pan Up by" in by_label["⬆️"]["content"] and "Vary (Region) by" in by_label["Vary (Region)"]["content"]
