"""Restarts: a job that finishes while the bot is down is delivered when it comes back.

This module runs its own bots (no module-wide ``bot`` fixture), so no other bot is listening meanwhile.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import jobs as jobs_db
from db.models import Job
from db.session import AsyncDatabase
from domain.spec import JobState
from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.fakediscord import FakeDiscord
from tests.support.messages import shows_result
from tests.support.services import WorkerProcess
from tests.support.waiting import eventually


def _job_for(*, session: Session, interaction_id: int) -> Job | None:
    return session.execute(select(Job).where(Job.interaction_id == interaction_id)).scalar_one_or_none()


async def test_a_job_finished_while_the_bot_was_down_is_delivered_on_start(
    fake: FakeDiscord, bot_settings: Settings, worker: WorkerProcess
) -> None:
    async with running_bot(bot_settings, fake) as first:
        interaction = await fake.slash_command("imagine", {"prompt": "delivered after a restart --steps 150"})
        await interaction.wait_ack()
        job = await eventually(lambda: first.services.db.run(_job_for, interaction_id=int(interaction.id)),
                               lambda j: j is not None)
        assert job is not None
    # The bot is gone. The worker finishes the job meanwhile; nobody shows it yet.
    database = AsyncDatabase(bot_settings.database_url)
    try:
        # The shared worker may still be drawing jobs of earlier tests first.
        finished = await eventually(lambda: database.run(jobs_db.get, job_id=job.id),
                                    lambda j: j is not None and j.state == JobState.SUCCEEDED, timeout=300)
    finally:
        await database.dispose()
    assert finished is not None and finished.message_id is not None
    shown = fake.messages[finished.message_id]
    result = f"delivered_after_a_restart_{job.id}.png"
    assert not shows_result(shown) and result not in [f.filename for f in fake.files(shown)]  # a preview at most

    async with running_bot(bot_settings, fake):
        message = await interaction.wait_original(shows_result, timeout=60)
    assert "delivered after a restart" in message["content"]
    assert [f.filename for f in fake.files(message)] == [result]  # the result replaced any preview
