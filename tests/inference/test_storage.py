"""The image store: the local folder and the S3 backend pass the same tests (S3 against moto's server mode);
plus local atomic writes, S3 layout, the memory fake."""

from __future__ import annotations

import sys
from pathlib import Path

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
from tests.support.s3 import S3Server

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


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ImageStore:
    """Each backend behind the one interface: these tests run against both (S3: the local moto server)."""
    if request.param == "local":
        return open_store(str(tmp_path / "images"))
    s3 = request.getfixturevalue("s3_server")
    return open_store(s3.store_url(s3.new_bucket(), prefix="imagine"))


def test_round_trip(store: ImageStore) -> None:
    assert isinstance(store, ImageStore)
    assert not store.exists("jobs/42/grid.png")
    store.put("jobs/42/grid.png", b"first", "image/png")
    store.put("jobs/42/grid.png", b"second", "image/png")
    assert store.get("jobs/42/grid.png") == b"second"
    assert store.exists("jobs/42/grid.png")
    assert store.url_for("jobs/42/grid.png") is None  # no public URL configured: the bot uploads the bytes
    with pytest.raises(ImageNotFoundError, match=r"jobs/42/u1\.png"):
        store.get("jobs/42/u1.png")
    store.delete("jobs/42/grid.png")
    store.delete("jobs/42/grid.png")  # deleting what is not there is fine
    assert not store.exists("jobs/42/grid.png")
    with pytest.raises(ValueError):
        store.delete("../grid.png")


def test_keys_are_independent(store: ImageStore) -> None:
    png = bytes(range(256)) * 64  # binary, 16 KiB
    store.put("jobs/1/0.png", png, "image/png")
    store.put("jobs/1/preview-3.webp", b"webp", "image/webp")
    store.put("jobs/10/0.png", b"other", "image/png")
    assert store.get("jobs/1/0.png") == png and store.get("jobs/10/0.png") == b"other"
    store.delete("jobs/1/preview-3.webp")
    assert store.exists("jobs/1/0.png") and not store.exists("jobs/1/preview-3.webp")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_cannot_leave_the_store(store: ImageStore, key: str) -> None:
    with pytest.raises(ValueError, match="image key"):
        store.put(key, b"x", "image/png")
    for method in (store.get, store.exists, store.delete, store.url_for):
        with pytest.raises(ValueError):
            method(key)
    with pytest.raises(ValueError):
        check_key(key)


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path / "images")
    store.put("jobs/42/grid.png", b"first", "image/png")
    store.put("jobs/42/grid.png", b"second", "image/png")
    assert [p.name for p in (tmp_path / "images/jobs/42").iterdir()] == ["grid.png"]
    with pytest.raises(ValueError):
        store.put("../x.png", b"x", "image/png")
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == [
        "images/jobs/42/grid.png"
    ]


def test_s3_objects_live_under_the_prefix_with_their_content_type(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = open_store(s3_server.store_url(bucket, prefix="imagine/images") + "&public_url=https://cdn.example/")
    assert isinstance(store, S3ImageStore)
    store.put("jobs/1/grid.png", b"png", "image/png")
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["imagine/images/jobs/1/grid.png"]
    head = s3_server.client().head_object(Bucket=bucket, Key="imagine/images/jobs/1/grid.png")
    assert head["ContentType"] == "image/png"
    assert store.url_for("jobs/1/grid.png") == "https://cdn.example/imagine/images/jobs/1/grid.png"


def test_s3_errors_other_than_not_found_are_raised(s3_server: S3Server) -> None:
    store = open_store(s3_server.store_url("no-such-bucket"))
    with pytest.raises(Exception, match="NoSuchBucket"):
        store.put("jobs/1/grid.png", b"png", "image/png")


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


def test_memory_store() -> None:
    store = MemoryImageStore(public_url="https://img.example")
    store.put("a/b.png", b"1", "image/png")
    assert store.get("a/b.png") == b"1" and store.url_for("a/b.png") == "https://img.example/a/b.png"
    with pytest.raises(ImageNotFoundError):
        store.get("a/c.png")
    store.delete("a/b.png")
    store.delete("a/c.png")
    assert not store.exists("a/b.png")
