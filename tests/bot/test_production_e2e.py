"""The production bot: sharded (`DISCORD_SHARDS`), with /metrics and /healthz (what `imagine bot` serves on
`BOT_METRICS_PORT`): an /imagine through the fake Discord and the real worker shows up in the bot's metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy.orm import Session

from bot.client import ImagineBot, ShardedImagineBot, create_bot
from bot.services import BotServices
from db import jobs as jobs_db
from imagine.runner import serve_bot_monitoring
from imagine.settings import Settings
from tests.fakediscord import FakeDiscord, buttons, run_client
from tests.support.factories import new_job, spec
from tests.support.messages import shows_result
from tests.support.metrics import Scrape, healthz, scrape
from tests.support.services import WorkerProcess
from tests.support.waiting import eventually

GRID_TIMEOUT = 240.0


@pytest.fixture(scope="module")
async def sharded(bot_settings: Settings, fake: FakeDiscord, worker: WorkerProcess) -> AsyncIterator[ImagineBot]:
    settings = bot_settings.model_copy(update={"discord_shards": "2"})
    services = BotServices.create(settings, database_url=settings.database_url, broker_url=settings.redis_url)
    client = create_bot(services, guild_ready_timeout=0.1)
    async with run_client(client, fake, redirect=False):
        await client.delivery.wait_listening()
        yield client


@pytest.fixture(scope="module")
async def monitoring(sharded: ImagineBot) -> AsyncIterator[str]:
    server = serve_bot_monitoring(sharded, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.port}"
    server.close()


async def test_discord_shards_picks_the_client(sharded: ImagineBot, bot_settings: Settings) -> None:
    services = sharded.services
    assert type(create_bot(replace(services, settings=bot_settings))) is ImagineBot
    auto = create_bot(replace(services, settings=bot_settings.model_copy(update={"discord_shards": "auto"})))
    assert isinstance(auto, ShardedImagineBot) and auto.shard_count is None  # it asks GET /gateway/bot


async def test_the_sharded_bot_connects_every_shard(fake: FakeDiscord, sharded: ImagineBot) -> None:
    assert isinstance(sharded, ShardedImagineBot) and sharded.shard_count == 2
    shards = {session.shard for session in fake.sessions if session.alive}
    assert {(0, 2), (1, 2)} <= shards
    assert set(sharded.shards) == {0, 1}


async def test_an_imagine_shows_in_the_bots_and_the_workers_metrics(
    fake: FakeDiscord, sharded: ImagineBot, monitoring: str, worker: WorkerProcess
) -> None:
    assert worker.metrics_url is not None
    # The session worker is shared: let jobs of earlier tests finish first, so the counters move for this one alone.
    await eventually(lambda: sharded.services.db.run(jobs_db.live_counts), lambda rows: not rows,
                     timeout=GRID_TIMEOUT)
    before, worker_before = await asyncio.gather(
        asyncio.to_thread(scrape, monitoring), asyncio.to_thread(scrape, worker.metrics_url))
    interaction = await fake.slash_command("imagine", {"prompt": "a lighthouse in the fog --seed 9"})
    ack = await interaction.wait_ack()
    assert ack.type == 5 and ack.delay < 3.0
    message = await interaction.wait_original(shows_result, timeout=GRID_TIMEOUT)
    await sharded.delivery.wait_idle()
    job = await sharded.services.db.run(jobs_db.get, job_id=int(buttons(message)[0]["custom_id"].split(":")[1]))
    assert job is not None and job.charged_ms  # the member's plan was charged the job's GPU time

    # The worker counted the charge in the ledger metric, in seconds.
    worker_after = await asyncio.to_thread(scrape, worker.metrics_url)
    charged = worker_after.value("imagine_ledger_charged_seconds_total", lane=job.lane) - worker_before.value(
        "imagine_ledger_charged_seconds_total", lane=job.lane)
    assert charged == pytest.approx(job.charged_ms / 1000)

    after = await asyncio.to_thread(scrape, monitoring)
    acks = after.value("imagine_interaction_ack_seconds_count", command="imagine")
    assert acks == before.value("imagine_interaction_ack_seconds_count", command="imagine") + 1
    # Snowflakes count milliseconds, so a quick acknowledgement can measure as 0.
    assert 0 <= after.value("imagine_interaction_ack_seconds_sum", command="imagine") - before.value(
        "imagine_interaction_ack_seconds_sum", command="imagine") < 3.0
    assert after.value("imagine_deliveries_total", state="succeeded") == before.value(
        "imagine_deliveries_total", state="succeeded") + 1


async def test_a_stall_of_the_bots_event_loop_shows_in_its_metrics(sharded: ImagineBot, monitoring: str) -> None:
    stall_s = 0.5
    before = await asyncio.to_thread(scrape, monitoring)  # the longest stall is counted from this scrape on
    time.sleep(stall_s)  # the stall under test: it holds the bot's loop, as a blocking handler would
    after = await eventually(lambda: asyncio.to_thread(scrape, monitoring),
                             lambda m: m.value("imagine_bot_event_loop_lag_max_seconds") >= stall_s * 0.8)
    assert after.value("imagine_bot_event_loop_lag_max_seconds") < stall_s * 2

    def over_quarter_second(metrics: Scrape) -> float:
        return metrics.value("imagine_bot_event_loop_lag_seconds_count") - metrics.value(
            "imagine_bot_event_loop_lag_seconds_bucket", le="0.25")

    assert over_quarter_second(after) >= over_quarter_second(before) + 1
    # Counted once: the next scrape starts again from the stalls since this one.
    assert (await asyncio.to_thread(scrape, monitoring)).value("imagine_bot_event_loop_lag_max_seconds") < stall_s


async def test_the_queue_depth_comes_from_postgresql(sharded: ImagineBot, monitoring: str) -> None:
    def add_queued(*, session: Session) -> int:
        job, _ = jobs_db.submit(session=session, new=new_job(spec=spec(model="unserved")))
        return job.id

    # A model no worker serves: its job waits in the queue.
    job_id = await sharded.services.db.run(add_queued)
    metrics = await asyncio.to_thread(scrape, monitoring)
    assert metrics.value("imagine_queue_depth", model="unserved", lane="fast", state="queued") == 1

    def cancel(*, session: Session) -> None:
        jobs_db.request_cancel(session=session, job_id=job_id)

    await sharded.services.db.run(cancel)
    metrics = await asyncio.to_thread(scrape, monitoring)
    assert metrics.value("imagine_queue_depth", model="unserved") == 0


async def test_healthz_says_what_is_wrong(sharded: ImagineBot, monitoring: str) -> None:
    status, body = await asyncio.to_thread(healthz, monitoring)
    assert (status, body) == (200, {"status": "ok", "checks": {"discord": "ok", "database": "ok"}})
    server = serve_bot_monitoring(ImagineBot(sharded.services), "127.0.0.1", 0)  # a bot that never connected
    try:
        status, body = await asyncio.to_thread(healthz, f"http://127.0.0.1:{server.port}")
    finally:
        server.close()
    assert status == 503
    assert body == {"status": "failing", "checks": {"discord": "not connected to the Discord gateway",
                                                    "database": "ok"}}

