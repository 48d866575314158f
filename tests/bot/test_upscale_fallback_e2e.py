"""U1–U4 on a model whose models-file entry names no upscaler weights: a Lanczos resize, said on the message,
that keeps the tile (downscaled back, it matches the tile within a few levels).

This module runs its own worker and bot on a models file without upscaler weights (model ``plain``, the tiny
SD weights): its queues are ``plain.*``, so the session's worker never takes its jobs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from db import jobs as jobs_db
from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.bot.test_buttons_e2e import TIMEOUT, UPSCALE_LABELS, custom_id, finished, image_of, job_id_of, labels
from tests.fakediscord import FakeDiscord
from tests.support.services import WorkerProcess, start_worker

PLAIN_MODELS = """\
default = "plain"

[models.plain]
source = "{source}"
family = "sd15"
width = 128
height = 128
steps = 8
guidance = 7.0
scheduler = "euler"
description = "The tiny model, without upscaler weights"
"""


@pytest.fixture(scope="module")
def plain_settings(bot_settings: Settings, tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path = tmp_path_factory.mktemp("plain-models") / "models.toml"
    path.write_text(PLAIN_MODELS.format(source=tiny_models.parent / "tiny-sd"), encoding="utf-8")
    return bot_settings.model_copy(update={"models_file": path})


@pytest.fixture(scope="module")
def plain_worker(plain_settings: Settings) -> Iterator[WorkerProcess]:
    process = start_worker(plain_settings)
    yield process
    process.stop()


async def test_without_upscaler_weights_u1_resizes_with_lanczos_and_says_so(
    fake: FakeDiscord, plain_settings: Settings, plain_worker: WorkerProcess
) -> None:
    async with running_bot(plain_settings, fake) as bot:
        interaction = await fake.slash_command("imagine", {"prompt": "a plain lighthouse --seed 3"})
        grid = await interaction.wait_original(finished, timeout=TIMEOUT)
        click = await fake.click(grid, custom_id(grid, "U1"))
        upscaled = await click.wait_followup(finished, timeout=TIMEOUT)
        tile_row = (await bot.services.db.run(jobs_db.images_of, job_id=job_id_of(grid)))[0]
        tile = Image.open(io.BytesIO(bot.services.store.get(tile_row.storage_key))).convert("RGB")
        job = await bot.services.db.run(jobs_db.get, job_id=job_id_of(upscaled))

    assert "-# Upscaled (Lanczos: no upscaler configured)" in upscaled["content"]
    assert labels(upscaled) == UPSCALE_LABELS
    assert job is not None and job.upscale_method == "lanczos"
    image = image_of(fake, upscaled).convert("RGB")
    assert image.size == (2 * tile.width, 2 * tile.height)
    back = np.asarray(image.resize(tile.size, Image.Resampling.LANCZOS), dtype=np.int16)
    difference = np.abs(back - np.asarray(tile, dtype=np.int16))
    # the tiles are random-weight noise, the hardest case for a resampling round trip
    assert difference.mean() < 4 and difference.max() <= 32, (difference.mean(), difference.max())
