"""Helpers behind the service fixtures: test databases, settings, and a worker subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagine.services import create_database, redis_client_url
from imagine.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def make_settings(**values: Any) -> Settings:
    """Settings for tests: nothing read from the environment or .env but what is given here."""
    defaults: dict[str, Any] = {
        "discord_token": "test-bot-token",
        "progress_interval_s": 0.0,
        "reaper_interval_s": 3600.0,
        "log_level": "INFO",
    }
    defaults.update(values)
    if "data_dir" in defaults and "storage_url" not in defaults:
        defaults["storage_url"] = str(Path(defaults["data_dir"]) / "images")
    return Settings(_env_file=None, **defaults)  # type: ignore[call-arg]


def make_test_database(server_url: str, name: str) -> str:
    from db.migrate import upgrade

    url = create_database(server_url, name)
    upgrade(url)
    return url


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    from db.session import libpq_url

    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess build the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_", "REDIS_"))}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[name.upper()] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def purge_queues(settings: Settings) -> None:
    """Drop leftover messages of earlier runs from this broker's job queues."""
    import redis

    from domain.catalog import load_catalog
    from inference.celery_app import all_queues

    client = redis.Redis.from_url(redis_client_url(settings.redis_url))
    for queue in all_queues(load_catalog(settings.models_path)):
        client.delete(queue, *[f"{queue}\x06\x16{p}" for p in range(10)])
    client.close()


@dataclass
class WorkerProcess:
    """A running ``imagine worker``; its output is kept for assertions and failure reports."""

    process: subprocess.Popen[str]
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=2000))
    ready: threading.Event = field(default_factory=threading.Event)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if " ready." in line:
                self.ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def kill_child(self) -> None:
        """SIGKILL the prefork child that runs jobs (as when a GPU process dies); the parent restarts it."""
        import psutil

        for child in psutil.Process(self.process.pid).children(recursive=True):
            child.kill()

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_worker(settings: Settings, *, timeout: float = 60.0) -> WorkerProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "imagine.cli", "worker"],
        env=settings_env(settings),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = WorkerProcess(process)
    threading.Thread(target=worker._pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not worker.ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"worker did not start:\n{worker.output()}")
    return worker
