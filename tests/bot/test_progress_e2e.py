"""Live progress as members see it: the job's message shows a percentage and a blurry preview while it runs,
then exactly the grid. Real discord.py client, fake Discord, real Celery worker, tiny model with a TAESD."""

from __future__ import annotations

import io
import itertools

from PIL import Image
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from db import jobs as jobs_db
from domain.spec import JobState
from tests.fakediscord import FakeDiscord, buttons
from tests.support.messages import shows_result
from tests.support.waiting import eventually

GRID_TIMEOUT = 120.0


def _has_grid(message: dict) -> bool:
    return shows_result(message)


def _job_id(message: dict) -> int:
    return int(buttons(message)[0]["custom_id"].split(":")[1])


def _shown(version: dict) -> tuple[str, tuple[int, ...]]:
    return version["content"], tuple(f.id for f in version["files"])


async def test_a_running_job_shows_a_preview_and_its_percentage_then_only_the_grid(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "a fox in the snow --steps 30 --seed 5"})
    message = await interaction.wait_original(_has_grid, timeout=GRID_TIMEOUT)
    versions = fake.message_versions[int(message["id"])]

    previews = [
        (version, file)
        for version in versions[:-1]
        for file in version["files"]
        if file.filename == "progress.webp"
    ]
    assert previews, [v["content"] for v in versions]
    for version, file in previews:
        assert "%)" in version["content"]
        assert len(version["files"]) == 1  # a new preview replaces the last one
        with Image.open(io.BytesIO(file.data)) as preview:
            assert preview.format == "WEBP"
            assert 64 <= preview.width <= 512 and preview.width == preview.height  # a 2x2 grid of squares
        assert file.size < 100_000

    final = versions[-1]
    job = await bot.services.db.run(jobs_db.get, job_id=_job_id(message))
    assert job is not None
    assert [f.filename for f in final["files"]] == [f"a_fox_in_the_snow_{job.id}.png"]  # the preview is gone
    with Image.open(io.BytesIO(final["files"][0].data)) as grid:
        assert grid.size == (2 * job.spec["width"], 2 * job.spec["height"])
    assert "%" not in final["content"].splitlines()[0]
    # No wasted edits: every version shows something the one before did not.
    assert all(_shown(a) != _shown(b) for a, b in itertools.pairwise(versions))
    # The worker cleaned up its previews.
    assert job.preview_key is None
    assert not any(bot.services.store.exists(f"jobs/{job.id}/preview-{step}.webp") for step in range(31))


async def test_a_late_progress_event_after_the_final_message_changes_nothing(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "a quiet harbour"})
    message = await interaction.wait_original(_has_grid, timeout=GRID_TIMEOUT)
    job = await eventually(lambda: bot.services.db.run(jobs_db.get, job_id=_job_id(message)),
                           lambda j: j is not None and j.delivered_state == JobState.SUCCEEDED)
    assert job is not None
    await bot.delivery.wait_idle()
    before = list(fake.message_versions[int(message["id"])])

    # A worker's progress write that comes too late is refused by the row, and its NOTIFY is a no-op.
    def late_progress(*, session: Session) -> bool:
        recorded = jobs_db.record_progress(session=session, job_id=job.id, owner=job.owner or "", step=10,
                                           total=20, preview_key=f"jobs/{job.id}/preview-10.webp")
        jobs_db.notify(session=session, job_id=job.id)
        return recorded

    assert await bot.services.db.run(late_progress) is False
    bot.delivery.wake(job.id)
    await bot.delivery.wait_idle()
    assert fake.message_versions[int(message["id"])] == before
    assert [f.filename for f in fake.message(message)["files"]] == [f"a_quiet_harbour_{job.id}.png"]
