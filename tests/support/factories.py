"""Factories for rows and specs used across tests."""

from __future__ import annotations

import itertools
from typing import Any

from db.jobs import NewJob
from domain.spec import JobKind, JobSpec, Lane, queue_name

_ids = itertools.count(10_000)


def next_id() -> int:
    return next(_ids)


def spec(**changes: Any) -> JobSpec:
    values: dict[str, Any] = dict(prompt="a fox in the snow", model="tiny", width=64, height=64, seed=42, steps=4,
                                  guidance_scale=7.0)
    values.update(changes)
    return JobSpec(**values)


def new_job(user_id: int | None = None, *, idem_key: str | None = None, lane: Lane = Lane.FAST,
            **changes: Any) -> NewJob:
    job_spec = changes.pop("spec", None) or spec()
    return NewJob(
        user_id=user_id if user_id is not None else next_id(),
        user_name="tester",
        kind=changes.pop("kind", JobKind.IMAGINE),
        spec=job_spec,
        lane=lane,
        queue=queue_name(job_spec.model, lane),
        idem_key=idem_key or f"test:{next_id()}",
        prompt=job_spec.prompt,
        **changes,
    )
