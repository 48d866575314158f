"""Delivery ordering without Discord: a progress edit that read the job before it finished never lands after its
final message, late events change nothing, and each job has one delivery at a time."""

from __future__ import annotations

import asyncio
import io
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from PIL import Image

from bot import delivery as delivery_module
from bot.delivery import Delivery
from db import jobs as jobs_db
from db.models import Job
from domain.spec import JobKind, JobState
from inference.storage import MemoryImageStore


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def _job(**changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = dict(
        id=1, user_id=42, kind=JobKind.IMAGINE.value, state=JobState.RUNNING.value, prompt="a fox", lane="fast",
        spec={}, progress_step=10, progress_total=60, error=None, gpu_ms=None, upscale_method=None,
        interaction_token="token", token_expires_at=datetime.now(UTC) + timedelta(minutes=10), message_id=500,
        channel_id=9, preview_key="jobs/1/preview-10.webp", upload_limit=None, result_key=None, delivered_state=None,
        model="tiny", queue="tiny.fast", created_at=None, finished_at=None, flagged=False,
    )
    values.update(changes)
    return SimpleNamespace(**values)


class World:
    """The job row, the image store and the message edits that reached Discord, in the order they landed."""

    def __init__(self) -> None:
        self.job = _job()
        self.store = MemoryImageStore()
        self.store.put("jobs/1/preview-10.webp", b"RIFF-preview", "image/webp")
        self.store.put("jobs/1/grid.png", _png(), "image/png")
        self.landed: list[tuple[str, list[str]]] = []
        self.progress_gate = asyncio.Event()
        self.progress_gate.set()

    async def run(self, fn: Any, /, **kwargs: Any) -> Any:
        if fn is jobs_db.mark_delivered:
            self.job.delivered_state = kwargs["state"]
            return None
        assert fn is delivery_module.load_job, fn
        job = cast(Job, SimpleNamespace(**vars(self.job)))  # a snapshot, as a row read in a session is
        return delivery_module._Loaded(job, [], None, "", None, frozenset(), ())

    async def edit_message(self, message_id: int, **kwargs: Any) -> Any:
        view = kwargs["view"]  # every edit sets the buttons: Cancel while the job runs, the result's after
        cancel = [f"job:{self.job.id}:cancel"]
        final = view is None or [item.custom_id for item in view.children] != cancel
        if not final:
            await self.progress_gate.wait()  # Discord is slow to answer this one
        names = [f.filename for f in kwargs.get("attachments", [])]
        self.landed.append(("final" if final else kwargs["content"], names))
        return SimpleNamespace(id=message_id)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World()
    monkeypatch.setattr(Delivery, "_webhook", lambda self, job: world)
    return world


def make_delivery(world: World, *, interval: float = 0.0) -> Delivery:
    services = SimpleNamespace(db=world, store=world.store, settings=SimpleNamespace(progress_interval_s=interval))
    return Delivery(SimpleNamespace(), services)  # type: ignore[arg-type]


async def test_a_progress_edit_in_flight_when_the_job_finishes_lands_before_the_final_message(world: World) -> None:
    delivery = make_delivery(world)
    world.progress_gate.clear()
    progress = asyncio.create_task(delivery.deliver(1))  # reads the running job, then waits on Discord
    await asyncio.sleep(0.05)
    world.job.state, world.job.result_key, world.job.gpu_ms = JobState.SUCCEEDED.value, "jobs/1/grid.png", 900
    final = asyncio.create_task(delivery.deliver(1))
    late = asyncio.create_task(delivery.deliver(1))  # a progress event that arrives after the final state
    await asyncio.sleep(0.05)
    assert world.landed == []  # the final delivery waits for the edit in flight
    world.progress_gate.set()
    await asyncio.gather(progress, final, late)
    assert [what for what, _ in world.landed] == ["**a fox** - <@42> (16%) (fast)", "final"]
    assert world.landed[0][1] == ["progress.webp"] and world.landed[1][1] == ["a_fox_1.png"]
    assert delivery._locks == {} and delivery._shown == {}


async def test_progress_edits_only_when_something_shown_changes(world: World) -> None:
    delivery = make_delivery(world)
    await delivery.deliver(1)
    await delivery.deliver(1)  # same text, same preview: no edit
    world.job.progress_step = 20  # new text, same preview: a text-only edit keeps the attached preview
    await delivery.deliver(1)
    world.store.put("jobs/1/preview-30.webp", b"RIFF-newer", "image/webp")
    world.job.progress_step, world.job.preview_key = 30, "jobs/1/preview-30.webp"
    await delivery.deliver(1)
    world.job.progress_step, world.job.preview_key = 40, "jobs/1/preview-40.webp"  # already deleted by the worker
    await delivery.deliver(1)
    assert [(what[-12:], files) for what, files in world.landed] == [
        ("(16%) (fast)", ["progress.webp"]),
        ("(33%) (fast)", []),
        ("(50%) (fast)", ["progress.webp"]),
        ("(66%) (fast)", []),
    ]


async def test_throttled_progress_shows_the_latest_state_when_the_interval_is_over(world: World) -> None:
    delivery = make_delivery(world, interval=0.2)
    consumers = [asyncio.create_task(delivery._consume()) for _ in range(2)]
    try:
        delivery.wake(1)
        await asyncio.sleep(0.05)
        world.job.progress_step = 30
        delivery.wake(1)  # too soon: not shown now...
        await asyncio.sleep(0.05)
        assert len(world.landed) == 1
        await asyncio.sleep(0.3)  # ...but once the interval is over
        assert [what[-12:] for what, _ in world.landed] == ["(16%) (fast)", "(50%) (fast)"]
    finally:
        for task in consumers:
            task.cancel()


async def test_one_delivery_per_job_at_a_time_however_events_interleave(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    active: dict[int, int] = {}
    most = 0
    rng = random.Random(7)

    async def slow_deliver(self: Delivery, job_id: int) -> None:
        nonlocal most
        active[job_id] = active.get(job_id, 0) + 1
        most = max(most, active[job_id])
        await asyncio.sleep(rng.random() / 100)
        active[job_id] -= 1

    monkeypatch.setattr(Delivery, "_deliver", slow_deliver)
    delivery = make_delivery(world)
    consumers = [asyncio.create_task(delivery._consume()) for _ in range(4)]
    try:
        for _ in range(300):
            delivery.wake(rng.choice([1, 2]))
            await asyncio.sleep(rng.random() / 200)
        await delivery.wait_idle()
    finally:
        for task in consumers:
            task.cancel()
    assert most == 1
    assert delivery._locks == {}
