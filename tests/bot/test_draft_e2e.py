"""``--draft`` end to end: a cheap grid on the draft model, then Enhance, clicked after a bot restart, redraws
the image at full quality with its seed. The real bot, the fake Discord, a real worker and the tiny models
(``tiny`` drafts on ``tiny-draft``: the same weights in 2 steps instead of 8).

This module runs its own bots (no module-wide ``bot`` fixture), so no other bot is listening meanwhile.
"""

from __future__ import annotations

import numpy as np

from db import jobs as jobs_db
from domain.spec import JobKind, JobSpec, JobState
from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.bot.test_buttons_e2e import GRID_LABELS, TIMEOUT, custom_id, finished, image_of, job, job_id_of, labels
from tests.fakediscord import FakeDiscord
from tests.support.services import WorkerProcess

ENHANCE_LABELS = ["Enhance 1", "Enhance 2", "Enhance 3", "Enhance 4"]


async def test_a_draft_grid_is_cheaper_and_enhance_redraws_its_image_at_full_quality_after_a_restart(
    fake: FakeDiscord, bot_settings: Settings, worker: WorkerProcess
) -> None:
    async with running_bot(bot_settings, fake) as first:
        interaction = await fake.slash_command("imagine", {"prompt": "a harbour at dawn --draft --seed 500"})
        draft = await interaction.wait_original(finished, timeout=TIMEOUT)
        draft_job = await job(first, job_id_of(draft))
        tiles = await first.services.db.run(jobs_db.images_of, job_id=draft_job.id)
    assert first.is_closed()

    assert labels(draft) == GRID_LABELS + ENHANCE_LABELS
    assert "**a harbour at dawn --seed 500 --draft**" in draft["content"]
    draft_spec = JobSpec.from_dict(draft_job.spec)
    assert draft_spec.draft and (draft_spec.steps, draft_spec.sampler) == (2, "euler")  # tiny-draft's
    assert draft_job.state == JobState.SUCCEEDED

    async with running_bot(bot_settings, fake) as second:
        click = await fake.click(draft, custom_id(draft, "Enhance 3"))
        ack = await click.wait_ack()
        assert ack.type == 6 and ack.delay < 3.0
        enhanced = await click.wait_followup(finished, timeout=TIMEOUT)
        enhanced_job = await job(second, job_id_of(enhanced))
        # The same prompt and seed typed as a full-quality /imagine: the grid Enhance must reproduce.
        typed = await fake.slash_command("imagine", {"prompt": "a harbour at dawn --seed 502"})
        full = await typed.wait_original(finished, timeout=TIMEOUT)
        full_job = await job(second, job_id_of(full))

    assert labels(enhanced) == GRID_LABELS  # full quality: no Enhance row
    assert f"**a harbour at dawn --seed 502** - Enhanced Image #3 <@{fake.user.id}>" in enhanced["content"]
    assert (enhanced_job.kind, enhanced_job.parent_image_id) == (JobKind.IMAGINE, tiles[2].id)
    assert tiles[2].seed == 502
    enhanced_spec = JobSpec.from_dict(enhanced_job.spec)
    assert not enhanced_spec.draft and (enhanced_spec.steps, enhanced_spec.sampler) == (8, "dpmpp_2m_karras")
    # The job rows: the draft reserved less than the full-quality grid (the plans file costs tiny-draft per
    # step; tiny costs a flat second).
    assert draft_job.estimated_ms < enhanced_job.estimated_ms == full_job.estimated_ms
    assert np.array_equal(np.asarray(image_of(fake, enhanced)), np.asarray(image_of(fake, full)))
    assert not np.array_equal(np.asarray(image_of(fake, enhanced).resize((256, 256))),
                              np.asarray(image_of(fake, draft).resize((256, 256))))
