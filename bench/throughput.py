"""Row 3: queue throughput with a no-op pipeline. Jobs per second end to end through a real Celery worker
and the real database path.

Jobs are submitted as the bot submits them (``db.submission``: plan, lane, quota reservation, ledger row,
then ``inference.dispatch.publish_jobs``), ten per transaction (a prompt's permutations make several jobs in
one submit), from several members; ``bench.noop_worker`` (``imagine worker`` with the ``noop`` renderer:
claim, heartbeat, blank images stored, finish, settle, NOTIFY) runs them. The rate is jobs over the time
from the first submit to the last finish, both on PostgreSQL's clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select, text

from bench.common import BENCH_PLANS, Row, submit
from imagine.settings import Settings

__all__ = ["measure", "row"]

MEMBERS = 10
PER_SUBMIT = 10


def _run(settings: Settings, jobs: int) -> dict[str, Any]:
    from db.models import Job
    from db.session import make_engine, make_sessionmaker
    from domain.catalog import load_catalog
    from domain.plans import load_plans
    from inference.celery_app import create_celery
    from inference.dispatch import publish_jobs, stale_after
    from tests.support.services import start_worker

    catalog, book = load_catalog(settings.models_path), load_plans(BENCH_PLANS)
    engine = make_engine(settings.database_url or "", pool_size=2)
    sessions = make_sessionmaker(engine)
    app = create_celery(settings.redis_url or "", job_timeout_s=settings.job_timeout_s,
                        broker_key_prefix=settings.broker_key_prefix)
    worker = start_worker(settings, command=("bench.noop_worker",))
    try:
        def batch(first: int, count: int, key: str) -> None:
            for start in range(first, first + count, PER_SUBMIT):
                prompts = [f"a fox {i} --seed {i}" for i in range(start, min(first + count, start + PER_SUBMIT))]
                with sessions() as session, session.begin():
                    created = submit(session=session, catalog=catalog, book=book, user_id=1000 + start % MEMBERS,
                                     prompts=prompts, key=f"{key}{start}")
                publish_jobs(sessions, app, created, stale_after=stale_after(settings.heartbeat_s))

        def finished() -> int:
            with sessions() as session:
                return int(session.execute(select(func.count()).select_from(Job)
                                           .where(Job.state == "succeeded")).scalar_one())

        def wait_for(count: int, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while finished() < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{finished()} of {count} no-op jobs finished within {timeout:.0f} s")
                time.sleep(0.02)

        batch(0, PER_SUBMIT, "warm")  # the worker's first jobs: connections, imports
        wait_for(PER_SUBMIT, 120)
        with sessions() as session:
            started = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        batch(PER_SUBMIT, jobs, "run")
        wait_for(PER_SUBMIT + jobs, 60 + jobs * 0.5)
        with sessions() as session:
            last, first_claim, failed = session.execute(
                select(func.max(Job.finished_at), func.min(Job.started_at),
                       func.count().filter(Job.state != "succeeded")).where(Job.queued_at >= started)
            ).one()
        if last is None or first_claim is None:
            raise RuntimeError("no no-op job ran")
        seconds = (last - started).total_seconds()
        return {
            "jobs": jobs, "succeeded": jobs - int(failed), "seconds": round(seconds, 3),
            "jobs_per_s": round(jobs / seconds, 1),
            # Once the worker had its first message: the drain rate alone, submits overlapping it.
            "drain_jobs_per_s": round(jobs / (last - first_claim).total_seconds(), 1),
            "worker_processes": max(1, len(settings.worker_device_list)),
        }
    finally:
        worker.stop()
        engine.dispose()


async def measure(settings: Settings, *, jobs: int) -> dict[str, Any]:
    return await asyncio.to_thread(_run, settings, jobs)


def row(figures: dict[str, Any]) -> Row:
    measured = (f"{figures['jobs_per_s']:.0f} jobs/s end to end ({figures['succeeded']}/{figures['jobs']} jobs, "
                f"{figures['worker_processes']} worker process; drain {figures['drain_jobs_per_s']:.0f} jobs/s)")
    return Row(3, "queue throughput, no-op pipeline (submit → Celery → finish)", measured, ">= 200 jobs/s",
               figures["jobs_per_s"] >= 200, figures)
