"""The canvas buttons of a message posted by a previous bot process work: they are ``job:`` DynamicItems like
every job button, and the modals of Custom Zoom and Vary (Region) open in the new process.

This module runs its own bots (no module-wide ``bot`` fixture), so no other bot is listening meanwhile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from db import jobs as jobs_db
from db.models import Job
from domain.spec import JobKind
from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.bot.test_buttons_e2e import TIMEOUT, UPSCALE_LABELS, custom_id, finished, image_of, labels
from tests.fakediscord import FakeDiscord
from tests.support.services import WorkerProcess
from tests.support.waiting import eventually

#: The new buttons that make a job at once, and the kind of job each makes.
PLAIN = {
    "Zoom Out 2x": JobKind.ZOOM, "Zoom Out 1.5x": JobKind.ZOOM, "⬅️": JobKind.PAN, "➡️": JobKind.PAN,
    "⬆️": JobKind.PAN, "⬇️": JobKind.PAN, "Upscale (2x)": JobKind.UPSCALE, "Upscale (4x)": JobKind.UPSCALE,
    "Redo Upscale": JobKind.UPSCALE,
}


def _job_of_message(*, session: Session, message_id: int) -> Job | None:
    return session.execute(select(Job).where(Job.message_id == message_id)).scalar_one_or_none()


def _cancel(*, session: Session, job_ids: list[int]) -> None:
    for job_id in job_ids:
        jobs_db.request_cancel(session=session, job_id=job_id)
        jobs_db.notify(session=session, job_id=job_id)


async def _job_for(bot: ImagineBot, message: dict[str, Any]) -> Job:
    """The job whose message this is (the message is posted just before the job row is committed)."""
    job = await eventually(lambda: bot.services.db.run(_job_of_message, message_id=int(message["id"])),
                           lambda found: found is not None)
    assert job is not None
    return job


async def test_every_canvas_button_works_after_a_restart(
    fake: FakeDiscord, bot_settings: Settings, worker: WorkerProcess
) -> None:
    async with running_bot(bot_settings, fake) as first:
        interaction = await fake.slash_command("imagine", {"prompt": "posted before a restart --seed 88"})
        grid = await interaction.wait_original(finished, timeout=TIMEOUT)
        click = await fake.click(grid, custom_id(grid, "U1"))
        upscaled = await click.wait_followup(finished, timeout=TIMEOUT)
    assert first.is_closed() and labels(upscaled) == UPSCALE_LABELS

    async with running_bot(bot_settings, fake) as second:
        clicks = [await fake.click(upscaled, custom_id(upscaled, label)) for label in PLAIN]
        for clicked in clicks:
            ack = await clicked.wait_ack()
            assert ack.type == 6 and ack.delay < 3.0
        zoom = await fake.click(upscaled, custom_id(upscaled, "Custom Zoom"))
        region = await fake.click(upscaled, custom_id(upscaled, "Vary (Region)"))
        assert (await zoom.wait_ack()).type == (await region.wait_ack()).type == 9  # the modals open
        submits = [
            await fake.submit_modal(zoom, {"prompt": "after the restart", "zoom": "1.2", "aspect": ""}),
            await fake.submit_modal(region, {"cells": ["5"], "regions": [], "prompt": ""}),
        ]
        # Each click made its job (its message is posted first, then the job row names it).
        kinds = [*PLAIN.values(), JobKind.ZOOM, JobKind.REGION]
        made: list[Job] = []
        for clicked, kind in zip(clicks + submits, kinds, strict=True):
            posted: dict[str, Any] = await clicked.wait_followup(timeout=TIMEOUT)
            job = await _job_for(second, posted)
            assert job.kind == kind, (posted["content"], kind)
            made.append(job)
        # The one-by-one worker needn't draw all of them: finish the first, cancel the rest.
        await second.services.db.run(_cancel, job_ids=[job.id for job in made[1:]])
        zoomed = await clicks[0].wait_followup(finished, timeout=TIMEOUT)
    assert image_of(fake, zoomed).size == (256, 256) and "Zoom Out 2x by" in zoomed["content"]
    assert "Zoom Out 1.2x by" in submits[0].followups[0]["content"]
