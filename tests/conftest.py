"""Shared fixtures: real PostgreSQL, Redis, tiny models, a Celery worker process.

Services: ``IMAGINE_TEST_DATABASE_URL`` / ``IMAGINE_TEST_REDIS_URL`` name servers to use (CI sets them to the
machine's PostgreSQL and Redis); without them the tests start embedded ones, so a fresh machine needs nothing.
Each test session gets its own freshly migrated database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3 import S3Server, start_s3_server
from tests.support.services import (
    WorkerProcess,
    drop_database,
    free_port,
    make_settings,
    make_test_database,
    start_worker,
)


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("IMAGINE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    from imagine.services import EmbeddedPostgres

    # Not under pytest's basetemp: pytest prunes old base dirs, and the server runs as another system user
    # (when the tests run as root) that must be able to reach the data directory.
    root = Path(tempfile.mkdtemp(prefix="imagine-test-pg-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "data")
    yield server.url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    name = f"imagine_test_{uuid.uuid4().hex[:10]}"
    url = make_test_database(postgres_server_url, name)
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("IMAGINE_TEST_REDIS_URL")
    if given:
        yield given
        return
    from imagine.services import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "dump.rdb")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local S3-compatible server (moto's server mode) for the S3 image store."""
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models file naming a tiny random-weight model (written once per session)."""
    from inference.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def worker(database_url: str, redis_url: str, tiny_models: Path, data_dir: Path) -> Iterator[WorkerProcess]:
    """A real ``imagine worker`` (Celery, prefork, one process) serving the tiny model's queues."""
    settings = make_settings(database_url=database_url, redis_url=redis_url, models_file=tiny_models,
                             data_dir=data_dir, worker_metrics_port=free_port(), metrics_host="127.0.0.1")
    process = start_worker(settings)
    yield process
    process.stop()
