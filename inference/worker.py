"""The worker process's context (:class:`~inference.context.WorkerContext`), built once per process.

``imagine worker`` calls :func:`configure` in the parent process with plain values; each prefork child then
builds its own engine, takes its device (``inference.devices``) and loads its models lazily on first use (never
touch CUDA or a DB pool in the parent).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from db.session import make_engine, make_sessionmaker
from domain.catalog import Catalog
from inference.context import WorkerContext, owner_name
from inference.devices import claim_device, process_index
from inference.safety import SafetyConfig
from inference.storage import open_store

__all__ = ["configure", "context", "hand_back_after", "preload", "served_models"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Config:
    catalog: Catalog
    database_url: str
    store_url: str
    devices: tuple[str, ...]
    safety: SafetyConfig | None
    heartbeat_s: float
    max_attempts: int
    job_timeout_s: int
    renderer: str


_config: _Config | None = None
_stopping: Any = None
_context: WorkerContext | None = None
_context_pid: int | None = None


def configure(catalog: Catalog, database_url: str, store_url: str, *, devices: tuple[str, ...] = (),
              safety: SafetyConfig | None = None, heartbeat_s: float = 5.0, max_attempts: int = 3,
              job_timeout_s: int = 900, renderer: str = "diffusers") -> None:
    """Remember what each worker process needs; cheap, safe before fork. ``devices``: one per prefork
    process (see ``inference.devices``); empty: every process uses the default device. ``safety``: the
    image safety classifier, loaded by each process on its first checked job. ``heartbeat_s``,
    ``max_attempts``, ``job_timeout_s`` and ``renderer`` (``noop`` only for benchmarks and tests): see
    :class:`~inference.context.WorkerContext`."""
    global _config, _context, _stopping
    import multiprocessing

    _config = _Config(catalog, database_url, store_url, tuple(devices), safety, heartbeat_s, max_attempts,
                      job_timeout_s, renderer)
    _context = None
    _stopping = multiprocessing.get_context("fork").Event()  # made before fork: the children share it


def hand_back_after(grace_s: float) -> None:
    """Called in the parent when the worker starts to stop: after ``grace_s`` its children hand their
    running jobs back instead of being killed mid-job."""
    import threading

    if _stopping is not None:
        timer = threading.Timer(grace_s, _stopping.set)
        timer.daemon = True
        timer.start()


def context() -> WorkerContext:
    """This process's context, built on first use after fork."""
    global _context, _context_pid
    if _config is None:
        raise RuntimeError("inference.worker.configure() was not called")
    if _context is None or _context_pid != os.getpid():
        config = _config
        device = claim_device(config.devices, process_index())
        _context = WorkerContext(
            catalog=config.catalog,
            database_url=config.database_url,
            sessions=make_sessionmaker(make_engine(config.database_url, pool_size=2)),
            store=open_store(config.store_url),
            owner=owner_name(),
            device=device.name if device else None,
            torch_device=device.torch_device if device else None,
            safety_config=config.safety,
            heartbeat_s=config.heartbeat_s,
            max_attempts=config.max_attempts,
            job_timeout_s=config.job_timeout_s,
            stopping=_stopping,
            renderer=config.renderer,
        )
        if device is not None:
            log.info("worker process %s runs its jobs on %s", os.getpid(), device.name)
        _context_pid = os.getpid()
    return _context


def served_models(queues: str) -> list[str]:
    """The models behind a worker's queues (``<model>.<lane>``), in order, once each."""
    names: list[str] = []
    for queue in queues.split(","):
        name = queue.strip().rpartition(".")[0]
        if name and name not in names:
            names.append(name)
    return names


def preload(model_names: list[str]) -> None:
    """Load these models into this process's pipeline cache, at the child's start, and warm the compiled
    ones at every size (:mod:`inference.pipelines.warmup`): done before the first job, so neither counts
    against a job's time limit."""
    import time

    from inference.pipelines.warmup import warm_up

    ctx = context()
    if ctx.renderer == "noop":  # draws blank images: no model to load
        return
    cache = ctx.pipeline_cache()
    for name in model_names:
        started = time.monotonic()
        preset = ctx.catalog.get(name)
        cache.text_to_image(preset)
        log.info("model %s loaded in %.1fs", name, time.monotonic() - started)
        warm_up(cache, preset)
