"""Engines and sessions. One driver (psycopg 3) for both the async bot and the sync worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
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
    """The bot's handle: runs the synchronous ``db.*`` functions in one transaction each.

    ``await db.run(jobs_db.get, job_id=1)`` opens a session, calls ``jobs_db.get(session=..., job_id=1)``
    through :meth:`AsyncSession.run_sync`, and commits.
    """

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(sqlalchemy_url(url), pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def run(self, fn: Callable[..., T], /, **kwargs: object) -> T:
        async with self.sessions() as session, session.begin():
            return await session.run_sync(lambda s: fn(session=s, **kwargs))

    async def dispose(self) -> None:
        await self.engine.dispose()

