"""bench/growth.py as a script: its help, and a small run that loads the jobs table to each size asked and
reports every hop with the scans its statements use. No time is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "growth.py"
HOPS = ["submit", "claim", "queue position", "reconcile", "/info", "reaper pass"]


def run_growth(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_help_names_the_sizes() -> None:
    done = run_growth("--help")
    assert done.returncode == 0, done.stderr
    assert "--finished" in done.stdout and "--queued" in done.stdout and "--reps" in done.stdout


def test_sizes_must_grow() -> None:
    done = run_growth("--finished", "800,200")
    assert done.returncode == 2
    assert "expected positive, increasing row counts, got '800,200'" in done.stderr


def test_small_run_loads_each_size_and_reports_every_hop(tmp_path: Path, postgres_server_url: str,
                                                         redis_url: str) -> None:
    out = tmp_path / "growth.json"
    done = run_growth("--finished", "200,800", "--queued", "20,50", "--reps", "1", "--json", str(out),
                      "--database-url", postgres_server_url, "--redis-url", redis_url)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    figures = json.loads(out.read_text())
    # Each size on top of the one before: the table held exactly what each row says.
    assert [(r["finished"], r["queued"], r["rows"]) for r in figures["results"]] == [
        (200, 20, {"queued": 20, "succeeded": 200}),
        (200, 50, {"queued": 50, "succeeded": 200}),
        (800, 20, {"queued": 20, "succeeded": 800}),
        (800, 50, {"queued": 50, "succeeded": 800}),
    ]
    for result in figures["results"]:
        assert list(result["ms"]) == HOPS and all(ms > 0 for ms in result["ms"].values())
    assert list(figures["plans"]) == HOPS
    assert "Index Scan using ix_jobs_to_deliver on jobs" in figures["plans"]["reconcile"]
    assert "growth of the jobs table (history and queue): 200–800 finished" in done.stdout
    assert "query plans at 800 finished and 50 queued:" in done.stdout
