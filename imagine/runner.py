"""Starting and stopping the processes: the bot, the workers, and ``imagine run`` (all of it on one machine)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from imagine.checks import StartupError, check_database, check_redis
from imagine.settings import Settings

if TYPE_CHECKING:
    from domain.catalog import Catalog

__all__ = ["require_urls", "run_all", "run_bot", "run_bot_forever", "run_bot_until_stopped", "run_worker",
           "servable_queues"]

log = logging.getLogger(__name__)


def require_urls(settings: Settings, *, need_broker: bool = True) -> tuple[str, str]:
    if not settings.database_url:
        raise StartupError("DATABASE_URL is not set (or use `imagine run`, which starts an embedded PostgreSQL)")
    if need_broker and not settings.redis_url:
        raise StartupError("REDIS_URL is not set (or use `imagine run`, which starts an embedded Redis)")
    return settings.database_url, settings.redis_url


async def run_bot(settings: Settings, database_url: str, broker_url: str, **client_options: Any) -> None:
    """Run the bot and the reaper until the bot is closed (SIGINT/SIGTERM close it cleanly); ``/metrics``
    and ``/healthz`` on ``BOT_METRICS_PORT`` meanwhile."""
    from bot.client import create_bot
    from bot.services import BotServices
    from inference.reaper import Reaper

    services = BotServices.create(settings, database_url=database_url, broker_url=broker_url)
    bot = create_bot(services, **client_options)
    reaper = Reaper(services.sessions, services.celery, interval_s=settings.reaper_interval_s,
                    heartbeat_s=settings.heartbeat_s, max_attempts=settings.max_attempts)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    monitoring = serve_bot_monitoring(bot, settings.metrics_host, settings.bot_metrics_port) \
        if settings.bot_metrics_port else None
    reaper.start()
    try:
        async with bot:
            await bot.start(settings.require_token())
    finally:
        await asyncio.to_thread(reaper.stop)
        if monitoring is not None:
            monitoring.close()


def serve_bot_monitoring(bot: Any, host: str, port: int) -> Any:
    """The bot's ``/metrics`` (its own metrics and the queue depth from PostgreSQL) and ``/healthz`` (connected
    to the gateway; database reachable)."""
    from prometheus_client import REGISTRY

    from bot.metrics import QueueDepthCollector
    from imagine.monitoring import serve_monitoring

    def gateway() -> str | None:
        return None if bot.is_ready() and not bot.is_closed() else "not connected to the Discord gateway"

    checks = {"discord": gateway, "database": lambda: check_database(bot.services.database_url, timeout=2.0)}
    return serve_monitoring(host, port, collectors=[REGISTRY, QueueDepthCollector(bot.services.sessions)],
                            checks=checks)


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


def run_worker(settings: Settings, database_url: str, broker_url: str, *, queues: str | None = None,
               renderer: str = "diffusers") -> int:
    """A Celery worker: prefork, one process per ``WORKER_DEVICES`` entry (one by default), the queues of its
    models, and ``/metrics`` + ``/healthz`` on ``WORKER_METRICS_PORT``.

    Every model of those queues is checked first (:func:`inference.modelcheck.check_model`: its family and
    its files, without importing torch or loading weights); one that cannot load is reported in one line and
    its queues are not served. Each child then loads its models before it takes a job (so the load never
    counts against ``JOB_TIMEOUT_S``); a child that cannot load them stops the worker, which exits with one
    line (:class:`StartupError`) instead of retrying forever.

    ``renderer``: ``noop`` draws blank images without loading models; only ``bench/noop_worker.py`` passes
    it (see ``inference.context.RENDERERS``).
    """
    _require_worker_extra()
    # Before prometheus_client is imported, in this process and so in the children.
    metrics_dir = _multiprocess_metrics_dir() if settings.worker_metrics_port else None
    from celery import signals

    from domain.catalog import load_catalog
    from inference import worker
    from inference.celery_app import all_queues, create_celery
    from inference.safety import SafetyConfig
    from inference.tasks import register_tasks

    check_database(database_url)
    check_redis(broker_url)
    catalog = load_catalog(settings.models_path)
    wanted = servable_queues(catalog, (queues or settings.worker_queues or ",".join(all_queues(catalog))).split(","))
    models = [preset.name for preset in map(catalog.find, worker.served_models(",".join(wanted))) if preset]
    devices = settings.worker_device_list
    safety = None
    if settings.image_safety_model:  # checked by each process when it loads it, on its first checked job
        safety = SafetyConfig(settings.image_safety_model, settings.unsafe_labels, settings.image_safety_threshold)
    worker.configure(catalog, database_url, settings.image_store_url, devices=devices, safety=safety,
                     heartbeat_s=settings.heartbeat_s, max_attempts=settings.max_attempts,
                     job_timeout_s=settings.job_timeout_s, renderer=renderer)
    app = create_celery(broker_url, job_timeout_s=settings.job_timeout_s,
                        model_load_timeout_s=settings.model_load_timeout_s,
                        broker_key_prefix=settings.broker_key_prefix)
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
        f"--concurrency={max(1, len(devices))}",
        f"--queues={','.join(wanted)}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
        # Unique per worker process, so several workers on one host never share a node name (or its pidbox).
        f"--hostname=imagine-{os.getpid()}@%h",
    ]
    monitoring = _serve_worker_monitoring(settings, database_url, broker_url) if settings.worker_metrics_port else None
    try:
        app.worker_main(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        if monitoring is not None:
            monitoring.close()
        if metrics_dir is not None:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)
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


def servable_queues(catalog: Catalog, queues: list[str]) -> list[str]:
    """``queues`` less those of models that cannot load (each reported in one line). Queues that name no
    model (``<model>.<lane>``) are kept as they are. Raises :class:`StartupError` when none is left."""
    from inference.modelcheck import check_model  # reads files only: quick, and safe in the parent

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


def _require_worker_extra() -> None:
    import importlib.util

    missing = [name for name in ("torch", "diffusers") if importlib.util.find_spec(name) is None]
    if missing:
        raise StartupError(
            f"`imagine worker` needs {' and '.join(missing)}: install the worker extra"
            " (pip install 'imagine-bot[worker]') or use the worker image (docker/worker.Dockerfile)"
        )


def _multiprocess_metrics_dir() -> str | None:
    """Point prometheus-client's multiprocess mode at an empty folder: each prefork child writes its samples
    there, the parent's ``/metrics`` sums them. A folder given in ``PROMETHEUS_MULTIPROC_DIR`` is emptied
    (samples of a previous run would be counted again); else a temporary one is made, returned to be removed
    at exit."""
    import shutil
    import tempfile
    from pathlib import Path

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if "prometheus_client" in sys.modules and not given:
        raise RuntimeError("prometheus_client was imported before its multiprocess folder was set")
    if given:
        folder = Path(given)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="imagine-metrics-")
    return os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _serve_worker_monitoring(settings: Settings, database_url: str, broker_url: str) -> Any:
    from prometheus_client.multiprocess import MultiProcessCollector

    from imagine.monitoring import serve_monitoring

    checks = {
        "database": lambda: check_database(database_url, timeout=2.0),
        "broker": lambda: check_redis(broker_url, timeout=2.0),
    }
    return serve_monitoring(settings.metrics_host, settings.worker_metrics_port,
                            collectors=[MultiProcessCollector(None)], checks=checks)


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
