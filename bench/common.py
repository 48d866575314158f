"""What the benchmarks share: servers, scratch databases, settings, percentiles, submitting jobs."""

from __future__ import annotations

import contextlib
import os
import statistics
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from domain.catalog import Catalog
from domain.plans import PlanBook

__all__ = ["BENCH_PLANS", "Row", "Servers", "percentile", "scratch_database", "servers", "submit"]

#: The plans every benchmark's members are on (one roomy plan).
BENCH_PLANS = Path(__file__).with_name("plans.toml")


@dataclass
class Row:
    """One line of the table: what was measured, against which goal, and the figures behind it."""

    number: int
    hop: str
    measured: str
    goal: str = ""
    #: True / False against the goal; None where there is no goal or nothing was measured.
    met: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)
    #: More lines printed under the table (per-size figures, query plans).
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Servers:
    postgres: str  # a server URL: each benchmark makes its own scratch database there
    redis: str
    key_prefix: str  # every Redis key of this run starts with it


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` 0.5: the median; 0.99: p99, the largest below 100 values)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def servers(postgres_url: str | None, redis_url: str | None, data_dir: Path) -> Iterator[Servers]:
    """The given PostgreSQL and Redis, or embedded ones under ``data_dir`` (as ``imagine run`` starts)."""
    from imagine.services import EmbeddedPostgres, EmbeddedRedis

    with contextlib.ExitStack() as stack:
        if not postgres_url:
            root = data_dir / "postgres"
            root.mkdir(parents=True, exist_ok=True)
            data_dir.chmod(0o755)
            root.chmod(0o755)
            pg = EmbeddedPostgres(root / "data")
            stack.callback(pg.stop)
            postgres_url = pg.url
        if not redis_url:
            redis = EmbeddedRedis(data_dir / "redis" / "dump.rdb")
            stack.callback(redis.stop)
            redis_url = redis.url
        yield Servers(postgres_url, redis_url, f"imagine-bench-{uuid.uuid4().hex[:8]}:")


@contextlib.contextmanager
def scratch_database(server_url: str, label: str) -> Iterator[str]:
    """A fresh database migrated to head on ``server_url``; dropped afterwards. Yields its URL."""
    import psycopg
    from psycopg import sql

    from db.migrate import upgrade
    from db.session import libpq_url
    from imagine.services import create_database

    name = f"imagine_bench_{label}_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def submit(*, session: Session, catalog: Catalog, book: PlanBook, user_id: int, prompts: Sequence[str],
           guild_id: int | None = 1, key: str = "") -> list[tuple[int, str]]:
    """Submit one job per prompt for this member as the bot does (plan, lane, quota, ledger: ``db.submission``),
    without Discord; returns ``(job id, queue)`` of each, for ``inference.dispatch.publish_jobs`` after commit."""
    from bot.accounts import estimates
    from db import jobs as jobs_db
    from db import plans as plans_db
    from db import submission as submission_db
    from db.plans import Requester
    from domain.prompt import parse_prompt
    from domain.spec import JobKind, Lane, queue_name

    account = plans_db.load_account(session=session, requester=Requester(user_id, f"member{user_id}", guild_id),
                                    book=book, now=datetime.now(UTC))
    new_jobs = []
    for index, prompt in enumerate(prompts):
        spec = parse_prompt(prompt, catalog).specs[0]
        new_jobs.append(jobs_db.NewJob(
            user_id=user_id, user_name=f"member{user_id}", kind=JobKind.IMAGINE, spec=spec, lane=Lane.FAST,
            queue=queue_name(spec.model, Lane.FAST), idem_key=f"bench:{key or uuid.uuid4().hex}:{index}",
            prompt=prompt, guild_id=guild_id, guild_name="bench", channel_id=2,
        ))
    results = submission_db.submit_jobs(session=session, new_jobs=new_jobs, resolved=account.resolved,
                                        estimates=estimates(book, catalog, new_jobs))
    return [(job.id, job.queue) for job, created, _ in results if created]


def bench_env() -> dict[str, str]:
    """The environment of the benchmarks' subprocesses: one torch thread (tiny models gain nothing from more
    on a shared machine) and no GPU unless the GPU row asks for one."""
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
