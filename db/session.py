"""Engines and sessions. One driver (psycopg 3) for both the async bot and the sync worker."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["AsyncDatabase", "libpq_url", "make_engine", "make_sessionmaker", "sqlalchemy_url"]

T = TypeVar("T")


def sqlalchemy_url(url: str) -> str:
    """Accept ``postgres://``/``postgresql://`` URLs and pin the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"DATABASE_URL {url!r} is not a PostgreSQL URL (postgresql://user@host/db)")


def libpq_url(url: str) -> str:
    """The same URL without the SQLAlchemy driver suffix, for psycopg itself."""
    return "postgresql://" + sqlalchemy_url(url).removeprefix("postgresql+psycopg://")


def make_engine(url: str, **kwargs: object) -> Engine:
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class AsyncDatabase:
    """The bot's handle: runs the synchronous ``db.*`` functions, one transaction each, in threads of its own.

    ``await db.run(jobs_db.get, job_id=1)`` opens a session in one of ``threads`` threads, calls
    ``jobs_db.get(session=..., job_id=1)`` and commits. Neither SQLAlchemy's statement building nor psycopg
    runs on the event loop (with SQLAlchemy's asyncio extension both do: under a burst of commands they held
    the bot's loop for half a second at a time, and every acknowledgement waited). At most ``threads``
    transactions run at once; the others wait their turn without holding a connection.
    """

    def __init__(self, url: str, *, threads: int = 4) -> None:
        self.engine = make_engine(url, pool_size=threads, max_overflow=0)
        self.sessions = make_sessionmaker(self.engine)
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="db")

    async def run(self, fn: Callable[..., T], /, **kwargs: object) -> T:
        call = functools.partial(self._transaction, fn, kwargs)
        context = contextvars.copy_context()  # the logging context (job ids) follows into the thread
        return await asyncio.get_running_loop().run_in_executor(self._threads, context.run, call)

    def _transaction(self, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
        with self.sessions() as session, session.begin():
            return fn(session=session, **kwargs)

    async def dispose(self) -> None:
        """Let the transactions under way finish, drop those not started, and close the connections."""
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self.engine.dispose)
