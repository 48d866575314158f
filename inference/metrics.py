"""What a worker measures, as Prometheus metrics (``prometheus-client``).

Each prefork child observes the jobs it ran. Children are separate processes, so ``imagine worker`` runs
prometheus-client in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set before this module is imported):
each child writes its samples to memory-mapped files there and the worker's ``/metrics`` adds them up. That
keeps histograms exact per job, which counts rebuilt from PostgreSQL at scrape time could not be.

Labels stay few and bounded: model, lane, kind, state, device, and a short failure cause.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "JOBS_FINISHED",
    "JOB_FAILURES",
    "JOB_GPU_SECONDS",
    "JOB_RUN_SECONDS",
    "JOB_WAIT_SECONDS",
    "LEDGER_CHARGED_SECONDS",
    "observe_finished",
]

#: From a second to an hour: relax-lane waits can be long, a tiny grid takes a fraction of a second.
_SECONDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)

JOBS_FINISHED = Counter(
    "imagine_jobs_finished", "Jobs this worker finished, by final state.",
    ["model", "lane", "kind", "state", "device"],
)
JOB_WAIT_SECONDS = Histogram(
    "imagine_job_wait_seconds", "Seconds a job waited in its queue before a worker claimed it.",
    ["model", "lane"], buckets=_SECONDS,
)
JOB_RUN_SECONDS = Histogram(
    "imagine_job_run_seconds", "Seconds from claim to finish (loading, rendering, storing).",
    ["model", "lane", "kind"], buckets=_SECONDS,
)
JOB_GPU_SECONDS = Histogram(
    "imagine_job_gpu_seconds", "GPU seconds a job used, as measured by the pipeline (what plans charge).",
    ["model", "lane", "kind", "device"], buckets=_SECONDS,
)
JOB_FAILURES = Counter(
    "imagine_job_failures", "Jobs that failed, by cause (out_of_memory, source_missing, time_limit, or the error).",
    ["model", "cause"],
)
LEDGER_CHARGED_SECONDS = Counter(
    "imagine_ledger_charged_seconds", "Fast time charged to members' balances when their jobs settled.",
    ["lane"],
)


def observe_finished(
    *,
    model: str,
    lane: str,
    kind: str,
    state: str,
    device: str,
    wait_s: float | None,
    run_s: float | None,
    gpu_ms: int | None,
    charged_ms: int | None,
    cause: str | None = None,
) -> None:
    """Record one finished job (called once, after its finish committed)."""
    JOBS_FINISHED.labels(model, lane, kind, state, device).inc()
    if wait_s is not None:
        JOB_WAIT_SECONDS.labels(model, lane).observe(max(wait_s, 0.0))
    if run_s is not None:
        JOB_RUN_SECONDS.labels(model, lane, kind).observe(max(run_s, 0.0))
    if gpu_ms:
        JOB_GPU_SECONDS.labels(model, lane, kind, device).observe(gpu_ms / 1000)
    if charged_ms:
        LEDGER_CHARGED_SECONDS.labels(lane).inc(charged_ms / 1000)
    if cause is not None:
        JOB_FAILURES.labels(model, cause).inc()
