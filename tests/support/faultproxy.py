"""A TCP proxy in front of a real PostgreSQL or Redis that a test can stall or take down.

The bot under test connects to the proxy instead of the server (:meth:`FaultProxy.url`); everything it
sends reaches the real server unchanged. :meth:`hold` stops moving bytes both ways (the server seems to
hang: every round trip waits, none fails), :meth:`release` lets them through again; :meth:`cut` closes
every connection and refuses new ones (the server seems stopped), :meth:`restore` accepts again on the
same port. Runs on the test's event loop, like the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["FaultProxy"]


class FaultProxy:
    def __init__(self, url: str) -> None:
        self.target_url = url
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        socket = query.get("host", "") if query.get("host", "").startswith("/") else ""
        if parts.scheme == "redis+socket":
            socket = parts.path
        self._unix = socket or None
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 0
        self._server: asyncio.Server | None = None
        self.port = 0
        self._open = asyncio.Event()
        self._open.set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        #: Bytes moved from the bot to the server, for tests that check nothing was sent.
        self.sent = 0

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self) -> str:
        """The target's URL, aimed at the proxy (a unix-socket URL becomes a TCP one)."""
        parts = urlsplit(self.target_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "host"]
        scheme = "redis" if parts.scheme == "redis+socket" else parts.scheme
        user = f"{parts.username}@" if parts.username else ""
        path = "/0" if parts.scheme == "redis+socket" else parts.path
        return urlunsplit((scheme, f"{user}127.0.0.1:{self.port}", path, urlencode(query), ""))

    # -- faults -------------------------------------------------------------------------------------------

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.release()
        await self.cut()

    # -- plumbing ----------------------------------------------------------------------------------------

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix is not None:
                server_reader, server_writer = await asyncio.open_unix_connection(self._unix)
            else:
                server_reader, server_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        pipes = [asyncio.create_task(self._pipe(client_reader, server_writer, count=True)),
                 asyncio.create_task(self._pipe(server_reader, client_writer))]
        self._pipes.update(pipes)
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for writer in (client_writer, server_writer):
            # One side hung up: close, so what it said last still reaches the other (PostgreSQL's FATAL line,
            # say, which an abort would drop, leaving "server closed the connection unexpectedly"). cut() aborts.
            writer.close()
            self._writers.discard(writer)
        self._pipes.difference_update(pipes)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool = False) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await self._open.wait()
                if count:
                    self.sent += len(data)
                writer.write(data)
                await writer.drain()
