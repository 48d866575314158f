"""Row 8: the GPU, when CUDA is available: ``bench/render_grid.py`` (its own report, kept beside the table);
otherwise "not measured"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import Row

__all__ = ["measure", "row"]

SCRIPT = Path(__file__).with_name("render_grid.py")


def cuda_available() -> bool:
    """Asked in a subprocess: this process must not initialise CUDA (the worker rows fork)."""
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True)
    return probe.stdout.strip() == "True"


def measure(*, report: Path, budget_s: float = 480.0) -> dict[str, Any]:
    if not cuda_available():
        return {"measured": False, "reason": "no CUDA device on this machine"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--json", str(report), "--budget-s", str(budget_s)],
                          capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    return {"measured": True, "returncode": done.returncode, "report": str(report), "render_grid": figures,
            "stdout": done.stdout[-4000:]}


def row(figures: dict[str, Any]) -> Row:
    if not figures["measured"]:
        return Row(8, "GPU (bench/render_grid.py)", f"not measured ({figures['reason']})", "see docs/benchmarks.md",
                   None, figures)
    report = figures["render_grid"]
    parts = [f"{m['name']} {v['name']} {v['images_per_s']:.2f} img/s"
             for m in report.get("models", []) for v in m.get("variants", []) if v.get("images_per_s")]
    return Row(8, f"GPU (bench/render_grid.py, {report.get('device', '?')})", "; ".join(parts) or "no figures",
               "see docs/benchmarks.md", None, figures, figures["stdout"].splitlines())
