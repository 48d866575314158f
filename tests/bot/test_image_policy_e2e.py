"""The image policy end to end: a worker process with the image safety classifier configured (a tiny
random-weight one that flags every image), the real bot, the fake Discord. Where the policy says spoiler,
the grid arrives behind a spoiler (``SPOILER_<name>``); where it says block, the message says so and nothing is charged.

The worker and bot here use their own Redis key prefix, so the session's worker never takes these jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Job
from imagine.settings import Settings
from inference.runner import BLOCKED
from tests.bot.conftest import running_bot
from tests.fakediscord import FakeDiscord
from tests.support.messages import ephemeral_answer, shows_result
from tests.support.safety import write_safety_model
from tests.support.services import SESSION_KEY_PREFIX, WorkerProcess, start_worker

RESULT_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def safety_settings(bot_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    model = write_safety_model(tmp_path_factory.mktemp("safety") / "flags-all", flags=True)
    return bot_settings.model_copy(update={"broker_key_prefix": f"{SESSION_KEY_PREFIX}safety:",
                                           "image_safety_model": str(model)})


@pytest.fixture(scope="module")
def safety_worker(safety_settings: Settings) -> Iterator[WorkerProcess]:
    process = start_worker(safety_settings, timeout=120)
    yield process
    process.stop()


def _job(user_id: int) -> Any:
    def read(*, session: Session) -> tuple[str, bool, int | None, str | None]:
        job = session.execute(select(Job).where(Job.user_id == user_id)).scalar_one()
        return job.state, job.flagged, job.charged_ms, job.image_action
    return read


async def _reply(fake: FakeDiscord, command: str, options: dict[str, Any], **kwargs: Any) -> str:
    interaction = await fake.slash_command(command, options, **kwargs)
    return str((await ephemeral_answer(interaction))["content"])


async def test_flagged_grids_are_spoilered_or_blocked_as_the_channel_says(
    fake: FakeDiscord, safety_settings: Settings, safety_worker: WorkerProcess
) -> None:
    spoiler_channel = fake.guild.add_channel("art-spoilers")  # before login: GUILD_CREATE brings them
    blocked_channel = fake.guild.add_channel("art-blocked")
    async with running_bot(safety_settings, fake) as bot:
        said = await _reply(fake, "admin image-policy", {"action": "spoiler", "applies_to": "channel"},
                            user=fake.owner, channel=spoiler_channel)
        assert said == f"Flagged images in <#{spoiler_channel.id}>: **spoiler**."

        painter, other = fake.add_user("painter"), fake.add_user("sculptor")
        spoilered = await fake.slash_command("imagine", {"prompt": "a lighthouse --seed 3 --q .25"}, user=painter,
                                             channel=spoiler_channel)
        blocked = await fake.slash_command("imagine", {"prompt": "a harbour --seed 4 --q .25"}, user=other,
                                           channel=blocked_channel)  # no policy: blocked by default

        grid = await spoilered.wait_original(shows_result, timeout=RESULT_TIMEOUT)
        [file] = fake.files(grid)
        assert file.filename.startswith("SPOILER_") and file.filename.endswith(".png")  # Discord blurs it
        state, flagged, _charged, action = await bot.services.db.run(_job(painter.id))
        assert (state, flagged, action) == ("succeeded", True, "spoiler")

        refused = await blocked.wait_original(lambda m: "blocked" in str(m.get("content")), timeout=RESULT_TIMEOUT)
        assert BLOCKED in refused["content"] and "Nothing was charged." in refused["content"]
        assert not refused.get("files")
        assert await bot.services.db.run(_job(other.id)) == ("failed", False, 0, "block")
