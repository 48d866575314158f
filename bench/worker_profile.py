"""``python -m bench.worker_profile``: where a no-op job's time goes in the worker, in this process.

``inference.runner.run_job`` with the ``noop`` renderer (claim, heartbeat thread, four blank 128x128
images and the grid stored, finish, settle) on jobs submitted as the bot submits them, one after another,
without Celery: wall and CPU milliseconds per job, and the statements, transactions and connection
checkouts each job sends to PostgreSQL. ``--profile N`` prints cProfile's N costliest functions (the
profiler roughly doubles the times). Makes a scratch database on ``--database-url`` (default
``IMAGINE_TEST_DATABASE_URL``) and drops it. Not a row of ``python -m bench``: a tool for reading row 3.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from bench.common import BENCH_PLANS, scratch_database, submit

__all__ = ["main"]

MEMBERS = 10
PER_SUBMIT = 10
WARM = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's N costliest functions")
    parser.add_argument("--database-url", default=os.environ.get("IMAGINE_TEST_DATABASE_URL", ""))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set IMAGINE_TEST_DATABASE_URL (a PostgreSQL server)")
    logging.basicConfig(level=logging.WARNING)

    from db.session import make_engine, make_sessionmaker
    from domain.catalog import load_catalog
    from domain.plans import load_plans
    from inference.context import WorkerContext, owner_name
    from inference.runner import run_job
    from inference.storage import open_store
    from inference.tiny import write_tiny_model

    work = Path(tempfile.mkdtemp(prefix="imagine-worker-profile-"))
    with scratch_database(args.database_url, "profile") as url:
        catalog, book = load_catalog(write_tiny_model(work / "models", families=["sd15"])), load_plans(BENCH_PLANS)
        engine = make_engine(url, pool_size=2)
        counts = {"statements": 0, "transactions": 0, "checkouts": 0}

        def count(what: str) -> None:
            counts[what] += 1

        event.listen(engine, "before_cursor_execute", lambda *_: count("statements"))
        event.listen(engine, "commit", lambda *_: count("transactions"))
        event.listen(engine.pool, "checkout", lambda *_: count("checkouts"))
        sessions = make_sessionmaker(engine)
        ctx = WorkerContext(catalog=catalog, database_url=url, sessions=sessions,
                            store=open_store(str(work / "images")), owner=owner_name(), renderer="noop")
        ids: list[int] = []
        for start in range(0, WARM + args.jobs, PER_SUBMIT):
            with sessions() as session, session.begin():
                ids += [job_id for job_id, _ in submit(
                    session=session, catalog=catalog, book=book, user_id=1000 + start % MEMBERS,
                    prompts=[f"a fox {i} --seed {i}" for i in range(start, start + PER_SUBMIT)], key=f"p{start}")]
        for job_id in ids[:WARM]:  # connections, imports, the store's folders
            run_job(ctx, job_id)
        counts.update(dict.fromkeys(counts, 0))
        profiler = cProfile.Profile() if args.profile else None
        walls = []
        cpu, began = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for job_id in ids[WARM:]:
            started = time.perf_counter()
            state = run_job(ctx, job_id)
            walls.append(time.perf_counter() - started)
            if state is None or state.value != "succeeded":
                raise RuntimeError(f"no-op job {job_id} ended {state}")
        if profiler is not None:
            profiler.disable()
        jobs = len(walls)
        cpu_ms, mean_ms = 1000 * (time.process_time() - cpu) / jobs, 1000 * (time.perf_counter() - began) / jobs
        engine.dispose()
    print(f"{jobs} no-op jobs: wall median {1000 * statistics.median(walls):.1f} ms/job (mean {mean_ms:.1f}), "
          f"CPU {cpu_ms:.1f} ms/job; per job {counts['statements'] / jobs:.1f} statements, "
          f"{counts['transactions'] / jobs:.1f} transactions, {counts['checkouts'] / jobs:.1f} checkouts"
          f"{' (under cProfile)' if profiler else ''}")
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
