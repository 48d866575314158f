"""Row 1: orchestration overhead. ``/imagine`` through the fake Discord to the final message, minus the
pipeline time the worker spent meanwhile.

The real bot (discord.py against ``tests.fakediscord``, in this process), a real ``imagine worker`` process
on the tiny model, PostgreSQL and Redis. For each job: the time from the interaction being sent to the
message showing the grid and its buttons (end to end), and the pipeline time the worker recorded for the
jobs that ran inside that window (``jobs.gpu_ms``: the pipeline call, ``inference.pipelines.timing``).
One at a time, that is the job's own pipeline; 20 at once, also that of the jobs it waited behind, so the
overhead is what the bot, the queue, the database and the delivery add.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bench.common import Row, percentile
from imagine.settings import Settings

__all__ = ["measure", "row"]

#: Longest a grid may take to arrive (a loaded machine, a tiny model).
GRID_TIMEOUT_S = 180.0


@dataclass(frozen=True, slots=True)
class Timing:
    job_id: int
    sent: float  # time.time() when the interaction was sent
    shown: float  # when the message showed the result


async def _one(fake: Any, prompt: str) -> Timing:
    from tests.fakediscord import buttons
    from tests.support.messages import shows_result

    sent = time.time()
    interaction = await fake.slash_command("imagine", {"prompt": prompt})
    message = await interaction.wait_original(shows_result, timeout=GRID_TIMEOUT_S)
    shown = time.time()
    return Timing(int(buttons(message)[0]["custom_id"].split(":")[1]), sent, shown)


@dataclass(frozen=True, slots=True)
class JobTimes:
    """A job's row: when it was submitted, started and finished (PostgreSQL's clock, this machine's), and its
    pipeline time (ms)."""

    created: float
    started: float
    finished: float
    gpu_ms: int


def _pipeline_rows(database_url: str, ids: list[int]) -> dict[int, JobTimes]:
    from db.models import Job
    from db.session import make_engine, make_sessionmaker

    engine = make_engine(database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(Job.id, Job.created_at, Job.started_at, Job.finished_at, Job.gpu_ms).where(Job.id.in_(ids))
            ).all()
    finally:
        engine.dispose()
    return {r.id: JobTimes(_at(r.created_at), _at(r.started_at), _at(r.finished_at), int(r.gpu_ms or 0))
            for r in rows}


def _at(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else float("nan")


def _hops(timings: list[Timing], rows: dict[int, JobTimes]) -> dict[str, float]:
    """p50 of each hop (ms), for jobs run one at a time: the bot (the command sent to its job row committed),
    the queue (to the worker's claim), the worker less its pipeline (images encoded and stored, the row
    finished), the delivery (to the message showing the result)."""
    hops: dict[str, list[float]] = {"bot": [], "queue": [], "worker_less_pipeline": [], "delivery": []}
    for t in timings:
        row = rows[t.job_id]
        hops["bot"].append((row.created - t.sent) * 1000)
        hops["queue"].append((row.started - row.created) * 1000)
        hops["worker_less_pipeline"].append((row.finished - row.started) * 1000 - row.gpu_ms)
        hops["delivery"].append((t.shown - row.finished) * 1000)
    return {name: round(percentile(values, 0.5), 1) for name, values in hops.items()}


def _overheads(timings: list[Timing], rows: dict[int, JobTimes]) -> dict[str, Any]:
    """Per job: end to end minus the pipeline time of the jobs that ran within its window (ms)."""
    overheads, end_to_end = [], []
    for t in timings:
        inside = sum(row.gpu_ms for row in rows.values()
                     if row.started >= t.sent - 0.001 and row.finished <= t.shown + 0.001)
        e2e_ms = (t.shown - t.sent) * 1000
        end_to_end.append(e2e_ms)
        overheads.append(e2e_ms - inside)
    pipeline_ms = sum(rows[t.job_id].gpu_ms for t in timings)
    # Pipeline time over the time the jobs took: one at a time, the sum of their end to end; at once, the wall.
    span_ms = sum(end_to_end) if _sequential(timings) else (max(t.shown for t in timings)
                                                            - min(t.sent for t in timings)) * 1000
    return {
        "jobs": len(timings),
        "overhead_p50_ms": round(percentile(overheads, 0.5), 1),
        "overhead_p99_ms": round(percentile(overheads, 0.99), 1),
        "end_to_end_p50_ms": round(percentile(end_to_end, 0.5), 1),
        "pipeline_ms_total": pipeline_ms,
        "pipeline_share": round(pipeline_ms / span_ms, 3) if span_ms else None,
    }


def _sequential(timings: list[Timing]) -> bool:
    return all(a.shown <= b.sent for a, b in itertools.pairwise(timings))


async def measure(settings: Settings, *, one_at_a_time: int, at_once: int) -> dict[str, Any]:
    """Start the worker and the bot, run the jobs, return the figures (see the module docstring)."""
    from bot.client import ImagineBot
    from bot.services import BotServices
    from tests.fakediscord import FakeDiscord, run_client
    from tests.support.services import make_settings, start_worker

    async with FakeDiscord() as fake:
        values = settings.model_dump()
        values.update(discord_token=fake.bot_token, discord_api_base=fake.api_base,
                      discord_gateway_url=fake.gateway_url)
        bot_settings = make_settings(**values)
        worker = await asyncio.to_thread(start_worker, bot_settings)
        try:
            services = BotServices.create(bot_settings, database_url=bot_settings.database_url or "",
                                          broker_url=bot_settings.redis_url or "")
            bot = ImagineBot(services, guild_ready_timeout=0.1)
            async with run_client(bot, fake, redirect=False):
                await bot.delivery.wait_listening()
                await _one(fake, "warm up --seed 1")  # the bot's and worker's first job: connections, caches
                sequential = [await _one(fake, f"a fox {i} --seed {i}") for i in range(one_at_a_time)]
                burst = list(await asyncio.gather(*(_one(fake, f"a hare {i} --seed {i}") for i in range(at_once))))
            rows = await asyncio.to_thread(_pipeline_rows, bot_settings.database_url or "",
                                           [t.job_id for t in sequential + burst])
            if fake.schema_rejections:
                raise RuntimeError(f"the bot sent what Discord would refuse: {fake.schema_rejections[:3]}")
        finally:
            await asyncio.to_thread(worker.stop)
    return {"one_at_a_time": {**_overheads(sequential, rows), "hops_p50_ms": _hops(sequential, rows)},
            "at_once": _overheads(burst, rows)}


def row(figures: dict[str, Any]) -> Row:
    one, many = figures["one_at_a_time"], figures["at_once"]
    hops = ", ".join(f"{name.replace('_', ' ')} {ms:.0f}" for name, ms in one["hops_p50_ms"].items())
    measured = (f"1 at a time ({one['jobs']}): p50 {one['overhead_p50_ms']:.0f} ms, "
                f"p99 {one['overhead_p99_ms']:.0f} ms, pipeline/e2e {one['pipeline_share']} "
                f"(hops, p50 ms: {hops}); "
                f"{many['jobs']} at once: p50 {many['overhead_p50_ms']:.0f} ms, "
                f"p99 {many['overhead_p99_ms']:.0f} ms, pipeline/e2e {many['pipeline_share']}")
    return Row(1, "orchestration overhead (/imagine → final message − pipeline)", measured, "p50 < 20 ms",
               one["overhead_p50_ms"] < 20, figures)
