"""Every model family end to end: /imagine on its tiny model through the fake Discord and a real worker gives a
grid whose V1, U1 and Vary (Subtle) work; what a family cannot do is a note on the message, or a refusal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from bot.client import ImagineBot
from domain.spec import JobKind, JobState
from tests.bot.test_buttons_e2e import GRID_LABELS, UPSCALE_LABELS, click, job, job_id_of, labels, result_of
from tests.fakediscord import FakeDiscord
from tests.support.messages import shows_result

TIMEOUT = 120.0
EPHEMERAL = 64
#: The tiny model of each family (``inference.tiny``).
MODELS = ["tiny", "tiny-xl", "tiny-sd3", "tiny-flux", "tiny-flux2", "tiny-zimage", "tiny-qwenimage"]


def size_of(fake: FakeDiscord, message: dict[str, Any]) -> tuple[int, int]:
    [file] = fake.files(message)
    return Image.open(io.BytesIO(file.data)).size


@pytest.mark.parametrize("model", MODELS)
async def test_a_grid_then_v1_u1_and_vary_subtle(fake: FakeDiscord, bot: ImagineBot, model: str) -> None:
    preset = bot.services.catalog.get(model)
    interaction = await fake.slash_command("imagine", {"prompt": f"a fox --model {model} --seed 3"})
    assert (await interaction.wait_ack()).delay < 3.0
    grid = await interaction.wait_original(shows_result, timeout=TIMEOUT)
    assert labels(grid) == GRID_LABELS and size_of(fake, grid) == (2 * preset.width, 2 * preset.height)
    parent = await job(bot, job_id_of(grid))
    assert (parent.state, parent.spec["model"], parent.queue) == (JobState.SUCCEEDED, model, f"{model}.fast")

    variations = await result_of(await click(fake, grid, "V1"))
    assert labels(variations) == GRID_LABELS and size_of(fake, variations) == size_of(fake, grid)
    assert (await job(bot, job_id_of(variations))).kind == JobKind.VARY

    upscaled = await result_of(await click(fake, grid, "U1"))
    assert labels(upscaled) == UPSCALE_LABELS and size_of(fake, upscaled) == (2 * preset.width, 2 * preset.height)

    subtle = await result_of(await click(fake, upscaled, "Vary (Subtle)"))
    assert labels(subtle) == GRID_LABELS and "Variations (Subtle) by" in subtle["content"]
    child = await job(bot, job_id_of(subtle))
    assert (child.kind, child.state, child.spec["strength"]) == (JobKind.VARY, JobState.SUCCEEDED, 0.35)


async def test_what_a_family_ignores_is_a_note_on_the_message(fake: FakeDiscord, bot: ImagineBot) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "a fox --model tiny-zimage --no snow --tile"})
    message = await interaction.wait_original(shows_result, timeout=TIMEOUT)
    notes = [line for line in message["content"].splitlines() if line.startswith("-# ")]
    assert any("without a negative pass, so `--no` was ignored" in line for line in notes), notes
    assert any("`--tile` is not available on `tiny-zimage`" in line for line in notes), notes
    spec = (await job(bot, job_id_of(message))).spec
    assert spec["negative_prompt"] == "" and spec["tile"] is False


async def test_what_would_render_wrongly_is_refused_ephemerally_with_no_job(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    def count(*, session: Any) -> int:
        from sqlalchemy import func, select

        from db.models import Job

        return session.execute(select(func.count()).select_from(Job)).scalar_one()

    before = await bot.services.db.run(count)
    interaction = await fake.slash_command("imagine", {"prompt": "a fox --model tiny-flux --sampler ddim"})
    ack = await interaction.wait_ack()
    assert ack.type == 4 and ack.data["flags"] & EPHEMERAL
    assert "`--sampler ddim` is not available on `tiny-flux` (FLUX.1); use `--sampler euler`" in ack.data["content"]
    assert await bot.services.db.run(count) == before
