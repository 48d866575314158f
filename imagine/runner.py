"""Starting and stopping the processes: the bot, the workers, and ``imagine run`` (all of it on one machine)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from imagine.checks import StartupError, check_database, check_redis
from imagine.settings import Settings

if TYPE_CHECKING:
    from domain.catalog import Catalog

__all__ = ["require_urls", "run_all", "run_bot", "run_bot_forever", "run_worker", "servable_queues"]

log = logging.getLogger(__name__)

#: Seconds a worker gets to finish its current job on shutdown before it is killed (its job is re-queued).
WORKER_STOP_TIMEOUT_S = 30


def require_urls(settings: Settings, *, need_broker: bool = True) -> tuple[str, str]:
    if not settings.database_url:
        raise StartupError("DATABASE_URL is not set (or use `imagine run`, which starts an embedded PostgreSQL)")
    if need_broker and not settings.redis_url:
        raise StartupError("REDIS_URL is not set (or use `imagine run`, which starts an embedded Redis)")
    return settings.database_url, settings.redis_url


async def run_bot(settings: Settings, database_url: str, broker_url: str, **client_options: Any) -> None:
    """Run the bot until it is closed (SIGINT/SIGTERM close it cleanly)."""
    from bot.client import ImagineBot
    from bot.services import BotServices

    services = BotServices.create(settings, database_url=database_url, broker_url=broker_url)
    bot = ImagineBot(services, **client_options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    async with bot:
        await bot.start(settings.require_token())


def run_bot_forever(settings: Settings, database_url: str, broker_url: str) -> int:
    check_database(database_url)
    check_redis(broker_url)
    import discord

    try:
        asyncio.run(run_bot(settings, database_url, broker_url))
    except discord.LoginFailure as exc:
        raise StartupError(f"Discord refused the token: {exc}") from exc
    return 0


def run_worker(settings: Settings, database_url: str, broker_url: str, *, queues: str | None = None) -> int:
    """A Celery worker: prefork, ``WORKER_CONCURRENCY`` processes (one per GPU), the queues of its models.

    Every model of those queues is checked first (:func:`inference.pipelines.check_model`: its family and
    its files, without loading weights or touching CUDA); one that cannot load is reported in one line and
    its queues are not served.
    """
    from domain.catalog import load_catalog
    from inference import worker
    from inference.celery_app import all_queues, create_celery
    from inference.tasks import register_tasks

    check_database(database_url)
    check_redis(broker_url)
    catalog = load_catalog(settings.models_path)
    wanted = servable_queues(catalog, (queues or settings.worker_queues or ",".join(all_queues(catalog))).split(","))
    worker.configure(catalog, database_url, settings.image_store_url)
    app = create_celery(broker_url, job_timeout_s=settings.job_timeout_s, broker_key_prefix=settings.broker_key_prefix)
    register_tasks(app)
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={','.join(wanted)}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
        "--hostname=imagine@%h",
    ]
    app.worker_main(argv)
    return 0


def servable_queues(catalog: Catalog, queues: list[str]) -> list[str]:
    """``queues`` less those of models that cannot load (each reported in one line). Queues that name no
    model (``<model>.<lane>``) are kept as they are. Raises :class:`StartupError` when none is left."""
    from inference.pipelines import check_model  # torch and diffusers, but no CUDA: safe in the parent

    problems: dict[str, str | None] = {}
    kept: list[str] = []
    for queue in (q.strip() for q in queues):
        if not queue:
            continue
        preset = catalog.find(queue.rsplit(".", 1)[0]) if "." in queue else None
        if preset is not None and preset.name not in problems:
            problems[preset.name] = check_model(preset)
            if problems[preset.name]:
                log.error("model %s cannot be loaded: %s; its queues are not served", preset.name,
                          problems[preset.name])
        if preset is None or not problems[preset.name]:
            kept.append(queue)
    if not kept:
        raise StartupError("no model of this worker's queues can be loaded (see the lines above)")
    return kept


def run_all(settings: Settings) -> int:
    """Embedded PostgreSQL and Redis (unless URLs are set), migrations, one worker process, the bot."""
    from db.migrate import upgrade
    from imagine.services import EmbeddedPostgres, EmbeddedRedis, create_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = contextlib.ExitStack()
    with stack:
        database_url = settings.database_url
        if not database_url:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            stack.callback(pg.stop)
            database_url = create_database(pg.url, "imagine")
        broker_url = settings.redis_url
        if not broker_url:
            redis = EmbeddedRedis(settings.data_dir / "redis" / "dump.rdb")
            stack.callback(redis.stop)
            broker_url = redis.url
        check_database(database_url)
        check_redis(broker_url)
        upgrade(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": broker_url,
               "DATA_DIR": str(settings.data_dir)}
        worker = subprocess.Popen([sys.executable, "-m", "imagine.cli", "worker"], env=env)
        stack.callback(_stop_process, worker)
        log.info("worker started (pid %s); starting the bot", worker.pid)
        import discord

        try:
            asyncio.run(run_bot(settings, database_url, broker_url))
        except discord.LoginFailure as exc:
            raise StartupError(f"Discord refused the token: {exc}") from exc
    return 0


def _stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish the current job
    try:
        process.wait(WORKER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
