"""The worker process's context (:class:`~inference.context.WorkerContext`), built once per process.

``imagine worker`` calls :func:`configure` in the parent process with plain values; each prefork child then
builds its own engine, takes its device (``inference.devices``) and loads its models lazily on first use (never
touch CUDA or a DB pool in the parent).
"""

from __future__ import annotations

import logging
import os

from db.session import make_engine, make_sessionmaker
from domain.catalog import Catalog
from inference.context import WorkerContext, owner_name
from inference.devices import claim_device, process_index
from inference.safety import SafetyConfig
from inference.storage import open_store

__all__ = ["configure", "context"]

log = logging.getLogger(__name__)


_config: tuple[Catalog, str, str, tuple[str, ...], SafetyConfig | None] | None = None
_context: WorkerContext | None = None
_context_pid: int | None = None


def configure(catalog: Catalog, database_url: str, store_url: str, *, devices: tuple[str, ...] = (),
              safety: SafetyConfig | None = None) -> None:
    """Remember what each worker process needs; cheap, safe before fork. ``devices``: one per prefork
    process (see ``inference.devices``); empty: every process uses the default device. ``safety``: the
    image safety classifier, loaded by each process on its first checked job."""
    global _config, _context
    _config = (catalog, database_url, store_url, tuple(devices), safety)
    _context = None


def context() -> WorkerContext:
    """This process's context, built on first use after fork."""
    global _context, _context_pid
    if _config is None:
        raise RuntimeError("inference.worker.configure() was not called")
    if _context is None or _context_pid != os.getpid():
        catalog, database_url, store_url, devices, safety = _config
        device = claim_device(devices, process_index())
        _context = WorkerContext(
            catalog=catalog,
            database_url=database_url,
            sessions=make_sessionmaker(make_engine(database_url, pool_size=2)),
            store=open_store(store_url),
            owner=owner_name(),
            device=device.name if device else None,
            torch_device=device.torch_device if device else None,
            safety_config=safety,
        )
        if device is not None:
            log.info("worker process %s runs its jobs on %s", os.getpid(), device.name)
        _context_pid = os.getpid()
    return _context
