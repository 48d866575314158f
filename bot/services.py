"""What the bot's features share: settings, the catalog, the database, the Celery app and the image store."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from bot.ratelimit import RateLimiter
from db.session import AsyncDatabase, make_engine, make_sessionmaker
from domain.catalog import Catalog, load_catalog
from domain.plans import PlanBook, load_plans
from imagine.settings import Settings
from inference.celery_app import create_celery
from inference.storage import ImageStore, open_store

__all__ = ["BotServices"]


@dataclass
class BotServices:
    settings: Settings
    catalog: Catalog
    #: The plans file: plans, the default plan, the cost models.
    plans: PlanBook
    db: AsyncDatabase
    #: Synchronous sessions for work done in threads (the reaper).
    sessions: sessionmaker[Session]
    celery: Celery
    store: ImageStore
    database_url: str
    #: The per-member command rate limit, in the broker's Redis (shared by every bot process).
    limiter: RateLimiter

    @classmethod
    def create(cls, settings: Settings, *, database_url: str, broker_url: str) -> BotServices:
        return cls(
            settings=settings,
            catalog=load_catalog(settings.models_path),
            plans=load_plans(settings.plans_path),
            db=AsyncDatabase(database_url),
            sessions=make_sessionmaker(make_engine(database_url, pool_size=2)),
            celery=create_celery(
                broker_url, job_timeout_s=settings.job_timeout_s, broker_key_prefix=settings.broker_key_prefix
            ),
            store=open_store(settings.image_store_url),
            database_url=database_url,
            limiter=RateLimiter(broker_url, prefix=settings.broker_key_prefix, burst=settings.command_burst,
                                per_minute=settings.command_rate_per_minute),
        )

    async def close(self) -> None:
        await self.limiter.close()
        await self.db.dispose()
        self.sessions.kw["bind"].dispose()
