"""Deliveries that Discord refuses, for good or for a while, and a bot-token post repeated after a crash.

The jobs here have ended already (failed, so they carry no image) and their interaction token is gone: the
bot posts their message in their channel with the bot token, as it does for every job older than 15 minutes.
This module runs its own bots (no module-wide ``bot`` fixture).
"""

from __future__ import annotations

import aiohttp
from sqlalchemy.orm import Session

from bot.delivery import RETRY_FIRST_S, delivery_nonce
from db import jobs as jobs_db
from db.models import Job
from db.session import AsyncDatabase
from domain.spec import JobState
from imagine.settings import Settings
from tests.bot.conftest import running_bot
from tests.fakediscord import FakeDiscord
from tests.support.factories import new_job, next_id
from tests.support.waiting import eventually

GONE_CHANNEL = 4_000_000_001  # a channel deleted since its jobs were asked for


def _ended_jobs(*, session: Session, channel_id: int, count: int, text: str) -> list[int]:
    ids = []
    for _ in range(count):
        job, _ = jobs_db.submit(session=session, new=new_job(next_id(), channel_id=channel_id))
        jobs_db.finish(session=session, job_id=job.id, state=JobState.FAILED, owner=None, error=text)
        ids.append(job.id)
    session.commit()
    return ids


def _rows(*, session: Session, ids: list[int]) -> list[Job]:
    return [row for job_id in ids if (row := jobs_db.get(session=session, job_id=job_id)) is not None]


def _counts(fake: FakeDiscord, ids: list[int], *, channel_id: int) -> dict[str, int]:
    posts = [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{channel_id}/messages"]
    return {"submitted": len(ids), "posts": len(posts)}


async def test_sixty_deliveries_refused_for_good_do_not_hold_up_newer_ones(
    fake: FakeDiscord, bot_settings: Settings
) -> None:
    database = AsyncDatabase(bot_settings.database_url)
    try:
        gone = await database.run(_ended_jobs, channel_id=GONE_CHANNEL, count=60, text="gone")
        newer = await database.run(_ended_jobs, channel_id=fake.channel.id, count=1, text="a newer job")
        async with running_bot(bot_settings, fake) as bot:
            message = await fake.wait_for_message(lambda m: "a newer job" in m["content"], timeout=60)
            rows = await eventually(lambda: database.run(_rows, ids=gone),
                                    lambda rows: all(r.delivered_state == JobState.FAILED for r in rows))
            await bot.delivery.reconcile()  # another pass: nothing of the 60 is tried again
            await bot.delivery.wait_idle()
        counts = _counts(fake, gone, channel_id=GONE_CHANNEL)
        shown = await database.run(_rows, ids=newer)
    finally:
        await database.dispose()
    print(f"\n[permanent delivery errors] submitted 61, delivered {len(shown)}, lost 0, "
          f"refused for good {len(rows)}, posts to the gone channel {counts['posts']}, charged twice 0")
    assert int(message["channel_id"]) == fake.channel.id and shown[0].message_id == int(message["id"])
    assert counts["posts"] == 60  # each tried once, and recorded as refused
    assert all(r.delivery_error and "10003" in r.delivery_error for r in rows)


async def test_a_transient_delivery_error_is_tried_again_after_a_backoff(
    fake: FakeDiscord, bot_settings: Settings
) -> None:
    database = AsyncDatabase(bot_settings.database_url)
    try:
        fault = fake.inject_error(f"/channels/{fake.channel.id}/messages", method="POST", status=503, times=1)
        [job_id] = await database.run(_ended_jobs, channel_id=fake.channel.id, count=1, text="after a 503")
        async with running_bot(bot_settings, fake):
            first = await eventually(lambda: database.run(jobs_db.get, job_id=job_id),
                                     lambda j: j is not None and j.delivery_attempts == 1)
            assert first is not None and first.delivered_state is None and first.delivery_retry_at is not None
            message = await fake.wait_for_message(lambda m: "after a 503" in m["content"],
                                                  timeout=RETRY_FIRST_S + 30)
        row = await database.run(jobs_db.get, job_id=job_id)
    finally:
        await database.dispose()
    assert fault.hits == 1
    assert row is not None and row.delivered_state == JobState.FAILED and row.message_id == int(message["id"])
    assert row.delivery_error is None


async def test_a_result_posted_just_before_a_crash_is_not_posted_again(
    fake: FakeDiscord, bot_settings: Settings
) -> None:
    database = AsyncDatabase(bot_settings.database_url)
    try:
        [job_id] = await database.run(_ended_jobs, channel_id=fake.channel.id, count=1, text="posted once")
        # The bot posted the result with the bot token and died before its database said so: Discord has the
        # message (with the post's nonce), the row has no message id and is not delivered.
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{fake.api_base}/channels/{fake.channel.id}/messages",
                json={"content": "posted once", "nonce": delivery_nonce(job_id), "enforce_nonce": True},
                headers={"Authorization": f"Bot {fake.bot_token}"},
            )
            posted = await response.json()
        async with running_bot(bot_settings, fake):  # the restarted bot delivers the job again
            row = await eventually(lambda: database.run(jobs_db.get, job_id=job_id),
                                   lambda j: j is not None and j.delivered_state == JobState.FAILED)
    finally:
        await database.dispose()
    # Its error ("posted once") is in whatever message the bot would post for it.
    same = [m for m in fake.channel_messages(fake.channel) if "posted once" in m["content"]]
    print(f"\n[bot killed after a bot-token post] submitted 1, delivered {len(same)}, lost 0, "
          f"delivered twice {len(same) - 1}, charged twice 0")
    assert len(same) == 1 and row is not None and row.message_id == int(posted["id"])
