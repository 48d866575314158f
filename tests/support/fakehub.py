"""A loopback fake of the Hugging Face Hub: serves local folders as model repos, as slowly as a test asks.

Point ``HF_ENDPOINT`` at :attr:`FakeHub.url` and ``huggingface_hub`` (so ``from_pretrained("org/name")``)
downloads from here. It answers what ``huggingface_hub`` 2.x asks a Hub while it downloads a repo:

- ``GET /api/models/<repo>`` and ``/api/models/<repo>/revision/<rev>`` (``model_info``, ``repo_info``): the
  repo's id, its commit ``sha`` and ``siblings`` (every file's ``rfilename``);
- ``GET /api/models/<repo>/tree/<rev>?recursive=True`` (``list_repo_tree``, for ``snapshot_download``): one
  page of ``{"type": "file", "path", "size", "oid"}``, no ``xetHash`` (so files come over plain HTTP);
- ``HEAD`` and ``GET /<repo>/resolve/<rev>/<path>`` (``hf_hub_download``): ``X-Repo-Commit``, ``ETag`` (the
  file's sha256, as the Hub gives for LFS files) and ``Content-Length``; the body on ``GET``.

An unknown repo answers 404 with ``X-Error-Code: RepoNotFound``, an unknown revision ``RevisionNotFound``, an
unknown file ``EntryNotFound`` (with the commit, as the Hub does). ``rev`` is ``main`` or the commit itself.
With :attr:`FakeHub.unavailable` set, everything answers 503, as a Hub that is down.

Slowness: every file body shares one pace, ``bytes_per_s`` for all downloads together (in chunks of
:data:`CHUNK`), so a repo of N bytes takes N / ``bytes_per_s`` seconds to fetch however many files
``huggingface_hub`` downloads at once, and no connection is silent for long (its read timeout is 10 s).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["CHUNK", "FakeHub", "HubRepo"]

CHUNK = 16 * 1024
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?/?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class HubRepo:
    """A local folder served as a model repo at one commit."""

    repo_id: str
    folder: Path
    sha: str
    #: repo path -> (size, sha256, git blob id)
    files: dict[str, tuple[int, str, str]]

    @classmethod
    def of(cls, repo_id: str, folder: Path) -> HubRepo:
        files: dict[str, tuple[int, str, str]] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            data = path.read_bytes()
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            files[path.relative_to(folder).as_posix()] = (len(data), hashlib.sha256(data).hexdigest(), blob)
        sha = hashlib.sha1(json.dumps(sorted(files.items())).encode()).hexdigest()  # a commit hash's form
        return cls(repo_id, folder, sha, files)

    @property
    def size(self) -> int:
        return sum(size for size, _, _ in self.files.values())


class _Pace:
    """One shared byte rate: each chunk waits for its turn on a clock that all downloads advance."""

    def __init__(self, bytes_per_s: float | None) -> None:
        self.bytes_per_s = bytes_per_s
        self._next = 0.0
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        if not self.bytes_per_s:
            return
        with self._lock:
            now = time.monotonic()
            self._next = done = max(now, self._next) + count / self.bytes_per_s
        time.sleep(done - now)  # the chunk goes out at the end of its turn


@dataclass
class FakeHub:
    """The fake Hub on 127.0.0.1 in threads of its own; :meth:`start` it, :meth:`stop` it (or ``with``)."""

    bytes_per_s: float | None = None
    repos: dict[str, HubRepo] = field(default_factory=dict)
    #: ``(method, path)`` of every request, in order (the query string left out).
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: Bytes of file bodies sent, per ``<repo>/<path>``.
    sent: Counter[str] = field(default_factory=Counter)
    #: Every file body sent: ``(<repo>/<path>, began, ended)`` (``time.monotonic()``), in the order they ended.
    bodies: list[tuple[str, float, float]] = field(default_factory=list)
    #: When set, every request is answered 503 Service Unavailable, as a Hub that is down.
    unavailable: bool = False

    def __post_init__(self) -> None:
        self._pace = _Pace(self.bytes_per_s)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, repo_id: str, folder: Path) -> HubRepo:
        """Serve ``folder`` as the model repo ``repo_id`` (``org/name``)."""
        repo = HubRepo.of(repo_id, folder)
        self.repos[repo_id] = repo
        return repo

    def set_rate(self, bytes_per_s: float | None) -> None:
        """Pace every file body from now on at ``bytes_per_s`` for all downloads together (None: at once)."""
        self.bytes_per_s = self._pace.bytes_per_s = bytes_per_s

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake Hub is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def gets(self, repo_id: str, path: str) -> int:
        """How many times the body of this file was asked for."""
        return sum(1 for method, asked in self.requests
                   if method == "GET" and re.fullmatch(rf"/{re.escape(repo_id)}/resolve/[^/]+/{re.escape(path)}",
                                                       asked))

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def _body_sent(self, key: str, count: int, began: float) -> None:
        with self._lock:
            self.sent[key] += count
            self.bodies.append((key, began, time.monotonic()))

    def download_window(self, keys: set[str]) -> float:
        """Seconds from the first of these files' bodies to the end of the last one's."""
        times = [(began, ended) for key, began, ended in self.bodies if key in keys]
        return max(ended for _, ended in times) - min(began for began, _ in times) if times else 0.0


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's httpx client expects

    def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads FakeHub.requests
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.fake._record(self.command, path)
        if self.fake.unavailable:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceUnavailable", "the Hub is down")
        elif match := _RESOLVE.match(path):
            self._file(match["repo"], match["rev"], match["path"], body=body)
        elif match := _TREE.match(path):
            self._tree(match["repo"], match["rev"], match["path"] or "")
        elif match := _API.match(path):
            self._info(match["repo"], match["rev"])
        else:
            self._error(HTTPStatus.NOT_FOUND, "RepoNotFound", f"no route {path}")

    def _repo(self, repo_id: str, rev: str | None) -> HubRepo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._error(HTTPStatus.NOT_FOUND, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
            return None
        if rev not in (None, "main", repo.sha):
            self._error(HTTPStatus.NOT_FOUND, "RevisionNotFound", f"Invalid rev id: {rev}", commit=None)
            return None
        return repo

    def _info(self, repo_id: str, rev: str | None) -> None:
        if (repo := self._repo(repo_id, rev)) is None:
            return
        self._json({
            "_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": repo.sha, "private": False, "disabled": False, "gated": False, "downloads": 0, "likes": 0,
            "library_name": "diffusers", "tags": ["diffusers"],
            "siblings": [{"rfilename": name} for name in repo.files],
        })

    def _tree(self, repo_id: str, rev: str, under: str) -> None:
        if (repo := self._repo(repo_id, rev)) is None:
            return
        prefix = f"{under.strip('/')}/" if under.strip("/") else ""
        self._json([
            {"type": "file", "path": name, "size": size, "oid": blob}
            for name, (size, _, blob) in repo.files.items() if name.startswith(prefix)
        ])

    def _file(self, repo_id: str, rev: str, name: str, *, body: bool) -> None:
        if (repo := self._repo(repo_id, rev)) is None:
            return
        if name not in repo.files:
            self._error(HTTPStatus.NOT_FOUND, "EntryNotFound", f"{name} does not exist", commit=repo.sha)
            return
        size, sha256, _ = repo.files[name]
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("ETag", f'"{sha256}"')
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not body:
            return
        began = time.monotonic()
        data = (repo.folder / name).read_bytes()
        for start in range(0, len(data), CHUNK):
            chunk = data[start:start + CHUNK]
            self.fake._pace.take(len(chunk))
            self.wfile.write(chunk)
            self.wfile.flush()
        self.fake._body_sent(f"{repo_id}/{name}", len(data), began)

    def _json(self, value: object) -> None:
        data = json.dumps(value).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has no body, or the next answer on the connection is misread
            self.wfile.write(data)

    def _error(self, status: HTTPStatus, code: str, message: str, *, commit: str | None = None) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has no body, or the next answer on the connection is misread
            self.wfile.write(data)
