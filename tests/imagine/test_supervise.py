"""The supervisor of `imagine run`'s worker: restarts what dies, not what refuses to start, stops cleanly."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from imagine.supervise import EXIT_REFUSED, Supervisor


def _wait(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_process_that_dies_is_started_again() -> None:
    supervisor = Supervisor("crasher", [sys.executable, "-c", "import sys; sys.exit(1)"])
    supervisor.start()
    try:
        _wait(lambda: supervisor.starts >= 2)  # the first backoff is 1 s
    finally:
        supervisor.stop()
    assert not supervisor.is_alive() and supervisor.refused is None


def test_a_process_that_refuses_to_start_is_not_started_again() -> None:
    refused: list[int] = []
    supervisor = Supervisor("refuser", [sys.executable, "-c", f"import sys; sys.exit({EXIT_REFUSED})"],
                            on_refused=refused.append)
    supervisor.start()
    supervisor.join(30)
    assert not supervisor.is_alive() and supervisor.starts == 1 and refused == [EXIT_REFUSED]


def test_stop_ends_a_running_process_with_sigterm() -> None:
    supervisor = Supervisor("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], grace_s=5)
    supervisor.start()
    _wait(lambda: supervisor.process is not None)
    supervisor.stop()
    assert supervisor.process is not None and supervisor.process.returncode == -15 and supervisor.starts == 1
