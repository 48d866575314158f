"""Cancel, end to end: the real bot, the fake Discord, a real worker and the tiny model. A queued or running job's
message carries a Cancel button; only the job's member may use it; the job ends cancelled, its fast time is
refunded once, and its message says "(cancelled)" with no buttons."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from db import jobs as jobs_db
from db import quota
from db.models import Job, LedgerEntry
from domain.spec import JobState
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeUser, buttons, snowflake
from tests.support.messages import is_cancel, shows_result
from tests.support.waiting import eventually

TIMEOUT = 90.0
EPHEMERAL = 64
#: The longest job the prompt allows: it runs long enough for the clicks below to land while it runs.
LONG = "--steps 150"


def cancel_id(message: dict[str, Any]) -> str:
    [button] = [b for b in buttons(message) if is_cancel(b)]
    assert (button["label"], button["style"]) == ("Cancel", 4)  # danger
    return str(button["custom_id"])


def job_id_of(message: dict[str, Any]) -> int:
    return int(cancel_id(message).split(":")[1])


def cancellable(message: dict[str, Any]) -> bool:
    return any(is_cancel(b) for b in buttons(message))


def stale_copy(fake: FakeDiscord, message: dict[str, Any], *, cancel_of: int | None = None) -> dict[str, Any]:
    """The message as a client that missed its later edits still shows it, or (``cancel_of``) with the
    Cancel button of that job (the fake lets one click only what a message shows, so the copy is a message
    of its own)."""
    copied = copy.deepcopy(message)
    copied["id"] = str(snowflake())
    if cancel_of is not None:
        copied["components"] = [{"type": 1, "components": [
            {"type": 2, "style": 4, "label": "Cancel", "custom_id": f"job:{cancel_of}:cancel"}
        ]}]
    fake.messages[int(copied["id"])] = copied
    return copied


def shows_cancelled(message: dict[str, Any]) -> bool:
    return "(cancelled)" in message["content"] and not buttons(message)


async def click_cancel(fake: FakeDiscord, message: dict[str, Any], user: FakeUser) -> FakeInteraction:
    interaction = await fake.click(message, cancel_id(message), user=user)
    ack = await interaction.wait_ack()
    assert ack.delay < 3.0 and ack.type == 6, ack.data  # a deferred update: the job's message answers
    return interaction


async def ephemeral(interaction: FakeInteraction) -> str:
    note = await interaction.wait_followup()
    assert note["flags"] & EPHEMERAL
    return str(note["content"])


async def row(bot: ImagineBot, job_id: int) -> Job:
    job = await bot.services.db.run(jobs_db.get, job_id=job_id)
    assert job is not None
    return job


def _ledger(*, session: Session, job_id: int) -> list[tuple[str, int]]:
    entries = session.execute(select(LedgerEntry).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id))
    return [(e.kind, e.amount_ms) for e in entries.scalars()]


def _reserved_and_used(*, session: Session, user_id: int) -> tuple[int, int]:
    balance = quota.current_balance(session=session, user_id=user_id)
    assert balance is not None
    session.refresh(balance)
    return balance.reserved_ms, balance.used_ms


@pytest.fixture(scope="module")
def owner(fake: FakeDiscord) -> FakeUser:
    return fake.add_user("cancel-owner")


async def test_a_member_cancels_their_queued_then_their_running_job_and_gets_their_time_back(
    fake: FakeDiscord, bot: ImagineBot, owner: FakeUser
) -> None:
    # A long job runs; the same member's next job waits behind it (one worker process).
    first = await fake.slash_command("imagine", {"prompt": f"a long walk {LONG} --seed 1"}, user=owner)
    running = await first.wait_original(lambda m: cancellable(m) and "%)" in m["content"], timeout=TIMEOUT)
    second = await fake.slash_command("imagine", {"prompt": "a short wait --seed 2"}, user=owner)
    queued = await second.wait_original(lambda m: cancellable(m) and "Waiting to start" in m["content"])
    running_id, queued_id = job_id_of(running), job_id_of(queued)
    stale = stale_copy(fake, queued)
    assert (await row(bot, queued_id)).state == JobState.QUEUED

    # Another member's click is refused and changes nothing.
    stranger = fake.add_user("cancel-stranger")
    refused = await click_cancel(fake, queued, stranger)
    assert await ephemeral(refused) == f"Only <@{owner.id}> can cancel this job."
    assert (await row(bot, queued_id)).state == JobState.QUEUED
    assert await bot.services.db.run(_ledger, job_id=queued_id) == [("reserve", 1000)]

    # The queued job is cancelled at once and refunded.
    await click_cancel(fake, queued, owner)
    shown = await second.wait_original(shows_cancelled)
    assert not fake.files(shown)
    job = await row(bot, queued_id)
    assert (job.state, job.cancel_requested, job.owner) == (JobState.CANCELLED, True, None)
    assert await bot.services.db.run(_ledger, job_id=queued_id) == [("reserve", 1000), ("refund", 1000)]

    # The running job stops at its next step, is refunded, and its preview is gone from the message.
    assert (await row(bot, running_id)).state == JobState.RUNNING
    cancelling = await click_cancel(fake, running, owner)
    assert (await ephemeral(cancelling)).startswith("Cancelling…")
    shown = await first.wait_original(shows_cancelled, timeout=TIMEOUT)
    assert not fake.files(shown)
    job = await eventually(lambda: row(bot, running_id), lambda j: j.delivered_state == JobState.CANCELLED)
    assert job.state == JobState.CANCELLED and job.progress_step < 150 and job.result_key is None, job.progress_step
    assert await bot.services.db.run(_ledger, job_id=running_id) == [("reserve", 1000), ("refund", 1000)]
    assert await bot.services.db.run(_reserved_and_used, user_id=owner.id) == (0, 0)

    # A second click (a client still showing the button) refunds nothing again.
    again = await click_cancel(fake, stale, owner)
    assert await ephemeral(again) == "This job has already finished."
    assert await bot.services.db.run(_ledger, job_id=queued_id) == [("reserve", 1000), ("refund", 1000)]
    assert await bot.services.db.run(_reserved_and_used, user_id=owner.id) == (0, 0)


async def test_a_click_on_a_job_that_already_ended_refunds_nothing_twice(
    fake: FakeDiscord, bot: ImagineBot, owner: FakeUser
) -> None:
    interaction = await fake.slash_command("imagine", {"prompt": "over before the click --seed 3"}, user=owner)
    done = await interaction.wait_original(shows_result, timeout=TIMEOUT)
    job_id = int(buttons(done)[0]["custom_id"].split(":")[1])
    # A client that missed the final edit still shows the Cancel button.
    late = await click_cancel(fake, stale_copy(fake, done, cancel_of=job_id), owner)
    assert await ephemeral(late) == "This job has already finished."
    job = await row(bot, job_id)
    assert job.state == JobState.SUCCEEDED and not job.cancel_requested
    assert [kind for kind, _ in await bot.services.db.run(_ledger, job_id=job_id)] == ["reserve", "settle"]
