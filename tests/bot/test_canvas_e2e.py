"""The canvas buttons under an upscaled image, end to end: Zoom Out, Custom Zoom, the pans, Make Square,
Vary (Region), Remix, Upscale (4x) and Redo Upscale. The real bot, the fake Discord, a real worker and the tiny
model; what is checked is what members see: the modal, the message, the buttons and the pixels."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from db import jobs as jobs_db
from db.models import Image as ImageRow
from db.models import Job
from domain.canvas import region_boxes
from domain.spec import JobKind, JobState
from inference.canvas import boxes_mask, seam_width
from tests.bot.test_buttons_e2e import (
    EPHEMERAL,
    GRID_LABELS,
    TIMEOUT,
    UPSCALE_LABELS,
    click,
    custom_id,
    finished,
    forged,
    image_of,
    images,
    job,
    job_id_of,
    labels,
    result_of,
)
from tests.fakediscord import FakeDiscord, FakeInteraction
from tests.support.factories import new_job


def _count_jobs(*, session: Session) -> int:
    return session.execute(select(func.count()).select_from(Job)).scalar_one()


async def stored(bot: ImagineBot, key: str) -> Image.Image:
    data = await asyncio.to_thread(bot.services.store.get, key)
    return Image.open(io.BytesIO(data)).convert("RGB")


async def tiles(bot: ImagineBot, message: dict[str, Any]) -> list[np.ndarray]:
    """The four images of a grid message, as stored (the grid on the message is made of them)."""
    rows = await images(bot, job_id_of(message))
    assert len(rows) == 4
    return [np.asarray(await stored(bot, row.storage_key)).astype(int) for row in rows]


async def source_of(bot: ImagineBot, upscaled: dict[str, Any]) -> Image.Image:
    [row] = await images(bot, job_id_of(upscaled))
    return await stored(bot, row.storage_key)


def assert_kept(tile: np.ndarray, source: Image.Image, box: tuple[int, int, int, int]) -> None:
    """``source``, scaled into ``box``, is in ``tile`` pixel for pixel (inside the blending seam)."""
    x, y, w, h = box
    seam = seam_width(tile.shape[1], tile.shape[0])
    expected = np.asarray(source.resize((w, h), Image.Resampling.LANCZOS)).astype(int)
    inner = tile[y + seam:y + h - seam, x + seam:x + w - seam]
    assert inner.size > 0
    assert np.array_equal(inner, expected[seam:h - seam, seam:w - seam])


async def open_modal(fake: FakeDiscord, message: dict[str, Any], label: str, **options: Any) -> FakeInteraction:
    interaction = await fake.click(message, custom_id(message, label), **options)
    ack = await interaction.wait_ack()
    assert ack.type == 9 and ack.delay < 3.0, ack.data  # the modal is the first answer
    return interaction


def modal_field(opened: FakeInteraction, field: str) -> dict[str, Any]:
    assert opened.modal is not None
    for top in opened.modal["components"]:
        component = top.get("component") or {}
        if component.get("custom_id") == field:
            return component
    raise LookupError(field)


async def refused(fake: FakeDiscord, bot: ImagineBot, submitted: FakeInteraction, says: str) -> None:
    before = await bot.services.db.run(_count_jobs)
    ack = await submitted.wait_ack()
    assert ack.delay < 3.0
    answer = ack.data if ack.type == 4 else await submitted.wait_followup()  # a modal's answer, or a click's
    assert answer["flags"] & EPHEMERAL and says in answer["content"], answer["content"]
    assert await bot.services.db.run(_count_jobs) == before


@pytest.fixture(scope="module")
async def grid(fake: FakeDiscord, bot: ImagineBot) -> dict[str, Any]:
    interaction = await fake.slash_command("imagine", {"prompt": "a lighthouse in a storm --seed 1000"})
    return await interaction.wait_original(finished, timeout=TIMEOUT)


@pytest.fixture(scope="module")
async def upscaled(fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]) -> dict[str, Any]:
    """U2 of the grid: a 256 px square image with the canvas buttons."""
    return await result_of(await click(fake, grid, "U2"))


async def test_an_upscaled_image_shows_the_canvas_buttons_in_midjourneys_rows(upscaled: dict[str, Any]) -> None:
    assert labels(upscaled) == UPSCALE_LABELS  # square: no Make Square
    rows = [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in upscaled["components"]]
    assert len(rows) == 5 and all(len(row) <= 5 for row in rows)
    assert rows[3] == ["⬅️", "➡️", "⬆️", "⬇️"]


async def test_zoom_out_2x_holds_the_source_unchanged_in_the_centre_at_half_the_side(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    message = await result_of(await click(fake, upscaled, "Zoom Out 2x"))
    assert labels(message) == GRID_LABELS and "Zoom Out 2x by" in message["content"]
    child = await job(bot, job_id_of(message))
    [source_row] = await images(bot, job_id_of(upscaled))
    assert (child.kind, child.state, child.parent_image_id) == (JobKind.ZOOM, JobState.SUCCEEDED, source_row.id)
    source = await source_of(bot, upscaled)
    drawn = await tiles(bot, message)
    for tile in drawn:
        assert tile.shape[:2] == (128, 128)
        assert_kept(tile, source, (32, 32, 64, 64))
    # The new area is the model's: the four candidates differ there.
    assert not np.array_equal(drawn[0][:16], drawn[1][:16])
    assert image_of(fake, message).size == (256, 256)


async def test_pan_left_makes_a_wider_image_with_the_source_unchanged_at_its_right(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    message = await result_of(await click(fake, upscaled, "⬅️"))
    assert "Pan Left by" in message["content"]
    child = await job(bot, job_id_of(message))
    assert child.kind == JobKind.PAN
    box = tuple(child.spec["source_box"])
    width, height = child.spec["width"], child.spec["height"]
    assert width > height and box[0] + box[2] == width  # the source is at the right edge
    source = await source_of(bot, upscaled)
    for tile in await tiles(bot, message):
        assert tile.shape[:2] == (height, width)
        assert_kept(tile, source, box)
        _, y, w, h = box
        right = np.asarray(source.resize((w, h), Image.Resampling.LANCZOS)).astype(int)
        assert np.array_equal(tile[y + h // 2, width - 1], right[h // 2, w - 1])  # up to the right edge


async def test_make_square_appears_on_a_wide_image_and_makes_square_images(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    wide_grid = await (await fake.slash_command("imagine", {"prompt": "a long bridge --ar 3:1 --seed 3"})
                       ).wait_original(finished, timeout=TIMEOUT)
    wide = await result_of(await click(fake, wide_grid, "U1"))
    assert "Make Square" in labels(wide)
    message = await result_of(await click(fake, wide, "Make Square"))
    assert "Make Square by" in message["content"]
    child = await job(bot, job_id_of(message))
    source = await source_of(bot, wide)
    for tile in await tiles(bot, message):
        assert tile.shape[0] == tile.shape[1]
        assert_kept(tile, source, tuple(child.spec["source_box"]))

    # 3:1 panned by half would be 4.5:1: the pan is shortened to the widest (4:1), and the message says so.
    panned = await result_of(await click(fake, wide, "➡️"))
    assert "-# Panned by " in panned["content"] and "% of the image instead of 50%" in panned["content"]
    spec = (await job(bot, job_id_of(panned))).spec
    assert abs(spec["width"] / spec["height"] - 4) < 0.2


async def test_vary_region_changes_nothing_outside_the_picked_cells(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    opened = await open_modal(fake, upscaled, "Vary (Region)")
    assert opened.modal is not None and opened.modal["title"] == "Vary (Region)"
    assert len(modal_field(opened, "cells")["options"]) == 9
    assert not modal_field(opened, "prompt").get("value")  # Remix off: blank keeps the prompt

    submitted = await fake.submit_modal(opened, {"cells": ["1", "2"], "regions": [], "prompt": ""})
    assert (await submitted.wait_ack()).type == 6
    message = await submitted.wait_followup(finished, timeout=TIMEOUT)
    assert labels(message) == GRID_LABELS and "Vary (Region) by" in message["content"]
    child = await job(bot, job_id_of(message))
    assert (child.kind, child.spec["region"], child.spec["prompt"]) == (JobKind.REGION, [1, 2],
                                                                        "a lighthouse in a storm")
    source = np.asarray((await source_of(bot, upscaled)).resize((128, 128), Image.Resampling.LANCZOS)).astype(int)
    outside = np.asarray(boxes_mask((128, 128), region_boxes([1, 2], 128, 128))) == 0
    drawn = await tiles(bot, message)
    for tile in drawn:
        assert np.array_equal(tile[outside], source[outside])
    assert not np.array_equal(drawn[0][:20, :80], source[:20, :80])  # the region itself was redrawn


async def test_vary_region_refuses_nothing_and_everything(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    nothing = await fake.submit_modal(await open_modal(fake, upscaled, "Vary (Region)"), {"cells": [], "regions": []})
    await refused(fake, bot, nothing, "Pick at least one part")
    everything = await fake.submit_modal(await open_modal(fake, upscaled, "Vary (Region)"),
                                         {"cells": ["5"], "regions": ["border"]})
    await refused(fake, bot, everything, "That is the whole image")


async def test_custom_zoom_takes_the_prompt_and_zoom_of_its_modal(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    opened = await open_modal(fake, upscaled, "Custom Zoom")
    prefilled = modal_field(opened, "prompt")["value"]
    assert prefilled.startswith("a lighthouse in a storm --seed") and "--ar" not in prefilled
    assert modal_field(opened, "zoom")["value"] == "2"

    submitted = await fake.submit_modal(opened, {"prompt": "a lighthouse at dawn --seed 5", "zoom": "1.5",
                                                 "aspect": "2:1"})
    message = await submitted.wait_followup(finished, timeout=TIMEOUT)
    assert "**a lighthouse at dawn --ar 2:1 --seed 5** - Zoom Out 1.5x by" in message["content"]
    child = await job(bot, job_id_of(message))
    spec = child.spec
    assert (child.kind, spec["prompt"], spec["zoom"], spec["seed"]) == (JobKind.ZOOM, "a lighthouse at dawn", 1.5, 5)
    assert spec["width"] > spec["height"]
    source = await source_of(bot, upscaled)
    for tile in await tiles(bot, message):
        assert_kept(tile, source, tuple(spec["source_box"]))


@pytest.mark.parametrize(("values", "says"), [
    ({"prompt": "a fox", "zoom": "3"}, "from 1 to 2"),
    ({"prompt": "a fox", "zoom": "wide"}, "must be a number"),
    ({"prompt": "  ", "zoom": "1.5"}, "The prompt is empty"),
    ({"prompt": "a fox", "zoom": "1.5", "aspect": "9:1"}, "between 1:4 and 4:1"),
    ({"prompt": "a fox --ar", "zoom": "1.5"}, "--ar"),
])
async def test_custom_zoom_refuses_bad_values_with_no_job(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any], values: dict[str, str], says: str
) -> None:
    submitted = await fake.submit_modal(await open_modal(fake, upscaled, "Custom Zoom"), values)
    await refused(fake, bot, submitted, says)


async def test_a_pan_past_the_widest_image_is_refused(fake: FakeDiscord, bot: ImagineBot) -> None:
    widest = await (await fake.slash_command("imagine", {"prompt": "a horizon --ar 4:1 --seed 4"})
                    ).wait_original(finished, timeout=TIMEOUT)
    upscale = await result_of(await click(fake, widest, "U1"))
    interaction = await click(fake, upscale, "⬅️")
    await refused(fake, bot, interaction, "already as wide as this model draws")


async def test_remix_opens_the_prompt_before_a_variation_and_the_edit_is_the_new_jobs_prompt(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    remixer = fake.add_user("remixer")
    settings = await fake.slash_command("settings", {"remix": True}, user=remixer)
    assert "Remix: on" in (await settings.wait_original())["content"]

    opened = await open_modal(fake, grid, "V1", user=remixer)
    assert opened.modal is not None and opened.modal["title"] == "Remix: Variations"
    assert modal_field(opened, "prompt")["value"] == "a lighthouse in a storm --seed 1000"
    submitted = await fake.submit_modal(opened, {"prompt": "a lighthouse in fog --seed 1000"})
    message = await submitted.wait_followup(finished, timeout=TIMEOUT)
    assert "**a lighthouse in fog --seed" in message["content"] and f"<@{remixer.id}>" in message["content"]
    child = await job(bot, job_id_of(message))
    tile = (await images(bot, job_id_of(grid)))[0]
    assert (child.kind, child.spec["prompt"], child.parent_image_id) == (JobKind.VARY, "a lighthouse in fog", tile.id)

    settings = await fake.slash_command("settings", {"remix": False}, user=remixer)
    assert "Remix: off" in (await settings.wait_original())["content"]
    plain = await fake.click(grid, custom_id(grid, "V4"), user=remixer)
    assert (await plain.wait_ack()).type == 6  # no modal now
    await plain.wait_followup(finished, timeout=TIMEOUT)


async def test_upscale_4x_quadruples_the_side_and_redo_upscale_redoes_the_upscale(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any], upscaled: dict[str, Any]
) -> None:
    four = await result_of(await click(fake, upscaled, "Upscale (4x)"))
    assert image_of(fake, four).size == (1024, 1024) and labels(four) == UPSCALE_LABELS
    child = await job(bot, job_id_of(four))
    assert (child.kind, child.spec["upscale_factor"]) == (JobKind.UPSCALE, 4)

    redo = await result_of(await click(fake, upscaled, "Redo Upscale"))
    assert image_of(fake, redo).size == (256, 256)
    again = await job(bot, job_id_of(redo))
    tile = (await images(bot, job_id_of(grid)))[1]
    assert (again.kind, again.parent_image_id, again.spec["upscale_factor"]) == (JobKind.UPSCALE, tile.id, 2)


async def test_the_recipe_of_an_upscaled_zoom_says_where_it_came_from(
    fake: FakeDiscord, bot: ImagineBot, upscaled: dict[str, Any]
) -> None:
    zoomed = await result_of(await click(fake, upscaled, "Zoom Out 1.5x"))
    upscale = await result_of(await click(fake, zoomed, "U1"))
    recipe = await (await click(fake, upscale, "Recipe")).wait_original()
    assert "It descends from Zoom Out 1.5x of a 256×256 image" in recipe["content"]


def _add_unstored_upscale(*, session: Session, user_id: int, guild_id: int, channel_id: int) -> int:
    """A finished upscale (made in this channel) whose image file is no longer in the store."""
    made, _ = jobs_db.submit(session=session, new=new_job(user_id, kind=JobKind.UPSCALE, guild_id=guild_id,
                                                          guild_name="Test Guild", channel_id=channel_id))
    session.execute(update(Job).where(Job.id == made.id).values(state="succeeded", delivered_state="succeeded"))
    session.add(ImageRow(job_id=made.id, index=0, seed=1, storage_key=f"jobs/{made.id}/gone.png", width=128,
                         height=128))
    return made.id


async def test_a_canvas_button_on_an_image_no_longer_stored_makes_no_job(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    gone = await bot.services.db.run(_add_unstored_upscale, user_id=fake.user.id, guild_id=fake.guild.id,
                                     channel_id=fake.channel.id)
    message = forged(fake, grid, [f"job:{gone}:zoom_2x", f"job:{gone}:zoom_custom"])
    await refused(fake, bot, await fake.click(message, f"job:{gone}:zoom_2x"), "no longer stored")
    opened = await fake.click(message, f"job:{gone}:zoom_custom")
    assert (await opened.wait_ack()).type == 9
    submitted = await fake.submit_modal(opened, {"prompt": "a fox", "zoom": "1.5", "aspect": ""})
    await refused(fake, bot, submitted, "no longer stored")
