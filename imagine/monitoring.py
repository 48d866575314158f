"""``/metrics`` (Prometheus) and ``/healthz`` for the bot and the workers, on a port of their own.

A small threaded WSGI server from the standard library, in a daemon thread: scrapes and health probes never
run on the bot's event loop, and a slow check (a database ping) cannot block it. ``/healthz`` runs every
check and answers ``200`` with ``{"status": "ok", ...}`` when all pass, else ``503`` naming what failed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.registry import Collector

__all__ = ["HealthCheck", "MonitoringServer", "serve_monitoring"]

log = logging.getLogger(__name__)

#: A health check: ``None`` when healthy, else a short reason (it may also raise; the error is the reason).
HealthCheck = Callable[[], str | None]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not worth a log line
        pass


class MonitoringServer:
    """The running server; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="monitoring", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _health(checks: Mapping[str, HealthCheck]) -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
        results[name] = "ok" if reason is None else reason
    return all(value == "ok" for value in results.values()), results


def _app(registry: CollectorRegistry, checks: Mapping[str, HealthCheck]) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            healthy, results = _health(checks)
            body = json.dumps({"status": "ok" if healthy else "failing", "checks": results}).encode()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"try /metrics or /healthz\n"]

    return app


def serve_monitoring(
    host: str, port: int, *, collectors: Sequence[Collector], checks: Mapping[str, HealthCheck]
) -> MonitoringServer:
    """Serve ``/metrics`` from ``collectors`` (a registry is one too) and ``/healthz`` from ``checks`` on
    ``host:port`` (0: any free port)."""
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    server = make_server(host, port, _app(registry, checks), _ThreadingServer, handler_class=_QuietHandler)
    monitoring = MonitoringServer(server)
    log.info("serving /metrics and /healthz on %s:%s", host, monitoring.port)
    return monitoring
