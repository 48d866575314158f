"""What a job needs from its worker process: the catalog, database sessions, the image store, the models.

Plain values only: the entry points in ``imagine/`` read the settings and pass what is needed down
(:func:`inference.worker.configure`), so nothing in ``inference/`` reads settings itself.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from domain.catalog import Catalog
from inference.storage import ImageStore

__all__ = ["WorkerContext", "owner_name"]


def owner_name() -> str:
    """How this process names itself as a job's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerContext:
    catalog: Catalog
    database_url: str
    sessions: sessionmaker[Session]
    store: ImageStore
    owner: str
    pipelines: Any = field(default=None)  # inference.pipelines.PipelineCache, created on first job

    def pipeline_cache(self) -> Any:
        if self.pipelines is None:
            from inference.pipelines import PipelineCache

            self.pipelines = PipelineCache()
        return self.pipelines
