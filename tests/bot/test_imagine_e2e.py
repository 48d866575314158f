"""/imagine end to end: real discord.py client, fake Discord, real Celery worker, PostgreSQL, Redis, tiny model."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from db import jobs as jobs_db
from domain.spec import JobState
from tests.fakediscord import FakeDiscord, buttons
from tests.support.messages import shows_result
from tests.support.waiting import eventually

GRID_TIMEOUT = 90.0


def _has_grid(message: dict) -> bool:
    return shows_result(message)


async def test_imagine_posts_a_grid_with_nine_buttons(fake: FakeDiscord, bot: ImagineBot) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "a fox in the snow --seed 42 --ar 2:1 --sref 123"})
    ack = await interaction.wait_ack()
    assert ack.type == 5  # deferred at once
    assert ack.delay < 3.0

    message = await interaction.wait_original(_has_grid, timeout=GRID_TIMEOUT)

    files = fake.files(message)
    assert len(files) == 1 and files[0].filename.endswith(".png")
    grid = Image.open(io.BytesIO(files[0].data))
    job = await bot.services.db.run(jobs_db.get, job_id=_job_id(message))
    assert job is not None
    assert grid.size == (2 * job.spec["width"], 2 * job.spec["height"])
    assert grid.width > grid.height  # --ar 2:1
    labels = [b.get("label") or b.get("emoji", {}).get("name") for b in buttons(message)]
    assert labels == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert "a fox in the snow" in message["content"] and "--seed 42" in message["content"]
    assert "--ar 2:1" in message["content"]
    assert any(line.startswith("-# ") and "--sref" in line for line in message["content"].splitlines())
    assert job.state == JobState.SUCCEEDED
    delivered = await eventually(lambda: bot.services.db.run(jobs_db.get, job_id=job.id),
                                 lambda j: j is not None and j.delivered_state == JobState.SUCCEEDED)
    assert delivered is not None and delivered.message_id == int(message["id"])
    images = await bot.services.db.run(jobs_db.images_of, job_id=job.id)
    assert [i.seed for i in images] == [42, 43, 44, 45]


async def test_bad_input_gets_an_ephemeral_error_and_no_job(fake: FakeDiscord, bot: ImagineBot) -> None:
    before = await bot.services.db.run(_count_jobs)
    interaction = await fake.slash_command("imagine", {"prompt": "a cat --model nope"})
    ack = await interaction.wait_ack()
    assert ack.type == 4
    assert ack.data["flags"] & 64  # ephemeral
    assert "nope" in ack.data["content"]
    assert await bot.services.db.run(_count_jobs) == before


def _job_id(message: dict) -> int:
    return int(buttons(message)[0]["custom_id"].split(":")[1])


def _count_jobs(*, session: Session) -> int:
    from sqlalchemy import func, select

    from db.models import Job

    return session.execute(select(func.count()).select_from(Job)).scalar_one()


async def test_the_queued_state_is_shown_before_the_grid(fake: FakeDiscord, bot: ImagineBot) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "a lighthouse at dusk"})
    message = await interaction.wait_original(_has_grid, timeout=GRID_TIMEOUT)
    contents = [version["content"] for version in fake.message_versions[int(message["id"])]]
    assert any("Waiting to start" in c or "%" in c for c in contents[:-1]), contents


async def test_after_the_token_expires_the_grid_is_posted_with_the_bot_token(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    fake.token_lifetime = 0.2  # applies to interactions created from now on
    try:
        interaction = await fake.slash_command("imagine", {"prompt": "a slow relax job"})
        await interaction.wait_ack()
        posted = await fake.wait_for_message(
            lambda m: _has_grid(m) and "a slow relax job" in m["content"], channel=fake.channel,
            timeout=GRID_TIMEOUT,
        )
    finally:
        fake.token_lifetime = 900.0
    assert posted.get("webhook_id") is None  # a channel message, sent with the bot token
    job = await eventually(
        lambda: bot.services.db.run(jobs_db.get, job_id=_job_id(posted)),
        lambda j: j is not None and j.delivered_state == JobState.SUCCEEDED,
    )
    assert job is not None and job.message_id == int(posted["id"])


async def test_model_autocomplete_offers_the_models_file(fake: FakeDiscord, bot: ImagineBot) -> None:
    choices = await fake.autocomplete("imagine", {"prompt": "a cat", "model": "tin"}, focused="model")
    assert [c["value"] for c in choices] == [name for name in bot.services.catalog.names if name.startswith("tin")]
    assert {"tiny", "tiny-xl", "tiny-flux"} <= {c["value"] for c in choices}


async def test_prompts_that_cannot_run_are_refused_ephemerally(fake: FakeDiscord, bot: ImagineBot) -> None:
    before = await bot.services.db.run(_count_jobs)
    for prompt, says in [("   ", "prompt"), ("--ar 16:9 --seed 3", "prompt"), ("a cat --ar 0:1", "--ar"),
                         ("a cat --seed 99999999999", "--seed"), ("a cat --asp 2:3", "--ar")]:
        interaction = await fake.slash_command("imagine", {"prompt": prompt})
        ack = await interaction.wait_ack()
        assert ack.type == 4 and ack.data["flags"] & 64, prompt
        assert says in ack.data["content"], (prompt, ack.data["content"])
    assert await bot.services.db.run(_count_jobs) == before


async def test_permutations_make_one_job_and_one_message_each(fake: FakeDiscord, bot: ImagineBot) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "a {red, blue} car --seed 9"})
    await interaction.wait_ack()
    red = await fake.wait_for_message(lambda m: _has_grid(m) and "a red car" in m["content"], timeout=GRID_TIMEOUT)
    blue = await fake.wait_for_message(lambda m: _has_grid(m) and "a blue car" in m["content"], timeout=GRID_TIMEOUT)
    assert red["id"] != blue["id"]
    assert _job_id(red) != _job_id(blue)
