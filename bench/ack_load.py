"""Time to acknowledgement under a burst: N ``/imagine`` at once from M members.

The bot runs as its own process (``imagine bot``, the services ``imagine run`` starts) with a real
``imagine worker`` process serving a tiny random-weight model, against the loopback fake Discord
(``tests/fakediscord``) in this process, which plays the members. All N commands are sent at once; for each,
the fake records when the bot's first callback arrived after the interaction was created (Discord's
3-second deadline: a later one is refused, and the member sees "This interaction failed").

The bot's longest event-loop stall is read from the bot's own probe (``imagine_bot_event_loop_lag_max_seconds``
on its ``/metrics``: scraped just before the burst, which starts it afresh, and after). This process's loop
(the fake's) is probed too: its lag delays when the fake notes a callback, so it bounds how much of an
acknowledgement time is the fake's.

    .venv/bin/python bench/ack_load.py --jobs 200 --members 50
    .venv/bin/python bench/ack_load.py --jobs 200 --members 50 --before /tmp/ackload-before   # side by side
    .venv/bin/python bench/ack_load.py --jobs 200 --members 50 --worker noop   # no drawing beside the bot

``--before DIR`` first measures the bot from another checkout (``git archive <commit> | tar -x -C DIR``),
then this one, under the same load, and prints both. PostgreSQL and Redis: ``DATABASE_URL`` / ``REDIS_URL``
when set (a scratch database is created on that server and dropped afterwards), else embedded ones as
``imagine run`` starts. Prints one JSON object; :func:`measure` returns it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakediscord import FakeDiscord
from tests.support.messages import shows_result
from tests.support.metrics import Scrape, scrape
from tests.support.services import (
    bot_process,
    drop_database,
    free_port,
    make_settings,
    make_test_database,
    start_worker,
)

__all__ = ["measure"]

ROOT = Path(__file__).resolve().parents[1]
PLANS = ROOT / "tests" / "bot" / "plans.toml"  # a roomy default plan: no member is refused for quota
DEADLINE_S = 3.0
#: The worker beside the bot: ``tiny`` draws with the tiny model on these same cores, as ``imagine run`` does on
#: a machine without a GPU; ``noop`` draws blank images (``bench.noop_worker``), as when the GPU is another
#: machine's: the same jobs, claims and deliveries, no drawing beside the bot.
RENDERERS: dict[str, tuple[str, ...]] = {"tiny": ("imagine.cli", "worker"), "noop": ("bench.noop_worker",)}
_PROBE_S = 0.01


@contextlib.contextmanager
def _services(root: Path) -> Iterator[tuple[str, str]]:
    """A fresh migrated database and a Redis URL: from the environment, else embedded."""
    server = os.environ.get("DATABASE_URL")
    name = f"imagine_bench_{uuid.uuid4().hex[:8]}"
    embedded: list[Any] = []
    if server is None:
        from imagine.services import EmbeddedPostgres

        pg_root = Path(tempfile.mkdtemp(prefix="imagine-bench-pg-"))
        pg_root.chmod(0o755)
        embedded.append(EmbeddedPostgres(pg_root / "data"))
        server = embedded[-1].url
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None:
        from imagine.services import EmbeddedRedis

        embedded.append(EmbeddedRedis(root / "dump.rdb"))
        redis_url = embedded[-1].url
    try:
        yield make_test_database(server, name), redis_url
    finally:
        drop_database(server, name)
        for service in reversed(embedded):
            service.stop()


async def _probe(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(_PROBE_S)
        lags.append(loop.time() - before - _PROBE_S)


@contextlib.asynccontextmanager
async def _bot(jobs: int, root: Path, database_url: str, redis_url: str, source: Path,
               renderer: str) -> AsyncIterator[tuple[FakeDiscord, str]]:
    """The fake Discord, a worker (drawing with ``renderer``) and ``imagine bot`` (from ``source``) logged in
    to it; and its metrics URL."""
    from inference.tiny import write_tiny_model

    models = write_tiny_model(root / "models")
    (root / "data").mkdir()
    # Discord checks request bodies on its own machines: here that would take CPU from the bot under test
    # (about 16 ms a request), so the fake does not (the end-to-end tests do).
    async with FakeDiscord(interaction_deadline=DEADLINE_S, validate_openapi=False) as fake:
        settings = make_settings(
            database_url=database_url, redis_url=redis_url, models_file=models, plans_file=PLANS,
            data_dir=root / "data", discord_token=fake.bot_token, discord_api_base=fake.api_base,
            discord_gateway_url=fake.gateway_url, command_burst=max(5, jobs), command_rate_per_minute=60.0,
            bot_metrics_port=free_port(), metrics_host="127.0.0.1",
        )
        worker = await asyncio.to_thread(start_worker, settings, command=RENDERERS[renderer])
        try:
            async with bot_process(settings, fake, root / "bot.log", source=source):
                yield fake, f"http://127.0.0.1:{settings.bot_metrics_port}"
        except BaseException:
            log = root / "bot.log"
            print(log.read_text()[-5000:] if log.exists() else "(no bot log)", file=sys.stderr)
            raise
        finally:
            await asyncio.to_thread(worker.stop)


_LAG_MAX = "imagine_bot_event_loop_lag_max_seconds"


def _has(metrics: Scrape, name: str) -> bool:
    return any(sample_name == name for sample_name, _, _ in metrics.samples)


def _stalls_over(metrics: Scrape, bound: str) -> float:
    """How many probe wake-ups came more than ``bound`` seconds late (a histogram bucket's bound)."""
    return metrics.value("imagine_bot_event_loop_lag_seconds_count") - metrics.value(
        "imagine_bot_event_loop_lag_seconds_bucket", le=bound)


async def measure(jobs: int, members: int, *, source: Path = ROOT, renderer: str = "tiny") -> dict[str, Any]:
    """Send ``jobs`` ``/imagine`` at once from ``members`` members to the bot of ``source`` (this checkout);
    the acknowledgement times (ms: p50, p99, max), how many missed Discord's 3 s, and the bot's longest
    event-loop stall (ms, from its own probe)."""
    root = Path(tempfile.mkdtemp(prefix="imagine-bench-ack-"))
    try:
        with _services(root) as (database_url, redis_url):
            async with _bot(jobs, root, database_url, redis_url, source, renderer) as (fake, metrics_url):
                users = [fake.add_user(f"member{n}") for n in range(members)]
                # Warm up: the fake compiles Discord's OpenAPI description on its first request, the bot
                # opens its pools. Neither is what a burst on a running bot meets.
                warm = await fake.slash_command("imagine", {"prompt": "a warm-up"}, user=fake.add_user("warm"))
                # Its whole job, delivery included: the burst meets a bot and worker with nothing else to do.
                await warm.wait_original(shows_result, timeout=120)
                before = await asyncio.to_thread(scrape, metrics_url)  # the bot's longest stall: from here on
                lags: list[float] = []
                stop = asyncio.Event()
                probe = asyncio.create_task(_probe(lags, stop))
                started = time.monotonic()
                sent = await asyncio.gather(*(
                    fake.slash_command("imagine", {"prompt": f"a lighthouse number {n}"}, user=users[n % members])
                    for n in range(jobs)
                ))
                # One waiter for all (each waiter wakes on every request the fake takes).
                with contextlib.suppress(TimeoutError):
                    await fake.wait_until(lambda: all(i.callback for i in sent), timeout=DEADLINE_S + 30)
                # Let the answers after the acknowledgements land too: their work is what stalls the loop.
                with contextlib.suppress(TimeoutError):
                    await fake.wait_until(lambda: all(i.original and i.original.get("content") for i in sent),
                                          timeout=120)
                wall_s = time.monotonic() - started
                after = await asyncio.to_thread(scrape, metrics_url)
                stop.set()
                await probe
    finally:
        shutil.rmtree(root, ignore_errors=True)
    acks = [i.callback for i in sent]  # None: none came in time (the fake refuses a late one)
    delays = sorted(ack.delay * 1000 for ack in acks if ack is not None)
    missed = sum(1 for ack in acks if ack is None or ack.delay > DEADLINE_S)
    return {
        "jobs": jobs,
        "members": members,
        "worker": renderer,
        "p50_ms": round(statistics.median(delays), 1) if delays else None,
        "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 1) if delays else None,
        "max_ms": round(delays[-1], 1) if delays else None,
        "missed": missed,
        # None: that bot has no loop-lag probe (a checkout from before it).
        "loop_lag_max_ms": round(after.value(_LAG_MAX) * 1000, 1) if _has(after, _LAG_MAX) else None,
        "loop_stalls_over_100ms": int(_stalls_over(after, "0.1") - _stalls_over(before, "0.1"))
        if _has(after, _LAG_MAX) else None,
        "fake_loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 1),
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--before", type=Path, help="another checkout's bot to measure first, side by side")
    parser.add_argument("--worker", choices=sorted(RENDERERS), default="tiny",
                        help="tiny: the tiny model drawn on these cores (default); noop: blank images")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.before is None:
        print(json.dumps(asyncio.run(measure(args.jobs, args.members, renderer=args.worker))))
        return
    before = asyncio.run(measure(args.jobs, args.members, source=args.before.resolve(), renderer=args.worker))
    after = asyncio.run(measure(args.jobs, args.members, renderer=args.worker))
    print(json.dumps({"before": before, "after": after}))


if __name__ == "__main__":
    main()
