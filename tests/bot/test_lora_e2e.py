"""``--lora`` end to end: the real bot, the fake Discord, a real worker, the tiny models file's ``tiny-lora``."""

from __future__ import annotations

import numpy as np
import pytest

from bot.client import ImagineBot
from domain.spec import JobSpec
from tests.bot.test_buttons_e2e import TIMEOUT, _count_jobs, finished, image_of, job, job_id_of
from tests.fakediscord import FakeDiscord

EPHEMERAL = 64


async def test_a_lora_draws_its_grid_and_the_next_grid_without_it_is_clean(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    before = await (await fake.slash_command("imagine", {"prompt": "a lantern --seed 900"})).wait_original(
        finished, timeout=TIMEOUT)
    interaction = await fake.slash_command("imagine", {"prompt": "a lantern --seed 900", "lora": "tiny-lora:0.8"})
    with_lora = await interaction.wait_original(finished, timeout=TIMEOUT)
    after = await (await fake.slash_command("imagine", {"prompt": "a lantern --seed 900"})).wait_original(
        finished, timeout=TIMEOUT)

    assert "**a lantern --seed 900 --lora tiny-lora:0.8**" in with_lora["content"]
    row = await job(bot, job_id_of(with_lora))
    assert JobSpec.from_dict(row.spec).loras == (("tiny-lora", 0.8),)
    pixels = [np.asarray(image_of(fake, message)) for message in (before, with_lora, after)]
    assert not np.array_equal(pixels[0], pixels[1])
    assert np.array_equal(pixels[0], pixels[2])  # the worker's pipeline forgot the LoRA


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a lantern --lora nope", "The model `tiny` has no LoRA called `nope`; use one of: `tiny-lora`."),
        ("a lantern --lora tiny-lora:5", "the weight 5 of `tiny-lora` is out of range; use -2 to 2"),
        ("a lantern --model tiny-xl --lora tiny-lora", "The model `tiny-xl` has no LoRAs here; remove `--lora`"),
        ("a lantern --lora ../../etc/x.safetensors", "LoRAs are picked by name from the models file"),
        ("a lantern --model tiny-xl --draft", "The model `tiny-xl` has no draft mode here; remove `--draft`"),
    ],
)
async def test_bad_loras_and_drafts_are_refused_ephemerally_with_no_job(
    fake: FakeDiscord, bot: ImagineBot, prompt: str, message: str
) -> None:
    jobs = await bot.services.db.run(_count_jobs)
    interaction = await fake.slash_command("imagine", {"prompt": prompt})
    ack = await interaction.wait_ack()
    assert ack.type == 4 and ack.data["flags"] & EPHEMERAL
    assert message in ack.data["content"]
    assert await bot.services.db.run(_count_jobs) == jobs


async def test_the_lora_option_autocompletes_the_chosen_models_loras(fake: FakeDiscord, bot: ImagineBot) -> None:
    async def values(**options: str) -> list[str]:
        choices = await fake.autocomplete("imagine", {"prompt": "a cat", **options}, focused="lora")
        return [choice["value"] for choice in choices]

    assert await values(lora="ti") == ["tiny-lora"]  # the default model's
    assert await values(model="tiny-flux", lora="") == ["tiny-flux-lora"]
    assert await values(lora="tiny-lora:0.5,t") == ["tiny-lora:0.5,tiny-lora"]  # after what is typed
    assert await values(model="tiny-xl", lora="") == []
