"""The worker's step callback: progress rows and previews in the image store (WebP, one at a time, cosmetic)."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.exc import OperationalError

from inference import runner
from inference.storage import MemoryImageStore


class Recorder:
    """Stands in for ``db.jobs.record_progress``: remembers each call; ``down`` makes it fail like a lost database."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.down = False

    def __call__(self, **values: Any) -> bool:
        if self.down:
            raise OperationalError("UPDATE jobs", {}, Exception("connection refused"))
        self.calls.append({k: values[k] for k in ("step", "total", "preview_key")})
        return True


@contextlib.contextmanager
def _session() -> Iterator[Any]:
    yield SimpleNamespace(begin=contextlib.nullcontext)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(runner.jobs_db, "record_progress", recorder)
    monkeypatch.setattr(runner.jobs_db, "notify", lambda **_: None)
    monkeypatch.setattr(runner, "PROGRESS_EVERY_S", 0.0)
    return recorder


def progress(store: Any) -> runner._Progress:
    ctx = SimpleNamespace(store=store, sessions=_session, owner="host:1", job_timeout_s=900)
    return runner._Progress(ctx, 7, SimpleNamespace(cancelled=threading.Event()))  # type: ignore[arg-type]


PREVIEW = Image.new("RGB", (256, 256), (200, 60, 20))


def test_each_preview_is_a_small_webp_under_a_new_key_and_replaces_the_last(recorder: Recorder) -> None:
    store = MemoryImageStore()
    step = progress(store)
    step(1, 10, PREVIEW)
    step(2, 10, None)  # a step without a preview keeps the last one
    step(5, 10, PREVIEW)
    assert [c["preview_key"] for c in recorder.calls] == ["jobs/7/preview-1.webp", None, "jobs/7/preview-5.webp"]
    assert list(store.objects) == ["jobs/7/preview-5.webp"]  # the previous one was deleted
    data, content_type = store.objects["jobs/7/preview-5.webp"]
    assert content_type == "image/webp" and len(data) < 10_000
    with Image.open(io.BytesIO(data)) as stored:
        assert (stored.format, stored.size) == ("WEBP", (256, 256))
    step.discard()  # the job ended
    assert store.objects == {}


def test_a_preview_that_cannot_be_stored_leaves_the_progress(recorder: Recorder) -> None:
    class FullStore(MemoryImageStore):
        def put(self, key: str, data: bytes, content_type: str) -> None:
            raise OSError("No space left on device")

    step = progress(FullStore())
    step(3, 10, PREVIEW)
    assert recorder.calls == [{"step": 3, "total": 10, "preview_key": None}]


def test_while_the_database_is_away_the_row_keeps_naming_the_last_preview(recorder: Recorder) -> None:
    store = MemoryImageStore()
    step = progress(store)
    step(1, 10, PREVIEW)
    recorder.down = True
    step(2, 10, PREVIEW)  # not recorded: its preview is deleted again, the first one stays
    assert list(store.objects) == ["jobs/7/preview-1.webp"]
