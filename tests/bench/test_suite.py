"""``python -m bench --quick``: every row of the table is reported, with the figures behind it. No time is
asserted: only that each row measured something (or says why it could not), and the facts that are not
times (no overspend, every no-op job done, the bot's encoding choice, the query plans)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1500)
def test_quick_run_reports_every_row(tmp_path: Path, postgres_server_url: str, redis_url: str) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out), "--database-url", postgres_server_url,
         "--redis-url", redis_url],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=1400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    report = json.loads(out.read_text())
    rows = {row["number"]: row for row in report["rows"]}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6, 7, 8]
    for number, row in rows.items():
        assert row["measured"] and not row["data"].get("error"), (number, row["measured"])
        assert f"\n{number:<2} " in done.stdout  # printed in the one table

    orchestration = rows[1]["data"]
    assert orchestration["one_at_a_time"]["jobs"] == 4 and orchestration["at_once"]["jobs"] == 3
    assert orchestration["one_at_a_time"]["pipeline_ms_total"] > 0  # the worker recorded its pipeline time
    hops = orchestration["one_at_a_time"]["hops_p50_ms"]  # the rows' times fall between sent and shown, in order
    assert set(hops) == {"bot", "queue", "worker_less_pipeline", "delivery"} and all(ms > 0 for ms in hops.values())
    ack = rows[2]["data"]
    assert (ack["jobs"], ack["members"]) == (20, 5) and ack["p50_ms"] is not None  # acknowledgements came back
    throughput = rows[3]["data"]
    assert throughput["succeeded"] == throughput["jobs"] == 40
    ledger = rows[4]["data"]
    assert ledger["ok"] and ledger["results"][0]["overspent_ms"] == 0
    encoding = rows[5]["data"]
    chosen = {c["limit"]: c for c in encoding["choices"]}
    assert chosen["10 MiB (Discord's default)"]["chose"] == "png-1"  # lossless fits: the fastest PNG level
    assert chosen["just under png-1"]["chose"] == "png-6"
    assert chosen["1 MiB"]["chose"] == "jpeg-90" and chosen["1 MiB"]["bytes"] <= 1024 * 1024
    warm = rows[6]["data"]
    assert warm["second_job_reloaded"] is False and warm["bare_pipe_s"] > 0
    growth = rows[7]["data"]
    assert [(r["finished"], r["queued"]) for r in growth["results"]] == [(1000, 100), (1000, 400), (4000, 100),
                                                                         (4000, 400)]
    assert "Index Scan using ix_jobs_to_deliver on jobs" in growth["plans"]["reconcile"]
    assert rows[8]["measured"].startswith("not measured") or rows[8]["data"]["measured"]
