"""The image store: where rendered images live. Job rows hold keys, never image bytes.

    ImageStore           the interface: put / get / exists / delete / url_for
    ├── LocalImageStore  a folder on disk (``file://`` URLs and plain paths); the default
    ├── S3ImageStore     an S3-compatible bucket (AWS, MinIO, R2, ...) through boto3
    └── MemoryImageStore a dict, for tests

Build one from the configured URL with :func:`open_store`::

    store = open_store("s3://my-bucket/imagine?endpoint_url=http://minio:9000")
    store.put(f"jobs/{job_id}/grid.png", data, "image/png")

Keys are relative, slash-separated paths of letters, digits, ``.``, ``_`` and ``-`` (``jobs/42/grid.png``);
anything else, ``..`` above all, raises :class:`ValueError`, so a key can never leave the store.
This module imports neither torch nor boto3 (the bot imports it; boto3 is imported when an ``s3://`` store is opened).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlparse
from urllib.request import url2pathname

__all__ = [
    "ImageNotFoundError",
    "ImageStore",
    "LocalImageStore",
    "MemoryImageStore",
    "S3ImageStore",
    "check_key",
    "open_store",
]

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_KEY_LENGTH = 512


class ImageNotFoundError(KeyError):
    """``get`` of a key that the store does not hold."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no image stored under {key!r}")

    def __str__(self) -> str:
        return str(self.args[0])


def check_key(key: str) -> str:
    """Return ``key`` when it is a valid store key, else raise :class:`ValueError` saying why."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"image key must be 1 to {MAX_KEY_LENGTH} characters, got {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"image key {key!r} must be a relative path without empty, '.' or '..' parts")
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(
                f"image key {key!r}: part {segment!r} may only hold letters, digits, '.', '_' and '-'"
                " and must not start with '.' or '-'"
            )
    return key


@runtime_checkable
class ImageStore(Protocol):
    """Where images are kept. Every method raises :class:`ValueError` for an invalid key."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``, replacing what was there; readers never see half an image."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises :class:`ImageNotFoundError` when there are none."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an image."""

    def delete(self, key: str) -> None:
        """Remove the image under ``key``, if there is one (a missing key is not an error)."""

    def url_for(self, key: str) -> str | None:
        """A URL Discord can fetch the image from, or ``None`` when the store has no public URL (then
        upload the bytes)."""


class LocalImageStore:
    """Images as files under ``root`` (created on first write). Writes are atomic: a temporary file in
    the same folder, then a rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalImageStore({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        """The file that holds (or will hold) ``key``."""
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ImageNotFoundError(key) from None

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def url_for(self, key: str) -> str | None:
        check_key(key)
        return None


class MemoryImageStore:
    """Images in a dict: the fake for tests. ``public_url``, when given, makes :meth:`url_for` answer."""

    def __init__(self, public_url: str | None = None) -> None:
        self.public_url = public_url
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[check_key(key)] = (bytes(data), content_type)

    def get(self, key: str) -> bytes:
        try:
            return self.objects[check_key(key)][0]
        except KeyError:
            raise ImageNotFoundError(key) from None

    def exists(self, key: str) -> bool:
        return check_key(key) in self.objects

    def delete(self, key: str) -> None:
        self.objects.pop(check_key(key), None)

    def url_for(self, key: str) -> str | None:
        check_key(key)
        return f"{self.public_url.rstrip('/')}/{key}" if self.public_url else None


class S3ImageStore:
    """Images as objects in an S3-compatible bucket, under ``prefix``.

    ``client`` is a boto3 S3 client (see :func:`open_store`). ``public_url``, when the bucket (or a CDN in
    front of it) serves objects publicly, is the URL of the bucket root; :meth:`url_for` then returns
    ``public_url/prefix/key``.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, public_url: str | None = None) -> None:
        if not bucket:
            raise ValueError("S3ImageStore needs a bucket name")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_url = public_url

    def __repr__(self) -> str:
        return f"S3ImageStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_not_found(exc):
                raise ImageNotFoundError(key) from None
            raise
        return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))  # S3: no error when missing

    def url_for(self, key: str) -> str | None:
        object_key = self.object_key(key)
        return f"{self.public_url.rstrip('/')}/{object_key}" if self.public_url else None


def _is_not_found(exc: Exception) -> bool:
    """Whether ``exc`` is botocore's ``ClientError`` for a missing object (checked by its error code, so
    that this module does not import botocore)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound")


def open_store(url: str) -> ImageStore:
    """The image store for a configured URL.

    - ``/var/lib/imagine/images``, ``images`` or ``file:///var/lib/imagine/images``: :class:`LocalImageStore`
    - ``s3://bucket/prefix``: :class:`S3ImageStore`, with boto3's usual credentials (environment, config
      files, instance role). Query options: ``endpoint_url`` (MinIO, R2, ...), ``region``, and
      ``public_url`` (see :class:`S3ImageStore`).
    - ``memory://``: :class:`MemoryImageStore` (tests)

    Raises :class:`ValueError` for other schemes and :class:`RuntimeError` for ``s3://`` without boto3.
    """
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # a plain path (or C:\...)
        return LocalImageStore(Path(url).expanduser())
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"image store URL {url!r}: file URLs must not name a host")
        return LocalImageStore(Path(url2pathname(parsed.path)))
    if scheme == "memory":
        return MemoryImageStore()
    if scheme == "s3":
        options = {name: values[-1] for name, values in parse_qs(parsed.query).items()}
        return S3ImageStore(
            _s3_client(endpoint_url=options.get("endpoint_url"), region=options.get("region")),
            parsed.netloc,
            parsed.path,
            public_url=options.get("public_url"),
        )
    raise ValueError(f"image store URL {url!r}: scheme {scheme!r} is not file, s3 or memory (or a path)")


def _s3_client(*, endpoint_url: str | None, region: str | None) -> Any:
    try:
        import boto3  # imported only when an s3:// store is opened
    except ImportError:
        raise RuntimeError(
            "the image store is an s3:// URL, but boto3 is not installed: run `pip install boto3`"
            " (or set the image store to a local folder)"
        ) from None
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
