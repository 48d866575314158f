"""The image safety classifier in the worker: a tiny random-weight transformers model, loaded from its folder,
runs on each job's images after rendering; the server's and channel's policy decides what a flag does.

Jobs are submitted with their quota (real PostgreSQL) and run in this process by the real runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db
from db import moderation as moderation_db
from db import plans as plans_db
from db.models import LedgerEntry, ModerationEvent
from db.plans import Requester
from db.session import make_engine, make_sessionmaker
from db.submission import submit_jobs
from domain.catalog import load_catalog
from domain.moderation import ImageAction
from domain.plans import load_plans
from domain.spec import JobState
from inference.context import WorkerContext, owner_name
from inference.runner import BLOCKED, run_job
from inference.safety import SafetyConfig
from inference.storage import open_store
from tests.support.factories import new_job, next_id, spec
from tests.support.safety import UNSAFE, write_safety_model
from tests.support.services import make_settings


@pytest.fixture(scope="module")
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def safety_models(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    root = tmp_path_factory.mktemp("safety")
    return {flags: write_safety_model(root / ("flags" if flags else "passes"), flags=flags) for flags in (True, False)}


def worker_context(sessions: sessionmaker[Session], database_url: str, tiny_models: Path, data_dir: Path,
                   model: Path) -> WorkerContext:
    safety = SafetyConfig(str(model), frozenset({UNSAFE}), 0.5)
    return WorkerContext(catalog=load_catalog(tiny_models), database_url=database_url, sessions=sessions,
                         store=open_store(str(data_dir / "images")), owner=owner_name(), torch_device="cpu",
                         safety_config=safety)


def submit(sessions: sessionmaker[Session], *, policy: ImageAction | None, age_restricted: bool = False) -> int:
    """One tiny job in a new server whose ordinary channels have ``policy``, reserved on the default plan."""
    guild, channel, user = next_id(), next_id(), next_id()
    book = load_plans(make_settings().plans_path)
    with sessions() as session, session.begin():
        if policy is not None:
            moderation_db.set_image_policy(session=session, guild_id=guild, scope="server", channel_id=None,
                                           action=policy, by=None)
        account = plans_db.load_account(session=session, requester=Requester(user, guild_id=guild), book=book,
                                        now=datetime.now(UTC))
        new = new_job(user, spec=spec(steps=2), guild_id=guild, channel_id=channel, age_restricted=age_restricted)
        [(job, _, _)] = submit_jobs(session=session, new_jobs=[new], resolved=account.resolved, estimates=[500])
        return job.id


def outcome(sessions: sessionmaker[Session], job_id: int) -> tuple[object, ...]:
    with sessions() as session:
        job = jobs_db.get(session=session, job_id=job_id)
        assert job is not None
        images = jobs_db.images_of(session=session, job_id=job_id)
        ledger = sorted(session.execute(select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id)).scalars())
        events = list(session.execute(select(ModerationEvent.kind).where(ModerationEvent.job_id == job_id)).scalars())
        return job.state, job.error, job.flagged, len(images), ledger, job.charged_ms, events


def test_flagged_images_where_the_policy_blocks_them_are_not_stored_and_not_charged(
    sessions: sessionmaker[Session], database_url: str, tiny_models: Path, data_dir: Path,
    safety_models: dict[bool, Path],
) -> None:
    ctx = worker_context(sessions, database_url, tiny_models, data_dir, safety_models[True])
    job_id = submit(sessions, policy=None)  # no policy: flagged images are blocked in ordinary channels
    assert run_job(ctx, job_id) is JobState.FAILED
    assert outcome(sessions, job_id) == (
        "failed", BLOCKED, False, 0, ["refund", "reserve"], 0, ["image_blocked"])
    assert not (data_dir / "images" / "jobs" / str(job_id)).exists()  # nothing of it was stored


def test_flagged_images_are_sent_as_spoilers_where_the_policy_says_so(
    sessions: sessionmaker[Session], database_url: str, tiny_models: Path, data_dir: Path,
    safety_models: dict[bool, Path],
) -> None:
    ctx = worker_context(sessions, database_url, tiny_models, data_dir, safety_models[True])
    for job_id in (submit(sessions, policy=ImageAction.SPOILER), submit(sessions, policy=None, age_restricted=True)):
        assert run_job(ctx, job_id) is JobState.SUCCEEDED
        state, error, flagged, images, ledger, _, events = outcome(sessions, job_id)
        assert (state, error, flagged, images, ledger, events) == (
            "succeeded", None, True, 4, ["reserve", "settle"], ["image_spoiler"])


def test_images_are_not_flagged_where_allowed_or_when_the_classifier_passes_them(
    sessions: sessionmaker[Session], database_url: str, tiny_models: Path, data_dir: Path,
    safety_models: dict[bool, Path],
) -> None:
    flagging = worker_context(sessions, database_url, tiny_models, data_dir, safety_models[True])
    allowed = submit(sessions, policy=ImageAction.ALLOW)
    assert run_job(flagging, allowed) is JobState.SUCCEEDED
    assert outcome(sessions, allowed)[:4] == ("succeeded", None, False, 4)
    assert flagging.safety is None  # an allowed job does not even load the classifier

    passing = worker_context(sessions, database_url, tiny_models, data_dir, safety_models[False])
    checked = submit(sessions, policy=ImageAction.BLOCK)
    assert run_job(passing, checked) is JobState.SUCCEEDED
    assert outcome(sessions, checked)[:4] + outcome(sessions, checked)[6:] == ("succeeded", None, False, 4, [])
    assert passing.safety is not None
