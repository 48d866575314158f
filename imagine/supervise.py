"""Keeping a child process alive: ``imagine run`` runs its worker under a :class:`Supervisor`.

A worker that dies (killed, crashed, out of memory) is started again after a backoff that doubles on
each quick death (``BACKOFF_FIRST_S`` up to ``BACKOFF_CAP_S``) and starts over once a run lasted
``HEALTHY_AFTER_S``. A worker that refuses to start (exit status 2, one line on its stderr: a model that
cannot load, a bad setting) is not restarted: that would fail the same way. :meth:`Supervisor.stop` asks
the worker to finish its job (SIGTERM, Celery's warm shutdown) and waits ``grace_s``; then SIGQUIT
(cold shutdown: the job's message goes back to the broker) and, last, SIGKILL.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["BACKOFF_CAP_S", "BACKOFF_FIRST_S", "EXIT_REFUSED", "HEALTHY_AFTER_S", "Supervisor"]

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 60.0
HEALTHY_AFTER_S = 60.0
#: The exit status of ``imagine`` for a start-up refusal (``imagine.cli.main``).
EXIT_REFUSED = 2


class Supervisor(threading.Thread):
    """Runs ``argv`` and starts it again whenever it exits, until :meth:`stop`."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None, grace_s: float = 30.0,
                 on_refused: Callable[[int], None] | None = None, output: IO[Any] | None = None) -> None:
        super().__init__(name=f"supervise-{name}", daemon=True)
        self.label, self.argv, self.env, self.grace_s = name, list(argv), env, grace_s
        self.on_refused, self.output = on_refused, output
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.refused: int | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.started_event = threading.Event()

    def run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    break
                self.process = subprocess.Popen(self.argv, env=self.env, stdout=self.output,
                                                stderr=subprocess.STDOUT if self.output is not None else None)
                self.starts += 1
            began = time.monotonic()
            log.info("%s started (pid %s)", self.label, self.process.pid)
            self.started_event.set()
            code = self.process.wait()
            if self._stopping.is_set():
                break
            if code == EXIT_REFUSED:
                self.refused = code
                log.error("%s refused to start (see the line above); not restarting it", self.label)
                if self.on_refused is not None:
                    self.on_refused(code)
                break
            if time.monotonic() - began >= HEALTHY_AFTER_S:
                backoff = BACKOFF_FIRST_S
            log.warning("%s exited with status %s; starting it again in %.0fs", self.label, code, backoff)
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_CAP_S)

    def stop(self) -> None:
        """Stop supervising and stop the process: warm, then cold, then killed."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            # The worker hands its job back itself at grace_s (WORKER_STOP_GRACE_S); SIGQUIT only if it hangs.
            steps = ((signal.SIGTERM, self.grace_s + 15.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, None))
            for sig, wait in steps:
                if sig is not signal.SIGTERM:
                    log.warning("%s still running; sending %s", self.label, sig.name)
                process.send_signal(sig)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.is_alive() and threading.current_thread() is not self:
            self.join(5.0)
