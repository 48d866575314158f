"""Helpers behind the service fixtures: test databases, settings, and a worker subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagine.services import create_database
from imagine.settings import Settings

if TYPE_CHECKING:
    from tests.fakediscord import FakeDiscord

REPO = Path(__file__).resolve().parents[2]


#: Every Redis key of this test session starts with this, so test sessions sharing a Redis never see each
#: other's jobs.
SESSION_KEY_PREFIX = f"imagine-test-{uuid.uuid4().hex[:8]}:"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a subprocess will start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(**values: Any) -> Settings:
    """Settings for tests: nothing read from the environment or .env but what is given here."""
    defaults: dict[str, Any] = {
        "broker_key_prefix": SESSION_KEY_PREFIX,
        "discord_token": "test-bot-token",
        "progress_interval_s": 0.0,
        "reaper_interval_s": 3600.0,
        "log_level": "INFO",
        "command_burst": 0,  # tests that are about the rate limit set their own
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


@dataclass
class WorkerProcess:
    """A running ``imagine worker``; its output is kept for assertions and failure reports."""

    process: subprocess.Popen[str]
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=2000))
    ready: threading.Event = field(default_factory=threading.Event)

    log_path: Path | None = None
    #: Where its /metrics and /healthz are served (None when WORKER_METRICS_PORT is 0).
    metrics_url: str | None = None

    def _pump(self) -> None:
        assert self.process.stdout is not None
        log = self.log_path.open("a") if self.log_path else None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if log:
                log.write(line)
                log.flush()
            if " ready." in line:
                self.ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def kill_child(self) -> None:
        """SIGKILL the prefork child that runs jobs (as when a GPU process dies); the parent restarts it."""
        import psutil

        for child in psutil.Process(self.process.pid).children(recursive=True):
            child.kill()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Freeze the processes that run jobs (SIGSTOP) until the block ends (SIGCONT): the job running stays
        running, however long the test takes, and no other job starts meanwhile."""
        import psutil

        children = psutil.Process(self.process.pid).children(recursive=True)
        for child in children:
            child.suspend()
        try:
            yield
        finally:
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.resume()

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_worker(settings: Settings, *, timeout: float = 240.0, env: dict[str, str] | None = None,
                 command: tuple[str, ...] = ("imagine.cli", "worker")) -> WorkerProcess:
    """Start `imagine worker` and wait until it is ready; the parent imports torch and diffusers (and the
    quantization packages diffusers finds) to check its models first: tens of seconds on a loaded machine.
    ``env``: more environment variables for the worker process. ``command``: the module to run with
    ``python -m`` and its arguments (the benchmarks' no-op worker is ``bench.noop_worker``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        env={**settings_env(settings), **(env or {})},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics_url = f"http://127.0.0.1:{settings.worker_metrics_port}" if settings.worker_metrics_port else None
    worker = WorkerProcess(process, log_path=settings.data_dir / "worker.log", metrics_url=metrics_url)
    threading.Thread(target=worker._pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not worker.ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"worker did not start:\n{worker.output()}")
    return worker


@contextlib.asynccontextmanager
async def bot_process(settings: Settings, fake: FakeDiscord, log: Path, *,
                      source: Path = REPO) -> AsyncIterator[asyncio.subprocess.Process]:
    """``imagine bot`` as its own process, logged in to the fake when this yields; stopped with SIGTERM after.
    ``source``: the checkout whose code it runs (this one by default; the benchmarks compare another)."""
    sessions = len(fake.sessions)
    env = {**settings_env(settings), "PYTHONPATH": str(source)}
    with log.open("a") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "imagine.cli", "bot", cwd=source, env=env, stdout=output, stderr=output,
        )
    try:
        await fake.wait_until(lambda: len(fake.sessions) > sessions and fake.sessions[-1].alive, timeout=120,
                              what="the bot process to log in")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()
