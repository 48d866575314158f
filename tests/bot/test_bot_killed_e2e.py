"""Fault 4: the bot process killed (SIGKILL) while ten jobs run, then started again.

Every job is delivered once, by the new process, and the buttons of a message the old process posted work.
The bot runs as a real ``imagine bot`` process against the fake Discord; this module runs no other bot.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Job
from db.session import AsyncDatabase
from domain.spec import JobState
from imagine.settings import Settings
from tests.bot.test_buttons_e2e import TIMEOUT, custom_id, finished, image_of
from tests.fakediscord import FakeDiscord
from tests.fakediscord.server import FakeInteraction
from tests.support.services import WorkerProcess, bot_process
from tests.support.waiting import eventually

JOBS = 10
#: Ten jobs run one or two at a time on the session's worker: minutes on a busy 2-core machine.
pytestmark = pytest.mark.timeout(900)


async def _states(database: AsyncDatabase, interaction_ids: list[int]) -> list[str]:
    def query(*, session: Session) -> list[str]:
        return list(session.execute(select(Job.state).where(Job.interaction_id.in_(interaction_ids))).scalars())
    return await database.run(query)


def _result_posts(fake: FakeDiscord, since: int) -> Counter[str]:
    """How many requests carried each result file (a grid's name ends in its job id)."""
    return Counter(upload.filename for record in fake.requests[since:] for upload in record.files
                   if upload.filename.endswith(".png") and "preview" not in upload.filename)


async def test_a_killed_bot_delivers_every_running_job_once_after_its_restart(
    fake: FakeDiscord, bot_settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    database = AsyncDatabase(bot_settings.database_url)
    since = len(fake.requests)
    try:
        async with bot_process(bot_settings, fake, log) as first:
            grid_interaction = await fake.slash_command("imagine", {"prompt": "posted by the first bot --seed 5"})
            grid = await grid_interaction.wait_original(finished, timeout=TIMEOUT)

            members = [fake.add_user(f"killed-bot-member-{n}") for n in range(5)]
            interactions: list[FakeInteraction] = []
            for n in range(JOBS):
                interaction = await fake.slash_command(
                    "imagine", {"prompt": f"job {n} across a bot crash --steps 12 --seed {n}"},
                    user=members[n % len(members)])
                interactions.append(interaction)
            for interaction in interactions:
                await interaction.wait_ack(timeout=10)
            ids = [int(i.id) for i in interactions]
            states = await eventually(lambda: _states(database, ids),
                                      lambda s: len(s) == JOBS and JobState.RUNNING.value in s, timeout=TIMEOUT)
            first.kill()  # no shutdown, no drain: the process is gone
            await first.wait()
            assert states.count(JobState.SUCCEEDED.value) < JOBS, "every job ended before the kill"
        # Started again at once, as its supervisor would: jobs the old process committed but had not yet
        # published are published by the new one's reaper; the others finished meanwhile or are still running.
        # Its reaper passes every second (the other bot tests keep it idle).
        async with bot_process(bot_settings.model_copy(update={"reaper_interval_s": 1.0}), fake, log):
            results = [await i.wait_original(finished, timeout=TIMEOUT) for i in interactions]
            click = await fake.click(grid, custom_id(grid, "U2"))
            ack = await click.wait_ack()
            upscaled = await click.wait_followup(finished, timeout=TIMEOUT)
    except BaseException:
        print(log.read_text() if log.exists() else "(no bot log)")
        raise
    finally:
        await database.dispose()

    posts = _result_posts(fake, since)
    names = [fake.files(message)[0].filename for message in results]
    print(f"\n[bot killed] submitted {JOBS}, completed {len(results)}, lost {JOBS - len(results)}, "
          f"delivered twice {sum(1 for name in names if posts[name] > 1)}")
    assert len(set(names)) == JOBS and all(posts[name] == 1 for name in names), posts
    assert ack.delay < 3.0 and image_of(fake, upscaled).size[0] > 0
