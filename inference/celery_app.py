"""The Celery application: configuration that keeps jobs safe (see DESIGN.md, "Celery settings that matter").

Importing this module imports neither torch nor diffusers: the bot uses it to publish tasks.
"""

from __future__ import annotations

from celery import Celery

from domain.catalog import Catalog
from domain.spec import LANE_ORDER, queue_name

__all__ = ["RUN_JOB", "all_queues", "create_celery"]

#: Name of the one task: it takes a job id and nothing else.
RUN_JOB = "imagine.run_job"


def all_queues(catalog: Catalog) -> list[str]:
    """Every queue of every model, turbo before fast before relax (the order workers serve them)."""
    return [queue_name(model, lane) for lane in LANE_ORDER for model in catalog.names]


def create_celery(
    broker_url: str, *, job_timeout_s: int, model_load_timeout_s: int = 600, broker_key_prefix: str = ""
) -> Celery:
    """The Celery app on ``broker_url``. ``job_timeout_s`` is the job's own limit, kept by the runner;
    ``model_load_timeout_s`` is how long a worker child may take to load its models before it says it is
    ready; every Redis key starts with ``broker_key_prefix`` (when given)."""
    app = Celery("imagine", broker=broker_url, set_as_current=False)
    # The job's own limit is kept by the runner, which stops the pipeline at the next step past it.
    # Celery's hard limit is only the backstop for a step that never returns. No soft limit: billiard's
    # soft-limit timer fired on the wrong task after its processes were replaced (measured).
    hard_limit = job_timeout_s + max(60, job_timeout_s // 2)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=hard_limit,
        broker_transport_options={
            # A message not acked within this is redelivered; the claim makes redelivery harmless.
            "visibility_timeout": 3 * hard_limit,
            # Serve queues in the order the worker lists them: turbo, fast, relax.
            "queue_order_strategy": "priority",
            **({"global_keyprefix": broker_key_prefix} if broker_key_prefix else {}),
        },
        broker_connection_retry_on_startup=True,
        # A worker child loads its models before it says it is ready (inference.worker.preload).
        worker_proc_alive_timeout=model_load_timeout_s,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_default_queue="default",
    )
    return app
