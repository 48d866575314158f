"""The acknowledgement backlog: work after an acknowledgement waits for the acknowledgements still to send."""

from __future__ import annotations

import asyncio

from bot.backlog import MAX_HOLD_S, AckBacklog


class _Response:
    def __init__(self) -> None:
        self.done = False

    def is_done(self) -> bool:
        return self.done


class _Interaction:
    """What the backlog reads of a discord.py interaction: whether its response was sent."""

    def __init__(self) -> None:
        self.response = _Response()


async def test_work_waits_until_every_interaction_received_is_answered() -> None:
    backlog = AckBacklog()
    burst = [_Interaction() for _ in range(5)]
    for interaction in burst:
        backlog.received(interaction)
    burst[0].response.done = True  # the first one is acknowledged: its work asks to go on
    work = asyncio.create_task(backlog.settled())
    for interaction in burst[1:]:
        await asyncio.sleep(0.02)
        assert not work.done(), "work went on while acknowledgements were still to send"
        interaction.response.done = True
    await asyncio.wait_for(work, timeout=1)
    assert len(backlog) == 0


async def test_an_interaction_never_answered_holds_work_back_no_longer_than_the_hold() -> None:
    backlog = AckBacklog()
    backlog.received(_Interaction())  # e.g. one whose handler failed before answering
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(backlog.settled() for _ in range(50)))  # one watcher for every waiter
    assert loop.time() - started >= MAX_HOLD_S * 0.9


async def test_no_wait_when_nothing_is_waiting_for_an_answer() -> None:
    backlog = AckBacklog()
    answered = _Interaction()
    answered.response.done = True
    backlog.received(answered)
    assert len(backlog) == 0
    await asyncio.wait_for(backlog.settled(), timeout=0.05)
