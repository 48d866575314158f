"""Acknowledgements before the work behind them, and each member's work in the order they asked.

Under a burst, the work after an acknowledgement (the rate limit in Redis, the member's account and the
submit in PostgreSQL, publishing) would run beside the acknowledgements still to send: on the event loop,
and in database threads that contend for the GIL with it. Each acknowledgement then waits behind other
members' work, and Discord's 3 seconds pass. So the bot notes every interaction it receives
(:meth:`AckBacklog.received`), and work after an acknowledgement first awaits :meth:`AckBacklog.settled`:
until every interaction received so far has been answered (or can no longer be: Discord's deadline passed).
That wait is bounded by :data:`MAX_HOLD_S`, so a steady stream of interactions cannot hold the work back.

Held work is released all at once, so on its own the hold would let a member's second command overtake their
first (both released together, racing for the last of their fast time). :class:`MemberTurns` keeps a member's
work in the order their interactions were acknowledged: each waits for that member's previous interaction's
handler to finish (at most :data:`MAX_TURN_WAIT_S`, so one stuck handler cannot hold the member up for long).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

__all__ = ["MAX_HOLD_S", "MAX_TURN_WAIT_S", "AckBacklog", "MemberTurns"]

#: The longest work waits for the acknowledgements ahead of it.
MAX_HOLD_S = 0.5
#: The longest a member's work waits for their previous interaction's handler.
MAX_TURN_WAIT_S = 10.0
#: Discord's deadline: an interaction not answered by then cannot be any more.
DEADLINE_S = 3.0
_POLL_S = 0.005


class _Response(Protocol):
    def is_done(self) -> bool: ...


class _Interaction(Protocol):
    @property
    def response(self) -> _Response: ...


class AckBacklog:
    """The interactions received and not answered yet; one watcher resolves every :meth:`settled` at once."""

    def __init__(self) -> None:
        self._waiting: dict[int, tuple[_Interaction, float]] = {}
        self._watch: asyncio.Task[None] | None = None

    def received(self, interaction: Any) -> None:
        """Note an interaction as it arrives (before any handler of it runs)."""
        if not interaction.response.is_done():
            self._waiting[id(interaction)] = (interaction, asyncio.get_running_loop().time())

    def __len__(self) -> int:
        self._prune()
        return len(self._waiting)

    async def settled(self) -> None:
        """Return once every interaction received so far is answered, or after :data:`MAX_HOLD_S`."""
        self._prune()
        if not self._waiting:
            return
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._settle(), name="ack-backlog")
        await asyncio.shield(self._watch)

    def _prune(self) -> None:
        now = asyncio.get_running_loop().time()
        for key, (interaction, at) in list(self._waiting.items()):
            if interaction.response.is_done() or now - at > DEADLINE_S:
                del self._waiting[key]

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + MAX_HOLD_S
        while loop.time() < until:
            self._prune()
            if not self._waiting:
                return
            await asyncio.sleep(_POLL_S)


class MemberTurns:
    """Each member's interaction handlers, one after another in the order they took their turn.

    :meth:`take` is called synchronously by the handler's own task (discord.py runs each interaction's
    handler in a task of its own, started in gateway order); the turn passes on when that task ends.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[asyncio.Task[Any], asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._last)

    def take(self, member_id: int) -> asyncio.Future[None] | None:
        """Queue the current task behind ``member_id``'s previous one; returns what to await for the turn."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a turn belongs to a task")
        before = self._last.get(member_id)
        if before is not None and before[0] is task:
            return None  # this handler holds the member's turn already
        mine: asyncio.Future[None] = task.get_loop().create_future()
        self._last[member_id] = (task, mine)

        def passed_on(_: object) -> None:
            if not mine.done():
                mine.set_result(None)
            if self._last.get(member_id, (None, None))[1] is mine:
                del self._last[member_id]

        task.add_done_callback(passed_on)
        return before[1] if before is not None else None

    @staticmethod
    async def wait(before: asyncio.Future[None] | None, timeout: float = MAX_TURN_WAIT_S) -> None:
        """Wait for the turn :meth:`take` returned, at most ``timeout`` seconds."""
        if before is None or before.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(before), timeout)
