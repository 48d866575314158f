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

__all__ = ["WorkerContext", "configure", "context"]


@dataclass
class WorkerContext:
    settings: Settings
    catalog: Catalog
    database_url: str
    sessions: sessionmaker[Session]
    store: ImageStore
    owner: str
    pipelines: Any = field(default=None)  # inference.pipelines.PipelineCache, created on first job
    safety: Any = field(default=None)  # inference.safety.SafetyClassifier, loaded on first use

    def pipeline_cache(self) -> Any:
        if self.pipelines is None:
            from inference.pipelines import PipelineCache

            self.pipelines = PipelineCache()
        return self.pipelines

    def safety_classifier(self) -> Any:
        """The image safety classifier (``IMAGE_SAFETY_MODEL``), or None when none is configured."""
        if self.safety is None and self.settings.image_safety_model:
            from inference.safety import SafetyClassifier

            self.safety = SafetyClassifier(self.settings.image_safety_model,
                                           unsafe_labels=self.settings.unsafe_labels,
                                           threshold=self.settings.image_safety_threshold)
        return self.safety


_config: tuple[Settings, Catalog, str] | None = None
_context: WorkerContext | None = None
_context_pid: int | None = None


def configure(settings: Settings, catalog: Catalog, database_url: str) -> None:
    """Remember what each worker process needs; cheap, safe before fork."""
    global _config, _context
    _config = (settings, catalog, database_url)
    _context = None


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
        )
        _context_pid = os.getpid()
    return _context
