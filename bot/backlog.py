"""Acknowledgements before the work behind them: a burst of interactions is answered first.

Under a burst, the work after an acknowledgement (the rate limit in Redis, the member's account and the
submit in PostgreSQL, publishing) would run beside the acknowledgements still to send: on the event loop,
and in database threads that contend for the GIL with it. Each acknowledgement then waits behind other
members' work, and Discord's 3 seconds pass. So the bot notes every interaction it receives
(:meth:`AckBacklog.received`), and work after an acknowledgement first awaits :meth:`AckBacklog.settled`:
until every interaction received so far has been answered (or can no longer be: Discord's deadline passed).

The wait is bounded by :data:`MAX_HOLD_S`, so a steady stream of interactions cannot hold the work back.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

__all__ = ["MAX_HOLD_S", "AckBacklog"]

#: The longest work waits for the acknowledgements ahead of it.
MAX_HOLD_S = 0.5
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
