"""The image store: local folder (atomic writes, key checks), memory fake, S3 adapter with a fake client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from inference.storage import (
    ImageNotFoundError,
    ImageStore,
    LocalImageStore,
    MemoryImageStore,
    S3ImageStore,
    check_key,
    open_store,
)

BAD_KEYS = [
    "",
    "../x.png",
    "jobs/../../etc/passwd",
    "/abs.png",
    "jobs//a.png",
    "jobs/./a.png",
    "a\\b.png",
    ".hidden",
    "jobs/1/grid.png\n",
    "jobs/1/ü.png",
]


def test_local_round_trip(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path / "images")
    assert isinstance(store, ImageStore)
    assert not store.exists("jobs/42/grid.png")
    store.put("jobs/42/grid.png", b"first", "image/png")
    store.put("jobs/42/grid.png", b"second", "image/png")
    assert store.get("jobs/42/grid.png") == b"second"
    assert store.exists("jobs/42/grid.png")
    assert store.url_for("jobs/42/grid.png") is None
    assert [p.name for p in (tmp_path / "images/jobs/42").iterdir()] == ["grid.png"]  # no temp files left
    with pytest.raises(ImageNotFoundError, match=r"jobs/42/u1\.png"):
        store.get("jobs/42/u1.png")
    store.delete("jobs/42/grid.png")
    store.delete("jobs/42/grid.png")  # deleting what is not there is fine
    assert not store.exists("jobs/42/grid.png")
    with pytest.raises(ValueError):
        store.delete("../grid.png")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_cannot_leave_the_store(tmp_path: Path, key: str) -> None:
    store = LocalImageStore(tmp_path / "images")
    with pytest.raises(ValueError, match="image key"):
        store.put(key, b"x", "image/png")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(ValueError):
        check_key(key)
    assert not any(tmp_path.rglob("*"))


def test_open_store_by_url(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalImageStore)
    local = open_store(tmp_path.as_uri())
    assert isinstance(local, LocalImageStore) and local.root == tmp_path
    assert isinstance(open_store("memory://"), MemoryImageStore)
    with pytest.raises(ValueError, match="ftp"):
        open_store("ftp://example.com/images")


def test_s3_without_boto3_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    with pytest.raises(RuntimeError, match="pip install boto3"):
        open_store("s3://bucket/prefix")


class FakeS3:
    class NotFound(Exception):
        response: ClassVar[dict[str, Any]] = {"Error": {"Code": "404"}}

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:
        self.objects[(Bucket, Key)] = (Body, ContentType)

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise self.NotFound()
        body = self.objects[(Bucket, Key)][0]

        class Body:
            def read(self) -> bytes:
                return body

        return {"Body": Body()}

    def head_object(self, *, Bucket: str, Key: str) -> None:
        if (Bucket, Key) not in self.objects:
            raise self.NotFound()

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        self.objects.pop((Bucket, Key), None)  # S3 answers 204 for a missing key too


def test_s3_store_with_a_fake_client() -> None:
    client = FakeS3()
    store = S3ImageStore(client, "bucket", "/imagine/", public_url="https://cdn.example/")
    store.put("jobs/1/grid.png", b"png", "image/png")
    assert client.objects == {("bucket", "imagine/jobs/1/grid.png"): (b"png", "image/png")}
    assert store.get("jobs/1/grid.png") == b"png"
    assert store.exists("jobs/1/grid.png") and not store.exists("jobs/2/grid.png")
    assert store.url_for("jobs/1/grid.png") == "https://cdn.example/imagine/jobs/1/grid.png"
    with pytest.raises(ImageNotFoundError):
        store.get("jobs/2/grid.png")
    with pytest.raises(ValueError):
        store.put("../grid.png", b"", "image/png")
    store.delete("jobs/1/grid.png")
    assert client.objects == {}


def test_memory_store() -> None:
    store = MemoryImageStore(public_url="https://img.example")
    store.put("a/b.png", b"1", "image/png")
    assert store.get("a/b.png") == b"1" and store.url_for("a/b.png") == "https://img.example/a/b.png"
    with pytest.raises(ImageNotFoundError):
        store.get("a/c.png")
    store.delete("a/b.png")
    store.delete("a/c.png")
    assert not store.exists("a/b.png")
