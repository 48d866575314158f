"""Reservations per second on one hot balance row, and whether any connection ever overspends.

16 connections (threads, each with its own connection) reserve fast time on ONE member's balance, each
reservation its own transaction, until the limit is reached:

- ``conditional``: ``db.quota.reserve``, the code every submit runs
  (``UPDATE balances SET reserved_ms = reserved_ms + x WHERE … AND used_ms + reserved_ms + x <= limit_ms``);
- ``naive``: read the balance, check in Python, write back what was read plus x (for comparison).

Both start from the same limit; the naive run gets as long as the conditional one took to fill it. The
report says how much each granted: the conditional one must grant exactly the limit and never more (the
script exits 1 otherwise).

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres .venv/bin/python bench/quota_reserve.py

It creates a scratch database on that server (migrated to head) and drops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from bench.common import Row
from db import quota
from db.models import Balance
from db.session import make_engine, make_sessionmaker


@dataclass
class Result:
    method: str
    granted: int  # reservations the callers were told they got
    seconds: float
    limit_ms: int
    amount_ms: int
    row_reserved_ms: int

    @property
    def granted_ms(self) -> int:
        return self.granted * self.amount_ms

    @property
    def per_second(self) -> float:
        return self.granted / self.seconds if self.seconds else 0.0

    @property
    def overspent_ms(self) -> int:
        return max(0, self.granted_ms - self.limit_ms)


def _conditional(session: Session, balance_id: int, amount: int) -> bool | None:
    """True: reserved; None: the balance is full."""
    return True if quota.reserve(session=session, balance_id=balance_id, amount_ms=amount) is not None else None


def _naive(session: Session, balance_id: int, amount: int) -> bool | None:
    used, reserved, limit = session.execute(
        select(Balance.used_ms, Balance.reserved_ms, Balance.limit_ms).where(Balance.id == balance_id)
    ).one()
    if used + reserved + amount > limit:
        return None
    session.execute(text("UPDATE balances SET reserved_ms = :value WHERE id = :id"),
                    {"value": reserved + amount, "id": balance_id})
    return True


def _new_balance(engine: Engine, limit_ms: int) -> int:
    user_id = int(uuid.uuid4().int % 10**15)
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(text("INSERT INTO users (id, name) VALUES (:id, 'bench')"), {"id": user_id})
        return int(session.execute(
            text("INSERT INTO balances (user_id, period_start, plan, limit_ms) "
                 "VALUES (:user, now(), 'bench', :limit) RETURNING id"),
            {"user": user_id, "limit": limit_ms},
        ).scalar_one())


def run(engine: Engine, method: str, attempt: Callable[[Session, int, int], bool | None], *, connections: int,
        limit_ms: int, amount_ms: int, max_seconds: float) -> Result:
    balance_id = _new_balance(engine, limit_ms)
    sessions = make_sessionmaker(engine)
    granted = [0] * connections
    barrier = threading.Barrier(connections + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        with sessions() as session:
            session.connection()  # connect before the clock starts
            session.commit()
            barrier.wait()
            while time.monotonic() < deadline[0]:
                with session.begin():
                    outcome = attempt(session, balance_id, amount_ms)
                if outcome is None:
                    return
                granted[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + max_seconds
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    with sessions() as session:
        reserved = session.execute(select(Balance.reserved_ms).where(Balance.id == balance_id)).scalar_one()
    return Result(method, sum(granted), seconds, limit_ms, amount_ms, int(reserved))


def measure(server_url: str, *, connections: int = 16, limit_ms: int = 15_000, amount_ms: int = 1,
            max_seconds: float = 60.0) -> dict[str, Any]:
    """Both runs on a scratch database of ``server_url`` (dropped afterwards): the figures of each, and
    ``ok`` (the conditional reservation granted exactly the limit, never more)."""
    from bench.common import scratch_database

    with scratch_database(server_url, "ledger") as url:
        engine = make_engine(url, pool_size=connections, max_overflow=0)
        try:
            conditional = run(engine, "conditional", _conditional, connections=connections, limit_ms=limit_ms,
                              amount_ms=amount_ms, max_seconds=max_seconds)
            # The naive way loses updates, so its row fills slowly: give it the same time, and count.
            naive = run(engine, "naive", _naive, connections=connections, limit_ms=limit_ms, amount_ms=amount_ms,
                        max_seconds=conditional.seconds)
            with engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar_one()
        finally:
            engine.dispose()
    exact = conditional.granted_ms == conditional.limit_ms or conditional.seconds >= max_seconds
    ok = not conditional.overspent_ms and conditional.row_reserved_ms == conditional.granted_ms and exact
    return {
        "postgres": version, "connections": connections, "limit_ms": limit_ms, "amount_ms": amount_ms, "ok": ok,
        "results": [{"method": r.method, "per_second": round(r.per_second, 1), "granted_ms": r.granted_ms,
                     "overspent_ms": r.overspent_ms, "row_reserved_ms": r.row_reserved_ms}
                    for r in (conditional, naive)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", ""), help="a PostgreSQL server (DATABASE_URL)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--limit-ms", type=int, default=15_000, help="the balance's limit")
    parser.add_argument("--amount-ms", type=int, default=1, help="each reservation")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="stop a run after this long")
    args = parser.parse_args()
    if not args.url:
        parser.error("give --url or set DATABASE_URL to a PostgreSQL server")

    report = measure(args.url, connections=args.connections, limit_ms=args.limit_ms, amount_ms=args.amount_ms,
                     max_seconds=args.max_seconds)
    print(f"PostgreSQL {report['postgres']}, {args.connections} connections, one balance row, limit "
          f"{args.limit_ms} ms, {args.amount_ms} ms per reservation, one transaction each")
    print(f"{'method':<12} {'reservations/s':>15} {'granted ms':>11} {'limit ms':>9} {'overspent ms':>13} "
          f"{'row reserved':>13}")
    for r in report["results"]:
        print(f"{r['method']:<12} {r['per_second']:>15,.0f} {r['granted_ms']:>11,} {args.limit_ms:>9,} "
              f"{r['overspent_ms']:>13,} {r['row_reserved_ms']:>13,}")
    if not report["ok"]:
        print("FAIL: the conditional reservation overspent, or stopped short of the limit", file=sys.stderr)
        return 1
    return 0


def row(figures: dict[str, Any]) -> Row:
    """Row 4 of ``python -m bench``."""
    conditional, naive = figures["results"]
    measured = (f"{conditional['per_second']:,.0f} reservations/s, {figures['connections']} connections, one row; "
                f"overspent {conditional['overspent_ms']} ms (naive read-then-write: {naive['overspent_ms']:,} ms "
                f"over)")
    return Row(4, "ledger: conditional reservation on one hot row", measured, "zero overspend",
               bool(figures["ok"]), figures)


if __name__ == "__main__":
    sys.exit(main())
