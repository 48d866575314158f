"""Start-up checks that turn an unreachable service into one clear line instead of a traceback."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["StartupError", "check_database", "check_redis", "describe_url"]


class StartupError(Exception):
    """The process cannot start; the message is one line for the operator."""


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def check_database(url: str, timeout: float = 5.0) -> None:
    import psycopg

    from db.session import libpq_url

    try:
        with psycopg.connect(libpq_url(url), connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StartupError(f"Cannot reach PostgreSQL at {describe_url(url)}: {reason}") from exc


def check_redis(url: str, timeout: float = 5.0) -> None:
    import redis

    from imagine.services import redis_client_url

    try:
        client = redis.Redis.from_url(redis_client_url(url), socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise StartupError(f"Cannot reach Redis at {describe_url(url)}: {exc}") from exc
