"""Row 7: growth. The database hops with the jobs table at 10^4, 10^5 and 10^6 finished rows and 10^3 / 10^4
queued, on a scratch database bulk-loaded with ``generate_series``:

- submit (``db.submission.submit_jobs`` with the member's account, as the bot submits),
- claim (``db.jobs.claim`` of the next job in the queue),
- queue position (``db.queue.standing`` of the last queued job: position and ETA),
- reconcile (``db.jobs.undelivered``: what the bot delivers at start-up and every 5 s),
- ``/info`` (``db.plans.load_account`` and ``db.plans.user_jobs`` of a member with queued jobs),
- the reaper's pass (``inference.reaper.reap``: nothing to do, as in steady state).

Each hop but the reaper's runs in a transaction that is rolled back, so the sizes stay as loaded; each
figure is the median of ``reps`` runs. The statements each hop sent are captured (SQLAlchemy's
``before_cursor_execute`` event) and EXPLAINed at the largest size: the scans they use show why a hop stays
flat as history grows. A hop that counts what waits ahead (queue position, submit's position) grows with the
queue by its nature, never with history.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: the checkout's packages, not an installed copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from bench.common import BENCH_PLANS, Row, median, scratch_database, servers, submit

__all__ = ["main", "measure", "row"]

MEMBERS = 1000
#: A member with no jobs, who submits.
SUBMITTER = 50_000
#: A hop may be this many times slower at the largest history than at the smallest and still count as flat
#: (a shared machine's noise); a sequential scan of the jobs table never does.
FLAT_RATIO = 3.0
HOPS = ("submit", "claim", "queue position", "reconcile", "/info", "reaper pass")
_SCAN = re.compile(r"((?:Parallel )?(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|Bitmap Index Scan)"
                   r"(?: Backward)?(?: using \w+)?(?: on \w+)?)")


def _load(session: Session, *, first: int, count: int, state: str, spec: str, epoch: str) -> None:
    """Bulk-insert ``count`` jobs numbered from ``first`` (their idempotency keys) in ``state``."""
    finished = state == "succeeded"
    session.execute(text(f"""
        INSERT INTO jobs (user_id, guild_id, channel_id, kind, state, spec, prompt, model, lane, queue, idem_key,
                          estimated_ms, attempts, progress_step, progress_total, cancel_requested, max_running,
                          queued_at, started_at, finished_at, gpu_ms, delivered_state, delivered_at,
                          published_at, broker_epoch, reserved_ms)
        SELECT 1 + g % {MEMBERS}, 1, 2, 'imagine', :state, CAST(:spec AS jsonb), 'a fox ' || g, 'tiny', 'fast',
               'tiny.fast', 'growth:' || g, 1000, {1 if finished else 0}, 0, 0, false, 3,
               now() - interval '1 hour' + g * interval '1 millisecond',
               {"now() - interval '1 hour' + g * interval '1 millisecond'" if finished else "NULL"},
               {"now() - interval '1 hour' + g * interval '1 millisecond' + interval '900 ms'" if finished else "NULL"},
               {"900" if finished else "NULL"}, {":state" if finished else "NULL"}, {"now()" if finished else "NULL"},
               {"NULL" if finished else "now()"}, {"NULL" if finished else ":epoch"}, 0
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
    """), {"state": state, "spec": spec, "epoch": epoch, "first": first, "last": first + count - 1})


def _vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))


class _Capture:
    """The statements sent on ``engine`` while :attr:`on` (for EXPLAIN)."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.on and not many and "pg_notify" not in statement and not statement.startswith("EXPLAIN"):
            self.statements.append((statement, parameters))


def _plans(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    """The scans of each statement's plan: ``Index Scan using ix_… on jobs``, ``Seq Scan on users``, …"""
    scans: list[str] = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            for line in rows:
                scans += [m for m in _SCAN.findall(line) if m not in scans]
        conn.rollback()
    return scans


def measure(*, database_url: str, redis_url: str, key_prefix: str, models_file: Any,
            finished_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
            queued_sizes: tuple[int, ...] = (1_000, 10_000), reps: int = 15) -> dict[str, Any]:
    from db import jobs as jobs_db
    from db import plans as plans_db
    from db import queue as queue_db
    from db.models import Job
    from db.plans import Requester
    from db.session import make_engine, make_sessionmaker
    from domain.catalog import load_catalog
    from domain.plans import load_plans
    from domain.prompt import parse_prompt
    from inference.celery_app import create_celery
    from inference.dispatch import broker_epoch
    from inference.reaper import reap

    for name, sizes in (("finished_sizes", finished_sizes), ("queued_sizes", queued_sizes)):
        if not sizes or any(b <= a for a, b in pairwise((0, *sizes))):
            raise ValueError(f"{name} must be positive and increasing, got {sizes!r}")
    catalog, book = load_catalog(models_file), load_plans(BENCH_PLANS)
    engine = make_engine(database_url, pool_size=2)
    sessions: sessionmaker[Session] = make_sessionmaker(engine)
    capture = _Capture(engine)
    app = create_celery(redis_url, job_timeout_s=900, broker_key_prefix=key_prefix)
    epoch = broker_epoch(app)
    spec = json.dumps(parse_prompt("a fox", catalog).specs[0].to_dict())
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.execute(text("INSERT INTO guilds (id, name) VALUES (1, 'bench')"))
        session.execute(text("INSERT INTO users (id, name) SELECT g, 'member' || g FROM generate_series(1, :n) g"),
                        {"n": MEMBERS})

    def rolled_back(work: Callable[[Session], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with sessions() as session:
                try:
                    return work(session)
                finally:
                    session.rollback()
        return run

    def queued_ends(session: Session) -> tuple[Job, Job]:
        first = session.execute(text("SELECT min(id), max(id) FROM jobs WHERE state = 'queued'")).one()
        return session.get_one(Job, first[0]), session.get_one(Job, first[1])

    def hops() -> dict[str, Callable[[], Any]]:
        with sessions() as session:
            oldest, newest = queued_ends(session)
            oldest_id, newest_id = oldest.id, newest.id
        counter = iter(range(10**9))
        return {
            "submit": rolled_back(lambda s: submit(session=s, catalog=catalog, book=book, user_id=SUBMITTER,
                                                   prompts=["a fox"], key=f"g{next(counter)}")),
            "claim": rolled_back(lambda s: jobs_db.claim(session=s, job_id=oldest_id, owner="bench:1",
                                                         stale_after=timedelta(seconds=15), max_attempts=3)),
            "queue position": rolled_back(lambda s: queue_db.standing(session=s, job=s.get_one(Job, newest_id),
                                                                      now=datetime.now(UTC))),
            "reconcile": rolled_back(lambda s: jobs_db.undelivered(session=s, limit=50)),
            "/info": rolled_back(lambda s: (
                plans_db.load_account(session=s, requester=Requester(1, "member1", 1), book=book, now=now),
                plans_db.user_jobs(session=s, user_id=1, limit=11))),
            "reaper pass": lambda: reap(sessions, app, heartbeat_s=5.0, max_attempts=3),
        }

    next_id = 1  # the next job's number (its idempotency key), on from the last one loaded

    def top_up(state: str, have: int, want: int) -> None:
        """Load jobs in ``state`` until there are ``want`` of them (``have`` already), numbered on from the last."""
        nonlocal next_id
        with sessions() as session, session.begin():
            _load(session, first=next_id, count=want - have, state=state, spec=spec, epoch=epoch)
        next_id += want - have

    results: list[dict[str, Any]] = []
    plans: dict[str, list[str]] = {}
    try:
        for previous_finished, finished in pairwise((0, *finished_sizes)):
            top_up("succeeded", previous_finished, finished)
            base_id = next_id
            for previous_queued, queued in pairwise((0, *queued_sizes)):
                top_up("queued", previous_queued, queued)
                _vacuum(engine)
                with sessions() as session:  # what the hops run against, counted
                    held = {state: count for state, count in session.execute(
                        text("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state")).tuples()}
                timings: dict[str, float] = {}
                for name, hop in hops().items():
                    hop()  # warm: plans cached, pages read
                    runs = []
                    for _ in range(reps):
                        started = time.perf_counter()
                        hop()
                        runs.append((time.perf_counter() - started) * 1000)
                    timings[name] = round(median(runs), 2)
                results.append({"finished": finished, "queued": queued, "rows": held, "ms": timings})
                if finished == finished_sizes[-1] and queued == queued_sizes[-1]:
                    for name, hop in hops().items():
                        capture.statements, capture.on = [], True
                        try:
                            hop()
                        finally:
                            capture.on = False
                        plans[name] = _plans(engine, capture.statements)
            with sessions() as session, session.begin():  # back to history only for the next size
                session.execute(text("DELETE FROM jobs WHERE id >= :first"), {"first": base_id})
    finally:
        engine.dispose()
    return {"finished_sizes": list(finished_sizes), "queued_sizes": list(queued_sizes), "reps": reps,
            "results": results, "plans": plans, "flat": _flatness(results, plans, queued_sizes)}


def _flatness(results: list[dict[str, Any]], plans: dict[str, list[str]],
              queued_sizes: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """Per hop: the largest history's time over the smallest's (same queue), and whether it is flat."""
    out = {}
    same_queue = [r for r in results if r["queued"] == queued_sizes[0]]
    for hop in HOPS:
        ratio = same_queue[-1]["ms"][hop] / max(same_queue[0]["ms"][hop], 0.01)
        seq = any(s.startswith(("Seq Scan on jobs", "Parallel Seq Scan on jobs")) for s in plans.get(hop, []))
        out[hop] = {"history_ratio": round(ratio, 2), "seq_scan_on_jobs": seq, "flat": ratio < FLAT_RATIO and not seq}
    return out


def row(figures: dict[str, Any]) -> Row:
    flat = figures["flat"]
    sizes = f"{figures['finished_sizes'][0]:,}–{figures['finished_sizes'][-1]:,} finished"
    measured = f"{sizes}: " + ", ".join(
        f"{hop} ×{flat[hop]['history_ratio']:.1f}" for hop in HOPS) + " (largest history / smallest, same queue)"
    details = ["growth (median ms per hop)",
               f"{'finished':>10}{'queued':>8}" + "".join(f"{hop:>16}" for hop in HOPS)]
    details += [f"{r['finished']:>10,}{r['queued']:>8,}" + "".join(f"{r['ms'][hop]:>16.2f}" for hop in HOPS)
                for r in figures["results"]]
    details.append(f"query plans at {figures['finished_sizes'][-1]:,} finished and "
                   f"{figures['queued_sizes'][-1]:,} queued:")
    details += [f"  {hop}: " + "; ".join(scans) for hop, scans in figures["plans"].items()]
    return Row(7, "growth of the jobs table (history and queue)", measured,
               f"flat in history (< ×{FLAT_RATIO:.0f}, no seq scan of jobs)",
               all(h["flat"] for h in flat.values()), figures, details)


def _sizes(value: str) -> tuple[int, ...]:
    """``"1000,4000"`` -> ``(1000, 4000)``; increasing positive sizes."""
    try:
        sizes = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated row counts, got {value!r}") from None
    if not sizes or any(b <= a for a, b in pairwise((0, *sizes))):
        raise argparse.ArgumentTypeError(f"expected positive, increasing row counts, got {value!r}")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    """Row 7 on its own: a scratch database on the given server (or an embedded one), the table printed.
    A hop that is not flat is a figure, not a failure (as in ``python -m bench``): the exit status is 0."""
    parser = argparse.ArgumentParser(prog="bench/growth.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("IMAGINE_TEST_DATABASE_URL", ""),
                        help="a PostgreSQL server (default: IMAGINE_TEST_DATABASE_URL, else an embedded one)")
    parser.add_argument("--redis-url", default=os.environ.get("IMAGINE_TEST_REDIS_URL", ""),
                        help="a Redis, for the reaper's pass (default: IMAGINE_TEST_REDIS_URL, else an embedded one)")
    parser.add_argument("--finished", type=_sizes, default=(10_000, 100_000, 1_000_000),
                        help="finished rows, comma-separated (default: 10000,100000,1000000)")
    parser.add_argument("--queued", type=_sizes, default=(1_000, 10_000),
                        help="queued rows at each history size, comma-separated (default: 1000,10000)")
    parser.add_argument("--reps", type=int, default=15, help="timed runs of each hop; the median counts (default: 15)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps must be at least 1, got {args.reps}")

    from inference.tiny import write_tiny_model

    work = Path(tempfile.mkdtemp(prefix="imagine-bench-growth-"))
    try:
        models_file = write_tiny_model(work / "models", families=["sd15"])  # the catalog's default model
        with servers(args.database_url or None, args.redis_url or None, work) as found, \
                scratch_database(found.postgres, "growth") as url:
            figures = measure(database_url=url, redis_url=found.redis, key_prefix=f"{found.key_prefix}growth:",
                              models_file=models_file, finished_sizes=args.finished, queued_sizes=args.queued,
                              reps=args.reps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = row(figures)
    print(f"{result.hop}: {result.measured}; flat in history: {'yes' if result.met else 'no'}")
    print("\n".join(result.details))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
