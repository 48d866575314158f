"""A job cancelled while queued frees its member's slot at once (``bot.submission.release_slots``), end to end:
the real bot, the fake Discord, a real worker and the tiny model.

Every member here may run one job at a time (``concurrent = 1``). Another member's long job keeps the one worker
process busy; our member's first job waits with a message in the broker, their next ones wait held, with none.
Cancelling the waiting one (the Cancel button, then ``/cancel``) gets the next one published while nothing of
theirs ran or ended; it then runs and its member sees its result. A reaper runs as beside ``imagine bot``, but
only once an hour (its first pass is at its start, before these jobs), and a finishing job publishes only its
own member's next job: only the cancel can explain the publish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from bot.client import ImagineBot
from db import jobs as jobs_db
from db.models import Job
from domain.spec import JobState
from imagine.settings import Settings
from inference.reaper import Reaper
from tests.bot.conftest import TEST_PLANS, running_bot
from tests.bot.test_cancel_e2e import cancellable, click_cancel, job_id_of, shows_cancelled
from tests.fakediscord import FakeDiscord, FakeInteraction
from tests.support.messages import ephemeral_answer, shows_result
from tests.support.services import WorkerProcess
from tests.support.waiting import eventually

TIMEOUT = 120.0
REAPER_S = 3600.0
#: The longest job the prompt allows: it keeps the worker busy while our member's jobs wait and are cancelled.
LONG = "--steps 150"

#: The end-to-end tests' plans, every member limited to one running job (the tiny model's jobs cost 1 s).
PLANS = """
default = "single"

[plans.single]
display_name = "One at a time"
rank = 0
fast_seconds = 3600
concurrent = 1
queued = 20
"""


@pytest.fixture(scope="module")
def single_settings(bot_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    text = TEST_PLANS.read_text(encoding="utf-8")
    costs = text[text.index("\n[costs."):]  # the same costs as the other end-to-end tests
    plans = tmp_path_factory.mktemp("plans") / "single.toml"
    plans.write_text(PLANS + costs, encoding="utf-8")
    return bot_settings.model_copy(update={"plans_file": plans, "reaper_interval_s": REAPER_S})


@pytest.fixture(scope="module")
async def bot(single_settings: Settings, fake: FakeDiscord, worker: WorkerProcess) -> AsyncIterator[ImagineBot]:
    async with running_bot(single_settings, fake) as client:
        yield client


@pytest.fixture(scope="module")
def reaper(bot: ImagineBot, single_settings: Settings) -> Iterator[Reaper]:
    """The reaper ``imagine bot`` runs beside the bot, on these settings: a pass at its start, then hourly."""
    services = bot.services
    reaper = Reaper(services.sessions, services.celery, interval_s=single_settings.reaper_interval_s,
                    heartbeat_s=single_settings.heartbeat_s, max_attempts=single_settings.max_attempts)
    reaper.start()
    yield reaper
    reaper.stop()


async def _passes(reaper: Reaper) -> int:
    return reaper.passes


async def row(bot: ImagineBot, job_id: int) -> Job:
    job = await bot.services.db.run(jobs_db.get, job_id=job_id)
    assert job is not None
    return job


def _waiting(interaction: FakeInteraction, count: int) -> dict[int, dict[str, Any]] | None:
    """The job messages of ``interaction`` by job id, once all ``count`` show a waiting job with its Cancel."""
    shown = [m for m in ([interaction.original] if interaction.original else []) + interaction.followups
             if cancellable(m) and "Waiting to start" in m["content"]]
    return {job_id_of(m): m for m in shown} if len(shown) == count else None


async def _message(fake: FakeDiscord, message_id: str, accept: Callable[[dict[str, Any]], bool],
                   timeout: float = 10.0) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        message = fake.messages.get(int(message_id))
        return message if message is not None and accept(message) else None

    return await fake.wait_until(ready, timeout=timeout, what=f"message {message_id}")


async def test_cancelling_a_queued_job_publishes_the_members_held_job_at_once(
    fake: FakeDiscord, bot: ImagineBot, reaper: Reaper
) -> None:
    await eventually(lambda: _passes(reaper), lambda passes: passes == 1)  # its first pass, before any job
    member, other = fake.add_user("slots-member"), fake.add_user("slots-other")
    # Another member's long job takes the one worker process.
    busy = await fake.slash_command("imagine", {"prompt": f"a long walk {LONG} --seed 11"}, user=other)
    running = await busy.wait_original(lambda m: cancellable(m) and "%)" in m["content"], timeout=TIMEOUT)
    busy_id = job_id_of(running)

    # Three jobs of our member in one submit: the first waits with a message, the other two held, with none
    # (decided in the one transaction that stamped the first).
    asked = await fake.slash_command("imagine", {"prompt": "three in a row --repeat 3 --seed 21"}, user=member)
    shown = await fake.wait_until(lambda: _waiting(asked, 3), timeout=TIMEOUT, what="three waiting jobs")
    first, second, third = sorted(shown)
    await eventually(lambda: row(bot, first), lambda job: job.published_at is not None)
    assert [(await row(bot, job_id)).published_at for job_id in (second, third)] == [None, None]

    # The Cancel button on the waiting job: the next one gets its message at once.
    await click_cancel(fake, shown[first], member)
    await _message(fake, shown[first]["id"], shows_cancelled)
    job = await eventually(lambda: row(bot, second), lambda j: j.published_at is not None, timeout=10)
    assert (await row(bot, busy_id)).state == JobState.RUNNING, "the long job ended too soon to tell"
    assert (job.state, (await row(bot, third)).published_at) == (JobState.QUEUED, None)

    # /cancel on that one, waiting with its message now: the last one gets its message at once.
    cancelled = await fake.slash_command("cancel", {"job": second}, user=member)
    answer = await ephemeral_answer(cancelled)
    assert answer["content"] == f"Cancelled `{second}`; the fast time they held is back."
    await _message(fake, shown[second]["id"], shows_cancelled)
    job = await eventually(lambda: row(bot, third), lambda j: j.published_at is not None, timeout=10)
    assert (await row(bot, busy_id)).state == JobState.RUNNING, "the long job ended too soon to tell"
    assert job.state == JobState.QUEUED

    # It runs once the worker is free (no reaper pass in between: it passes hourly), and its member sees it.
    await busy.wait_original(shows_result, timeout=TIMEOUT)
    done = await _message(fake, shown[third]["id"], shows_result, timeout=TIMEOUT)
    assert "three in a row" in done["content"]
    assert (await row(bot, third)).state == JobState.SUCCEEDED
    assert reaper.passes == 1  # the reaper did not pass again: the cancels published the held jobs
