"""Scale-out: two real `imagine worker` processes, each with its own models file, against one PostgreSQL, one Redis
and one S3 store; each job runs on the worker that has its model. Worker A runs two prefork processes on a stand-in
device list (`WORKER_DEVICES=cpu:0,cpu:1`), one process per device. Their /metrics show what they ran.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db
from db.models import Job
from db.session import make_engine, make_sessionmaker
from domain.spec import JobKind, JobState
from inference.celery_app import create_celery
from inference.dispatch import publish
from inference.storage import open_store
from tests.support.factories import new_job, spec
from tests.support.metrics import healthz, scrape
from tests.support.s3 import S3Server
from tests.support.services import SESSION_KEY_PREFIX, WorkerProcess, free_port, make_settings, start_worker

JOB_TIMEOUT = 300.0
#: Tiny models gain nothing from threads; three worker processes on a shared 2-core machine lose a lot.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Worker:
    process: WorkerProcess
    metrics_url: str

    def child_pids(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.process.process.pid).children(recursive=True)}

    def runs(self, job: Job) -> bool:
        assert job.owner is not None
        return int(job.owner.rpartition(":")[2]) in self.child_pids()


def models_file(folder: Path, source_models: Path, model: str) -> Path:
    """A models file naming only ``model`` of the tiny models (their weights, by absolute path), without its
    LoRAs and draft (which would name other models and files)."""
    table = tomllib.loads(source_models.read_text())["models"][model]
    lines = [f"[models.{model}]"]
    for key, value in table.items():
        if key in ("draft", "loras"):
            continue
        if isinstance(value, str) and value.startswith("./"):
            value = str(source_models.parent / value[2:])
        lines.append(f"{key} = {json.dumps(value)}")
    path = folder / f"{model}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def store_url(s3_server: S3Server) -> str:
    return s3_server.store_url(s3_server.new_bucket())


@pytest.fixture(scope="module")
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


#: Redis keys of this module's own queues: the session's shared worker also serves `tiny.*`, and must not take
#: these jobs.
BROKER_PREFIX = f"{SESSION_KEY_PREFIX}scale-out:"


@pytest.fixture(scope="module")
def celery_app(redis_url: str, database_url: str) -> Celery:
    settings = make_settings(database_url=database_url, redis_url=redis_url, broker_key_prefix=BROKER_PREFIX)
    return create_celery(redis_url, job_timeout_s=settings.job_timeout_s, broker_key_prefix=settings.broker_key_prefix)


@pytest.fixture(scope="module")
def workers(
    database_url: str, redis_url: str, tiny_models: Path, store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Worker]]:
    """``sd``: serves the model `tiny` on two processes (cpu:0, cpu:1); ``xl``: serves `tiny-xl`, one process,
    logging JSON."""
    started: dict[str, Worker] = {}
    try:
        for name, model, devices, log_format in (("sd", "tiny", "cpu:0,cpu:1", "text"), ("xl", "tiny-xl", "", "json")):
            folder = tmp_path_factory.mktemp(f"worker-{name}")
            port = free_port()
            settings = make_settings(
                database_url=database_url, redis_url=redis_url, models_file=models_file(folder, tiny_models, model),
                data_dir=folder, storage_url=store_url, worker_devices=devices, worker_metrics_port=port,
                metrics_host="127.0.0.1", log_format=log_format, broker_key_prefix=BROKER_PREFIX,
            )
            started[name] = Worker(start_worker(settings, env=ONE_THREAD), f"http://127.0.0.1:{port}")
        yield started
    finally:
        for worker in started.values():
            worker.process.stop()


def submit(sessions: sessionmaker[Session], model: str, kind: JobKind = JobKind.IMAGINE, **changes: object) -> int:
    with sessions() as session, session.begin():
        job, _ = jobs_db.submit(session=session, new=new_job(kind=kind, spec=spec(model=model, **changes)))
        return job.id


def wait_for(sessions: sessionmaker[Session], job_id: int, accept: Callable[[Job], bool]) -> Job:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        with sessions() as session:
            job = jobs_db.get(session=session, job_id=job_id)
        assert job is not None
        if accept(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck in {job.state}"
        time.sleep(0.1)


def finished(sessions: sessionmaker[Session], job_id: int) -> Job:
    return wait_for(sessions, job_id, lambda j: j.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED))


def test_each_prefork_process_takes_its_own_device(
    sessions: sessionmaker[Session], celery_app: Celery, workers: dict[str, Worker]
) -> None:
    sd = workers["sd"]
    # Two jobs at once: the worker's two processes take one each.
    ids = [submit(sessions, "tiny", steps=12, seed=seed) for seed in (1, 2)]
    for job_id in ids:
        publish(celery_app, job_id, "tiny.fast")
    jobs = [finished(sessions, job_id) for job_id in ids]

    assert [job.state for job in jobs] == [JobState.SUCCEEDED] * 2
    owners = {int(job.owner.rpartition(":")[2]) for job in jobs if job.owner}
    assert len(owners) == 2 and owners <= sd.child_pids()
    log = sd.process.output()
    devices = {f"worker process {pid} runs its jobs on cpu:{index}" in log for pid in owners for index in (0, 1)}
    assert devices == {True, False}  # each process announced one device ...
    metrics = scrape(sd.metrics_url)
    # ... and the jobs it ran are counted on that device: one each.
    assert metrics.label_values("imagine_jobs_finished_total", "device") == {"cpu:0", "cpu:1"}
    assert metrics.value("imagine_jobs_finished_total", device="cpu:0") == 1
    assert metrics.value("imagine_jobs_finished_total", device="cpu:1") == 1


def test_each_job_runs_on_the_worker_that_has_its_model(
    sessions: sessionmaker[Session], celery_app: Celery, workers: dict[str, Worker], store_url: str
) -> None:
    sd_job = submit(sessions, "tiny", seed=3)
    xl_job = submit(sessions, "tiny-xl", seed=4)
    publish(celery_app, xl_job, "tiny-xl.fast")
    publish(celery_app, sd_job, "tiny.fast")

    sd, xl = finished(sessions, sd_job), finished(sessions, xl_job)

    assert sd.state == xl.state == JobState.SUCCEEDED
    assert workers["sd"].runs(sd) and not workers["xl"].runs(sd)
    assert workers["xl"].runs(xl) and not workers["sd"].runs(xl)
    # Both wrote to the one S3 store; rows hold the keys, which anyone with the store URL can read.
    store = open_store(store_url)
    assert store.get(sd.result_key or "")[:8] == store.get(xl.result_key or "")[:8] == b"\x89PNG\r\n\x1a\n"


def test_worker_metrics_show_each_finished_job_its_wait_and_gpu_time(
    sessions: sessionmaker[Session], celery_app: Celery, workers: dict[str, Worker]
) -> None:
    job_id = submit(sessions, "tiny-xl", seed=5)
    publish(celery_app, job_id, "tiny-xl.fast")
    finished(sessions, job_id)

    with sessions() as session:
        rows = list(session.query(Job).filter(Job.state == JobState.SUCCEEDED.value, Job.model == "tiny-xl"))
    ran_here = [job for job in rows if workers["xl"].runs(job)]
    assert job_id in {job.id for job in ran_here}

    metrics = scrape(workers["xl"].metrics_url)
    labels = {"model": "tiny-xl", "lane": "fast"}
    assert metrics.value("imagine_jobs_finished_total", state="succeeded", **labels) == len(ran_here)
    assert metrics.value("imagine_job_wait_seconds_count", **labels) == len(ran_here)
    waits = sum((job.started_at - job.queued_at).total_seconds() for job in ran_here if job.started_at)
    assert metrics.value("imagine_job_wait_seconds_sum", **labels) == pytest.approx(waits, abs=1e-3)
    assert metrics.value("imagine_job_gpu_seconds_count", **labels) == len(ran_here)
    gpu_seconds = sum((job.gpu_ms or 0) for job in ran_here) / 1000
    assert gpu_seconds > 0
    assert metrics.value("imagine_job_gpu_seconds_sum", **labels) == pytest.approx(gpu_seconds)
    assert metrics.value("imagine_job_run_seconds_count", **labels) == len(ran_here)
    # The other worker never ran this model.
    assert scrape(workers["sd"].metrics_url).value("imagine_jobs_finished_total", model="tiny-xl") == 0

    # A failure is counted by its cause: a variation of an image that is no longer stored.
    failed_id = submit(sessions, "tiny-xl", JobKind.VARY, init_image="jobs/999999/0.png", strength=0.5)
    publish(celery_app, failed_id, "tiny-xl.fast")
    assert finished(sessions, failed_id).state == JobState.FAILED
    metrics = scrape(workers["xl"].metrics_url)
    assert metrics.value("imagine_job_failures_total", model="tiny-xl", cause="source_missing") == 1
    assert metrics.value("imagine_jobs_finished_total", state="failed", kind="vary", **labels) == 1

    # Its log lines are JSON objects carrying the job id.
    lines = [json.loads(line) for line in workers["xl"].process.output().splitlines() if line.startswith("{")]
    about = [line for line in lines if line["job_id"] == job_id]
    assert any(line["message"].startswith(f"job {job_id}: succeeded") for line in about)
    assert all(line["level"] in ("DEBUG", "INFO", "WARNING", "ERROR") and line["time"] for line in about)

    status, body = healthz(workers["xl"].metrics_url)
    assert (status, body) == (200, {"status": "ok", "checks": {"database": "ok", "broker": "ok"}})
