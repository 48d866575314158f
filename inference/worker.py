"""What a worker process holds: settings, database sessions, the image store and the loaded pipelines.

``imagine worker`` calls :func:`configure` in the parent process; each prefork child then builds its own
engine, takes its device (``inference.devices``) and loads its models lazily on first use (never touch CUDA or
a DB pool in the parent).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_sessionmaker
from domain.catalog import Catalog
from imagine.settings import Settings
from inference.devices import claim_device, process_index
from inference.runner import owner_name
from inference.storage import ImageStore, open_store

__all__ = ["WorkerContext", "configure", "context"]

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    catalog: Catalog
    database_url: str
    sessions: sessionmaker[Session]
    store: ImageStore
    owner: str
    #: This process's device as configured (``cuda:1``), or None for the default device (first GPU, or CPU).
    device: str | None = None
    #: What torch is given for it (``cuda:0`` once CUDA_VISIBLE_DEVICES is narrowed to that GPU).
    torch_device: str | None = None
    pipelines: Any = field(default=None)  # inference.pipelines.PipelineCache, created on first job

    def pipeline_cache(self) -> Any:
        if self.pipelines is None:
            from inference.pipelines import PipelineCache

            self.pipelines = PipelineCache(device=self.torch_device)
        return self.pipelines

    @property
    def device_label(self) -> str:
        """The device for logs and metrics: the configured name, else the one the pipelines chose."""
        if self.device is not None:
            return self.device
        return str(self.pipelines.device) if self.pipelines is not None else "default"


_config: tuple[Settings, Catalog, str, tuple[str, ...]] | None = None
_context: WorkerContext | None = None
_context_pid: int | None = None


def configure(settings: Settings, catalog: Catalog, database_url: str, *, devices: tuple[str, ...] = ()) -> None:
    """Remember what each worker process needs; cheap, safe before fork. ``devices``: one per prefork
    process (see ``inference.devices``); empty: every process uses the default device."""
    global _config, _context
    _config = (settings, catalog, database_url, tuple(devices))
    _context = None


def context() -> WorkerContext:
    """This process's context, built on first use after fork."""
    global _context, _context_pid
    if _config is None:
        raise RuntimeError("inference.worker.configure() was not called")
    if _context is None or _context_pid != os.getpid():
        settings, catalog, database_url, devices = _config
        device = claim_device(devices, process_index())
        _context = WorkerContext(
            settings=settings,
            catalog=catalog,
            database_url=database_url,
            sessions=make_sessionmaker(make_engine(database_url, pool_size=2)),
            store=open_store(settings.image_store_url),
            owner=owner_name(),
            device=device.name if device else None,
            torch_device=device.torch_device if device else None,
        )
        if device is not None:
            log.info("worker process %s runs its jobs on %s", os.getpid(), device.name)
        _context_pid = os.getpid()
    return _context
