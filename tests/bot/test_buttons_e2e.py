"""U1–U4, V1–V4, 🔄 and the buttons under an upscale, end to end: the real bot, the fake Discord, a real worker
and the tiny model. Each click is answered within 3 s and posts its job's own message in the channel."""

from __future__ import annotations

import asyncio
import copy
import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from db import jobs as jobs_db
from db import plans as plans_db
from db.models import Image as ImageRow
from db.models import Job
from domain.spec import JobKind, JobState
from tests.fakediscord import FakeDiscord, FakeInteraction, buttons, snowflake
from tests.support.factories import new_job
from tests.support.messages import shows_result
from tests.support.waiting import eventually

TIMEOUT = 90.0
EPHEMERAL = 64
GRID_LABELS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
#: Under a square upscaled image, row by row (a non-square one also shows "Make Square" after the zooms).
UPSCALE_LABELS = [
    "Vary (Strong)", "Vary (Subtle)", "Vary (Region)",
    "Upscale (2x)", "Upscale (4x)", "Upscale (Creative ×2)", "Redo Upscale",
    "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom",
    "⬅️", "➡️", "⬆️", "⬇️",
    "Recipe",
]


def labels(message: dict[str, Any]) -> list[str]:
    return [b.get("label") or b.get("emoji", {}).get("name") for b in buttons(message)]


def finished(message: dict[str, Any]) -> bool:
    return shows_result(message)


def custom_id(message: dict[str, Any], label: str) -> str:
    return next(b["custom_id"] for b in buttons(message) if (b.get("label") or b.get("emoji", {}).get("name")) == label)


def job_id_of(message: dict[str, Any]) -> int:
    return int(buttons(message)[0]["custom_id"].split(":")[1])


def image_of(fake: FakeDiscord, message: dict[str, Any]) -> Image.Image:
    [file] = fake.files(message)
    return Image.open(io.BytesIO(file.data))


async def click(fake: FakeDiscord, message: dict[str, Any], label: str, **options: Any) -> FakeInteraction:
    interaction = await fake.click(message, custom_id(message, label), **options)
    ack = await interaction.wait_ack()
    assert ack.delay < 3.0 and ack.type in (5, 6), ack.data
    return interaction


async def result_of(interaction: FakeInteraction) -> dict[str, Any]:
    """The job's own message: a follow-up in the channel, once it shows the result and its buttons."""
    return await interaction.wait_followup(finished, timeout=TIMEOUT)


async def job(bot: ImagineBot, job_id: int) -> Job:
    row = await eventually(lambda: bot.services.db.run(jobs_db.get, job_id=job_id),
                           lambda j: j is not None and j.delivered_state == j.state)
    assert row is not None
    return row


async def images(bot: ImagineBot, job_id: int) -> list[ImageRow]:
    return await bot.services.db.run(jobs_db.images_of, job_id=job_id)


def _count_jobs(*, session: Session) -> int:
    return session.execute(select(func.count()).select_from(Job)).scalar_one()


@pytest.fixture(scope="module")
async def grid(fake: FakeDiscord, bot: ImagineBot) -> dict[str, Any]:
    """One /imagine grid the tests click on."""
    interaction = await fake.slash_command("imagine", {"prompt": "a lighthouse in a storm --seed 1000"})
    return await interaction.wait_original(finished, timeout=TIMEOUT)


@pytest.fixture(scope="module")
async def upscaled(fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]) -> dict[str, Any]:
    """U2 of the grid: one image, twice the tile, with the post-upscale buttons."""
    return await result_of(await click(fake, grid, "U2"))


async def test_u2_posts_the_tile_upscaled_with_the_post_upscale_buttons(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any], upscaled: dict[str, Any]
) -> None:
    tile = (await images(bot, job_id_of(grid)))[1]
    assert image_of(fake, upscaled).size == (2 * tile.width, 2 * tile.height)
    assert labels(upscaled) == UPSCALE_LABELS
    assert f"- Image #2 <@{fake.user.id}>" in upscaled["content"]
    assert "a lighthouse in a storm" in upscaled["content"] and f"--seed {tile.seed}" in upscaled["content"]
    assert "-# Upscaled (Subtle: Real-ESRGAN)" in upscaled["content"]  # the tiny models file names weights
    child = await job(bot, job_id_of(upscaled))
    assert (child.kind, child.state, child.parent_image_id) == (JobKind.UPSCALE, JobState.SUCCEEDED, tile.id)
    assert (child.user_id, child.lane, child.message_id) == (fake.user.id, "fast", int(upscaled["id"]))
    assert child.upscale_method == "esrgan"
    assert child.estimated_ms == 1000  # the tests' plans file: every tiny job costs 1 s, charged to the clicker
    [row] = await images(bot, child.id)
    assert (row.index, row.seed, row.storage_key) == (0, tile.seed, f"jobs/{child.id}/0.png")


async def test_v1_posts_a_new_grid_whose_parent_is_tile_1(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    message = await result_of(await click(fake, grid, "V1"))
    assert labels(message) == GRID_LABELS
    assert "Variations (Strong) by" in message["content"]
    tile = (await images(bot, job_id_of(grid)))[0]
    child = await job(bot, job_id_of(message))
    assert (child.kind, child.parent_image_id) == (JobKind.VARY, tile.id)
    assert child.spec["init_image"] == tile.storage_key and child.spec["strength"] == 0.75
    assert image_of(fake, message).size == (2 * tile.width, 2 * tile.height)
    assert [i.seed for i in await images(bot, child.id)] == [child.spec["seed"] + n for n in range(4)]


async def test_reroll_posts_a_grid_with_a_different_seed(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    message = await result_of(await click(fake, grid, "🔄"))
    assert labels(message) == GRID_LABELS
    parent, child = await job(bot, job_id_of(grid)), await job(bot, job_id_of(message))
    assert child.kind == JobKind.REROLL and child.spec["seed"] != parent.spec["seed"] == 1000
    assert {k: v for k, v in child.spec.items() if k != "seed"} == {k: v for k, v in parent.spec.items() if k != "seed"}
    assert f"--seed {child.spec['seed']}" in message["content"]
    assert child.parent_image_id == (await images(bot, parent.id))[0].id
    assert image_of(fake, message).tobytes() != image_of(fake, grid).tobytes()


def _click_jobs(*, session: Session, user_id: int, click_key: str) -> list[int]:
    return list(session.execute(
        select(Job.id).where(Job.user_id == user_id, Job.idem_key.startswith(click_key + ":")).order_by(Job.id)
    ).scalars())


async def test_a_double_click_makes_one_job_and_a_click_minutes_later_another(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    cid = custom_id(grid, "V3")
    key = f"button:{grid['id']}:{cid}"
    first, second = await asyncio.gather(fake.click(grid, cid), fake.click(grid, cid))
    for interaction in (first, second):
        assert (await interaction.wait_ack()).delay < 3.0
    done = await fake.wait_until(lambda: [m for i in (first, second) for m in i.followups if finished(m)] or None,
                                 timeout=TIMEOUT, what="the variations")
    await bot.delivery.wait_idle()
    assert len(done) == 1
    # The second click says nothing (its job is the one below) and no placeholder of it is left behind.
    assert [m for i in (first, second) for m in i.followups if m["id"] != done[0]["id"]
            and int(m["id"]) in fake.messages] == []
    made = await bot.services.db.run(_click_jobs, user_id=fake.user.id, click_key=key)
    assert made == [job_id_of(done[0])]

    # Minutes later (Discord's clock), the same button is a new job, as in Midjourney.
    fake.advance_clock(180)
    later = await result_of(await click(fake, grid, "V3"))
    assert job_id_of(later) != job_id_of(done[0])
    assert await bot.services.db.run(_click_jobs, user_id=fake.user.id, click_key=key) == [
        job_id_of(done[0]), job_id_of(later)]
    # Another member's click is their own job.
    bob = fake.add_user("bob")
    theirs = await result_of(await click(fake, grid, "V3", user=bob))
    assert f"<@{bob.id}>" in theirs["content"]
    assert (await job(bot, job_id_of(theirs))).user_id == bob.id


async def test_a_click_the_clickers_plan_refuses_makes_no_job(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    carol = fake.add_user("carol")
    await bot.services.db.run(plans_db.ban, user_id=carol.id, guild_id=None, by=None, reason="testing")
    before = await bot.services.db.run(_count_jobs)
    interaction = await click(fake, grid, "U1", user=carol)
    note = await interaction.wait_followup()
    assert note["flags"] & EPHEMERAL and "banned" in note["content"]
    assert not [m for m in interaction.followups if not m["flags"] & EPHEMERAL]  # no job message
    assert await bot.services.db.run(_count_jobs) == before


def _add_finished_job(*, session: Session, user_id: int, state: JobState, like: int) -> int:
    """A job row in a final state, in the server and channel of job ``like`` (a click elsewhere is refused for
    that first); a succeeded one has four image rows whose files are not in the store."""
    where = session.get(Job, like)
    assert where is not None
    made, _ = jobs_db.submit(session=session, new=new_job(user_id, guild_id=where.guild_id,
                                                          channel_id=where.channel_id))
    session.execute(update(Job).where(Job.id == made.id).values(state=state.value, delivered_state=state.value))
    if state is JobState.SUCCEEDED:
        session.add_all(ImageRow(job_id=made.id, index=n, seed=n, storage_key=f"jobs/{made.id}/gone-{n}.png",
                                 width=64, height=64) for n in range(4))
    return made.id


def forged(fake: FakeDiscord, message: dict[str, Any], custom_ids: list[str]) -> dict[str, Any]:
    """A copy of ``message`` showing buttons with these custom ids (as a tampered client could send them)."""
    copied = copy.deepcopy(message)
    copied["id"] = str(snowflake())
    copied["components"] = [{"type": 1, "components": [
        {"type": 2, "style": 2, "label": str(n), "custom_id": cid} for n, cid in enumerate(custom_ids)
    ]}]
    fake.messages[int(copied["id"])] = copied
    return copied


async def test_bad_clicks_get_an_ephemeral_message_and_no_job(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any], upscaled: dict[str, Any]
) -> None:
    grid_id = job_id_of(grid)
    failed = await bot.services.db.run(_add_finished_job, user_id=fake.user.id, state=JobState.FAILED, like=grid_id)
    cancelled = await bot.services.db.run(_add_finished_job, user_id=fake.user.id, state=JobState.CANCELLED,
                                          like=grid_id)
    unstored = await bot.services.db.run(_add_finished_job, user_id=fake.user.id, state=JobState.SUCCEEDED,
                                         like=grid_id)
    cases = {
        "job:abc:upscale:1": "isn't one I can use",
        f"job:{grid_id}:explode:1": "isn't one I can use",
        f"job:{grid_id}:upscale": "isn't one I can use",
        f"job:{grid_id}:vary_strong": "isn't one I can use",  # a post-upscale button on a grid
        f"job:{job_id_of(upscaled)}:upscale:1": "isn't one I can use",  # U1 on an upscale
        "job:999999999999:upscale:1": "no longer exists",
        f"job:{grid_id}:upscale:7": "no image #7 in that grid; choose 1 to 4",
        f"job:{failed}:vary:2": "That job failed",
        f"job:{cancelled}:reroll": "That job was cancelled",
        f"job:{unstored}:upscale:3": "no longer stored",
    }
    before = await bot.services.db.run(_count_jobs)
    for cid, says in cases.items():
        interaction = await fake.click(forged(fake, grid, [cid]), cid)
        ack = await interaction.wait_ack()
        assert ack.delay < 3.0
        if ack.type == 4:  # answered at once
            answer = ack.data
        else:
            assert ack.type == 6
            answer = await interaction.wait_followup()
        assert answer["flags"] & EPHEMERAL, cid
        assert says in answer["content"], (cid, answer["content"])
    assert await bot.services.db.run(_count_jobs) == before


async def test_the_recipe_answers_the_clicker_with_the_settings_and_no_link(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any], upscaled: dict[str, Any]
) -> None:
    interaction = await click(fake, upscaled, "Recipe")
    answer = await interaction.wait_original()  # the "thinking…" message, replaced by the answer
    assert answer["flags"] & EPHEMERAL
    tile = (await images(bot, job_id_of(grid)))[1]
    text = answer["content"]
    for part in (f"`a lighthouse in a storm --seed {tile.seed}`", "Model: tiny", "Sampler: dpmpp_2m_karras",
                 "Steps: 8", "Guidance: 7", f"Seed: {tile.seed}", "Size: 256×256",
                 "Upscaled ×2 from 128×128 (Subtle: Real-ESRGAN)"):
        assert part in text, (part, text)
    assert "http" not in text


async def test_after_an_upscale_creative_upscale_and_subtle_variations_are_jobs(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    source = (await images(bot, job_id_of(upscaled)))[0]
    creative, subtle = await asyncio.gather(
        result_of(await click(fake, upscaled, "Upscale (Creative ×2)")),
        result_of(await click(fake, upscaled, "Vary (Subtle)")),
    )
    assert image_of(fake, creative).size == (512, 512) and labels(creative) == UPSCALE_LABELS
    assert "Upscaled (Creative) by" in creative["content"]
    assert "-# Upscaled (Creative: redrawn by the model)" in creative["content"]
    assert labels(subtle) == GRID_LABELS and image_of(fake, subtle).size == (256, 256)  # drawn at 128 px again
    assert "Variations (Subtle) by" in subtle["content"]
    for message, kind in ((creative, JobKind.UPSCALE), (subtle, JobKind.VARY)):
        child = await job(bot, job_id_of(message))
        assert (child.kind, child.parent_image_id) == (kind, source.id)


async def test_images_over_the_upload_limit_arrive_re_encoded(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    limit = 40_000  # the 256 px grid of noise is a ~190 kB PNG
    interaction = await fake.slash_command("imagine", {"prompt": "a noisy grid --seed 5"}, attachment_size_limit=limit)
    message = await interaction.wait_original(finished, timeout=TIMEOUT)
    [file] = fake.files(message)
    assert file.size <= limit and not file.filename.endswith(".png")
    assert (await job(bot, job_id_of(message))).upload_limit == limit

    small = 8_000  # the upscaled tile is a ~25 kB PNG
    upscale = await result_of(await click(fake, message, "U4", attachment_size_limit=small))
    [file] = fake.files(upscale)
    assert file.size <= small and not file.filename.endswith(".png")
    assert Image.open(io.BytesIO(file.data)).width > 0
