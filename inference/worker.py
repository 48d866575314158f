"""What a worker process holds: settings, database sessions, the image store and the loaded pipelines.

``imagine worker`` calls :func:`configure` in the parent process; each prefork child then builds its own
engine and loads its models lazily on first use (never touch CUDA or a DB pool in the parent).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_sessionmaker
from domain.catalog import Catalog
from imagine.settings import Settings
from inference.runner import owner_name
from inference.storage import ImageStore, open_store

__all__ = ["WorkerContext", "configure", "context", "hand_back_after", "preload", "served_models"]


@dataclass
class WorkerContext:
    settings: Settings
    catalog: Catalog
    database_url: str
    sessions: sessionmaker[Session]
    store: ImageStore
    owner: str
    pipelines: Any = field(default=None)  # inference.pipelines.PipelineCache, created on first job
    #: Set (in the parent, shared with the children) when a stopping worker's grace period is over: the
    #: running job is handed back (``inference.runner``). None outside a worker process.
    stopping: Any = field(default=None)

    def pipeline_cache(self) -> Any:
        if self.pipelines is None:
            from inference.pipelines import PipelineCache

            self.pipelines = PipelineCache()
        return self.pipelines


_config: tuple[Settings, Catalog, str] | None = None
_stopping: Any = None
_context: WorkerContext | None = None
_context_pid: int | None = None


def configure(settings: Settings, catalog: Catalog, database_url: str) -> None:
    """Remember what each worker process needs; cheap, safe before fork."""
    global _config, _context, _stopping
    import multiprocessing

    _config = (settings, catalog, database_url)
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
        settings, catalog, database_url = _config
        _context = WorkerContext(
            settings=settings,
            catalog=catalog,
            database_url=database_url,
            sessions=make_sessionmaker(make_engine(database_url, pool_size=2)),
            store=open_store(settings.image_store_url),
            owner=owner_name(),
            stopping=_stopping,
        )
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
    """Load these models into this process's pipeline cache, at the child's start: the load is done
    before the first job, so it never counts against a job's time limit."""
    import logging
    import time

    ctx = context()
    cache = ctx.pipeline_cache()
    for name in model_names:
        started = time.monotonic()
        cache.text_to_image(ctx.catalog.get(name))
        logging.getLogger(__name__).info("model %s loaded in %.1fs", name, time.monotonic() - started)
