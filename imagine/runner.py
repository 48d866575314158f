"""Starting and stopping the processes: the bot, the workers, and ``imagine run`` (all of it on one machine)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from imagine.checks import StartupError, check_database, check_redis
from imagine.settings import Settings

__all__ = ["require_urls", "run_all", "run_bot", "run_bot_forever", "run_bot_until_stopped", "run_worker"]

log = logging.getLogger(__name__)

def require_urls(settings: Settings, *, need_broker: bool = True) -> tuple[str, str]:
    if not settings.database_url:
        raise StartupError("DATABASE_URL is not set (or use `imagine run`, which starts an embedded PostgreSQL)")
    if need_broker and not settings.redis_url:
        raise StartupError("REDIS_URL is not set (or use `imagine run`, which starts an embedded Redis)")
    return settings.database_url, settings.redis_url


async def run_bot(settings: Settings, database_url: str, broker_url: str, **client_options: Any) -> None:
    """Run the bot and the reaper until the bot is closed (SIGINT/SIGTERM close it cleanly)."""
    from bot.client import ImagineBot
    from bot.services import BotServices
    from inference.reaper import Reaper

    services = BotServices.create(settings, database_url=database_url, broker_url=broker_url)
    bot = ImagineBot(services, **client_options)
    reaper = Reaper(services.sessions, services.celery, interval_s=settings.reaper_interval_s,
                    heartbeat_s=settings.heartbeat_s, max_attempts=settings.max_attempts)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    reaper.start()
    try:
        async with bot:
            await bot.start(settings.require_token())
    finally:
        await asyncio.to_thread(reaper.stop)


def run_bot_until_stopped(settings: Settings, database_url: str, broker_url: str) -> None:
    """:func:`run_bot`, with Discord's start-up failures turned into one line (:class:`StartupError`)."""
    import aiohttp
    import discord

    try:
        asyncio.run(run_bot(settings, database_url, broker_url))
    except discord.LoginFailure as exc:
        raise StartupError(f"Discord refused the token (check DISCORD_TOKEN): {exc}") from exc
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise StartupError(
            f"Cannot reach Discord's API at {settings.discord_api_base} (check DISCORD_API_BASE and the network): "
            f"{exc or type(exc).__name__}"
        ) from exc
    except discord.GatewayNotFound as exc:
        raise StartupError(
            f"Discord's API at {settings.discord_api_base} gave no gateway (check DISCORD_API_BASE)"
        ) from exc


def run_bot_forever(settings: Settings, database_url: str, broker_url: str) -> int:
    check_database(database_url)
    check_redis(broker_url)
    run_bot_until_stopped(settings, database_url, broker_url)
    return 0


def run_worker(settings: Settings, database_url: str, broker_url: str, *, queues: str | None = None) -> int:
    """A Celery worker: prefork, ``WORKER_CONCURRENCY`` processes (one per GPU), the queues of its models.

    Each child loads its models before it takes a job (so the load never counts against
    ``JOB_TIMEOUT_S``); a child that cannot load them stops the worker, which exits with one line
    (:class:`StartupError`) instead of retrying forever.
    """
    from celery import signals

    from domain.catalog import load_catalog
    from inference import worker
    from inference.celery_app import all_queues, create_celery
    from inference.tasks import register_tasks

    check_database(database_url)
    check_redis(broker_url)
    catalog = load_catalog(settings.models_path)
    wanted = queues or settings.worker_queues or ",".join(all_queues(catalog))
    models = worker.served_models(wanted)
    unknown = [name for name in models if name not in catalog.names]
    if unknown:
        raise StartupError(f"the worker's queues name models that {settings.models_path} lacks: {', '.join(unknown)}")
    worker.configure(settings, catalog, database_url)
    app = create_celery(settings, broker_url)
    register_tasks(app)
    refusals_r, refusals_w = os.pipe()

    def load_models(**_: Any) -> None:  # in each prefork child, before it says it is ready
        try:
            worker.preload(models)
        except Exception as exc:
            reason = f"model could not load: {type(exc).__name__}: {exc}".replace("\n", " ")[:500]
            os.write(refusals_w, reason.encode() + b"\n")
            os.kill(os.getppid(), signal.SIGTERM)
            os._exit(1)

    signals.worker_process_init.connect(load_models, weak=False)
    # SIGTERM (warm shutdown): the running job may finish within WORKER_STOP_GRACE_S, then is handed back.
    signals.worker_shutting_down.connect(
        lambda **_: worker.hand_back_after(settings.worker_stop_grace_s), weak=False
    )
    # torch and diffusers are imported here, once, so a replacement child starts in seconds (importing
    # them takes most of a minute on a busy machine); importing does not initialise CUDA, loading does.
    import inference.pipelines  # noqa: F401
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={wanted}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
        "--hostname=imagine@%h",
    ]
    try:
        app.worker_main(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        os.close(refusals_w)
        os.set_blocking(refusals_r, False)
        try:
            reason = os.read(refusals_r, 4096).decode(errors="replace").partition("\n")[0]
        except BlockingIOError:
            reason = ""
        os.close(refusals_r)
        if reason:
            raise StartupError(f"the worker refused to start: {reason} (check MODELS_FILE)")
    return 0


def run_all(settings: Settings) -> int:
    """Embedded PostgreSQL and Redis (unless URLs are set), migrations, one supervised worker, the bot."""
    from db.migrate import upgrade
    from imagine.services import EmbeddedPostgres, EmbeddedRedis, create_database
    from imagine.supervise import Supervisor

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
        # A worker that refuses to start stops everything: the bot would take jobs that never run. Until the
        # bot's loop takes SIGTERM over, it interrupts here, so the embedded services are still stopped.
        signal.signal(signal.SIGTERM, _interrupt)
        supervisor = Supervisor("worker", [sys.executable, "-m", "imagine.cli", "worker"], env=env,
                                grace_s=settings.worker_stop_grace_s,
                                on_refused=lambda _: os.kill(os.getpid(), signal.SIGTERM))
        supervisor.start()
        stack.callback(supervisor.stop)
        log.info("worker supervised; starting the bot")
        run_bot_until_stopped(settings, database_url, broker_url)
        if supervisor.refused is not None:
            raise StartupError("the worker refused to start; see its line above")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
