"""The worker process's context (:class:`~inference.context.WorkerContext`), built once per process.

``imagine worker`` calls :func:`configure` in the parent process with plain values; each prefork child then
builds its own engine and loads its models lazily on first use (never touch CUDA or a DB pool in the parent).
"""

from __future__ import annotations

import os

from db.session import make_engine, make_sessionmaker
from domain.catalog import Catalog
from inference.context import WorkerContext, owner_name
from inference.storage import open_store

__all__ = ["configure", "context"]


_config: tuple[Catalog, str, str] | None = None
_context: WorkerContext | None = None
_context_pid: int | None = None


def configure(catalog: Catalog, database_url: str, store_url: str) -> None:
    """Remember what each worker process needs; cheap, safe before fork."""
    global _config, _context
    _config = (catalog, database_url, store_url)
    _context = None


def context() -> WorkerContext:
    """This process's context, built on first use after fork."""
    global _context, _context_pid
    if _config is None:
        raise RuntimeError("inference.worker.configure() was not called")
    if _context is None or _context_pid != os.getpid():
        catalog, database_url, store_url = _config
        _context = WorkerContext(
            catalog=catalog,
            database_url=database_url,
            sessions=make_sessionmaker(make_engine(database_url, pool_size=2)),
            store=open_store(store_url),
            owner=owner_name(),
        )
        _context_pid = os.getpid()
    return _context
