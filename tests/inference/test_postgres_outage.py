"""PostgreSQL restarting under a running job loses neither the job nor its result.

Uses a PostgreSQL of its own (embedded), so stopping it disturbs no other test.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from db import jobs as jobs_db
from db.migrate import upgrade
from db.session import make_engine, make_sessionmaker
from domain.catalog import load_catalog
from domain.spec import JobState
from imagine.services import EmbeddedPostgres, create_database
from inference.context import WorkerContext, owner_name
from inference.runner import run_job
from inference.storage import open_store
from tests.support.factories import new_job, spec


def test_a_job_finishes_across_a_postgres_restart(tiny_models: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = Path(tempfile.mkdtemp(prefix="imagine-outage-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "pg")
    try:
        url = create_database(server.url, "outage")
        upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        ctx = WorkerContext(catalog=load_catalog(tiny_models), database_url=url,
                            sessions=sessions, store=open_store(str(root / "images")), owner=owner_name())
        with sessions() as session, session.begin():
            job, _ = jobs_db.submit(session=session, new=new_job(spec=spec(width=64, height=64, steps=300)))

        outcome: list[JobState | None] = []
        runner = threading.Thread(target=lambda: outcome.append(run_job(ctx, job.id)))
        runner.start()
        deadline = time.monotonic() + 60
        while True:
            with sessions() as session:
                row = jobs_db.get(session=session, job_id=job.id)
                if row is not None and row.progress_step > 0:
                    break
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)

        server.stop()  # PostgreSQL goes away mid-job ...
        time.sleep(2.0)
        server = EmbeddedPostgres(root / "pg")  # ... and comes back with the same data
        runner.join(timeout=150)

        assert outcome == [JobState.SUCCEEDED]
        outage_seen = [r.message for r in caplog.records if "could not record progress" in r.message
                       or "database unreachable while finishing" in r.message]
        assert outage_seen, "the job ended before PostgreSQL went away; the test proved nothing"
        with sessions() as session:
            row = jobs_db.get(session=session, job_id=job.id)
            assert row is not None and row.state == JobState.SUCCEEDED and row.attempts == 1
            assert len(jobs_db.images_of(session=session, job_id=job.id)) == 4
        engine.dispose()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
