"""``python -m bench``: every benchmark of issue 14, one table.

    .venv/bin/python -m bench [--quick] [--json PATH] [--database-url URL] [--redis-url URL] [--only 1,5]

PostgreSQL and Redis: ``--database-url`` / ``--redis-url`` (a server: each row makes its own scratch
database and drops it; Redis keys carry a fresh prefix), else ``IMAGINE_TEST_DATABASE_URL`` /
``IMAGINE_TEST_REDIS_URL``, else embedded ones started for the run (as ``imagine run`` does). ``--quick``
runs every row at small sizes (a smoke run: ``tests/bench/test_suite.py``); the figures of a quick run mean
little. Times are this machine's (CPU, tiny models) except row 8's. The exit status is 1 when a row could not
be measured (its error is in the table), else 0: a goal that is missed is a figure, not a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import BENCH_PLANS, Row, Servers, scratch_database, servers

__all__ = ["main"]

log = logging.getLogger("bench")

HOPS = {
    1: "orchestration overhead (/imagine → final message − pipeline)",
    2: "acknowledgement under load (bench/ack_load.py)",
    3: "queue throughput, no-op pipeline (submit → Celery → finish)",
    4: "ledger: conditional reservation on one hot row",
    5: "image encoding of a grid, and the bot's choice",
    6: "worker warm path (tiny model, CPU)",
    7: "growth of the jobs table (history and queue)",
    8: "GPU (bench/render_grid.py)",
}


@dataclass(frozen=True, slots=True)
class Sizes:
    one_at_a_time: int = 50
    at_once: int = 20
    ack_jobs: int = 200
    ack_members: int = 50
    noop_jobs: int = 1000
    ledger_limit_ms: int = 15_000
    encoding_side: int = 2048
    encoding_runs: int = 3
    warm_runs: int = 5
    finished: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    queued: tuple[int, ...] = (1_000, 10_000)
    growth_reps: int = 15


QUICK = Sizes(one_at_a_time=4, at_once=3, ack_jobs=20, ack_members=5, noop_jobs=40, ledger_limit_ms=2_000,
              encoding_side=1024, encoding_runs=1, warm_runs=1, finished=(1_000, 4_000), queued=(100, 400),
              growth_reps=3)


class Run:
    """What the rows share: the servers, a work folder with the tiny models, the sizes."""

    def __init__(self, servers: Servers, work: Path, sizes: Sizes) -> None:
        self.servers, self.work, self.sizes = servers, work, sizes
        self._models: Path | None = None

    @property
    def models_file(self) -> Path:
        if self._models is None:
            from inference.tiny import write_tiny_model

            self._models = write_tiny_model(self.work / "models", families=["sd15", "sdxl"])
        return self._models

    def settings(self, database_url: str, label: str) -> Any:
        from imagine.settings import Settings
        from tests.support.services import make_settings

        data_dir = self.work / label
        data_dir.mkdir(parents=True, exist_ok=True)
        return make_settings(
            database_url=database_url, redis_url=self.servers.redis, models_file=self.models_file,
            plans_file=BENCH_PLANS, data_dir=data_dir, broker_key_prefix=f"{self.servers.key_prefix}{label}:",
            # What members get, not the tests' instant progress edits.
            progress_interval_s=Settings.model_fields["progress_interval_s"].default,
        )


async def _orchestration(run: Run) -> Row:
    from bench import orchestration

    with scratch_database(run.servers.postgres, "orchestration") as url:
        figures = await orchestration.measure(run.settings(url, "orchestration"),
                                              one_at_a_time=run.sizes.one_at_a_time, at_once=run.sizes.at_once)
    return orchestration.row(figures)


async def _ack(run: Run) -> Row:
    from bench import ack_load

    figures = await ack_load.measure(run.sizes.ack_jobs, run.sizes.ack_members)
    measured = (f"{run.sizes.ack_jobs} at once from {run.sizes.ack_members} members: p50 {figures['p50_ms']:.0f} ms, "
                f"p99 {figures['p99_ms']:.0f} ms, max {figures['max_ms']:.0f} ms, missed {figures['missed']}, "
                f"loop lag max {figures['loop_lag_max_ms']:.0f} ms")
    return Row(2, HOPS[2], measured, "p99 < 250 ms, none missed",
               figures["p99_ms"] < 250 and figures["missed"] == 0, figures)


async def _throughput(run: Run) -> Row:
    from bench import throughput

    with scratch_database(run.servers.postgres, "throughput") as url:
        figures = await throughput.measure(run.settings(url, "throughput"), jobs=run.sizes.noop_jobs)
    return throughput.row(figures)


async def _ledger(run: Run) -> Row:
    from bench import quota_reserve

    figures = await asyncio.to_thread(quota_reserve.measure, run.servers.postgres, connections=16,
                                      limit_ms=run.sizes.ledger_limit_ms)
    return quota_reserve.row(figures)


async def _encoding(run: Run) -> Row:
    from bench import encoding

    return encoding.row(await asyncio.to_thread(encoding.measure, side=run.sizes.encoding_side,
                                                runs=run.sizes.encoding_runs))


async def _warm(run: Run) -> Row:
    from bench import warm_path

    with scratch_database(run.servers.postgres, "warm") as url:
        figures = await asyncio.to_thread(warm_path.measure, database_url=url, models_file=run.models_file,
                                          store_dir=run.work / "warm-images", runs=run.sizes.warm_runs)
    return warm_path.row(figures)


async def _growth(run: Run) -> Row:
    from bench import growth

    with scratch_database(run.servers.postgres, "growth") as url:
        figures = await asyncio.to_thread(
            growth.measure, database_url=url, redis_url=run.servers.redis,
            key_prefix=f"{run.servers.key_prefix}growth:", models_file=run.models_file,
            finished_sizes=run.sizes.finished, queued_sizes=run.sizes.queued, reps=run.sizes.growth_reps)
    return growth.row(figures)


async def _gpu(run: Run) -> Row:
    from bench import gpu

    return gpu.row(await asyncio.to_thread(gpu.measure, report=run.work / "render_grid.json"))


#: In the order they run: the quick, in-process ones first, the ones that start worker processes last.
ROWS: dict[int, Callable[[Run], Awaitable[Row]]] = {
    5: _encoding, 4: _ledger, 7: _growth, 6: _warm, 1: _orchestration, 3: _throughput, 2: _ack, 8: _gpu,
}


def _cell(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "no")


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    print(f"{'#':<2} {'hop':<62} {'goal':<42} {'met':<4} measured")
    for r in rows:
        print(f"{r.number:<2} {r.hop:<62} {r.goal:<42} {_cell(r.met):<4} {r.measured}")
    for r in rows:
        if r.details:
            print(f"\n[{r.number}] {r.hop}")
            print("\n".join(r.details))


async def run_rows(run: Run, wanted: list[int]) -> list[Row]:
    rows = []
    for number, measure in ROWS.items():
        if number not in wanted:
            continue
        started = time.monotonic()
        print(f"bench: row {number} ({HOPS[number]})…", file=sys.stderr, flush=True)
        try:
            row = await measure(run)
        except Exception as exc:
            traceback.print_exc()
            row = Row(number, HOPS[number], f"ERROR {type(exc).__name__}: {exc}"[:300], "", False, {"error": True})
        row.data["seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
    return sorted(rows, key=lambda r: r.number)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", type=Path, default=None, help="also write every row's figures here")
    parser.add_argument("--database-url", default=os.environ.get("IMAGINE_TEST_DATABASE_URL", ""),
                        help="a PostgreSQL server (default: IMAGINE_TEST_DATABASE_URL, else an embedded one)")
    parser.add_argument("--redis-url", default=os.environ.get("IMAGINE_TEST_REDIS_URL", ""),
                        help="a Redis (default: IMAGINE_TEST_REDIS_URL, else an embedded one)")
    parser.add_argument("--only", default=",".join(str(n) for n in sorted(HOPS)), help="rows to run, e.g. 1,5")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models gain nothing from more threads here
    logging.basicConfig(level=logging.WARNING)
    wanted = [int(n) for n in args.only.split(",") if n.strip()]
    sizes = QUICK if args.quick else Sizes()
    work = Path(tempfile.mkdtemp(prefix="imagine-bench-"))
    started = time.monotonic()
    try:
        with servers(args.database_url or None, args.redis_url or None, work) as found:
            rows = asyncio.run(run_rows(Run(found, work, sizes), wanted))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = (f"python -m bench{' --quick' if args.quick else ''}: {platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}; CPU times with tiny models unless the row says otherwise; "
              f"{time.monotonic() - started:.0f} s")
    print_table(rows, header)
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "header": header, "sizes": asdict(sizes),
                                         "rows": [asdict(r) for r in rows]}, indent=2, default=str))
    return 1 if any(r.data.get("error") for r in rows) else 0
