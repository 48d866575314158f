"""The acknowledgement backlog: work after an acknowledgement waits for the acknowledgements still to send."""

from __future__ import annotations

import asyncio

from bot.backlog import MAX_HOLD_S, AckBacklog, MemberTurns


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


async def _handler(turns: MemberTurns, member_id: int, log: list[str], name: str, work_s: float) -> None:
    """What acknowledge does for one interaction: take the turn at once, wait for it, then do the work."""
    before = turns.take(member_id)
    await asyncio.sleep(0)  # the defer
    await turns.wait(before)
    log.append(f"{name} starts")
    await asyncio.sleep(work_s)
    log.append(f"{name} ends")


async def test_a_members_second_interaction_waits_for_their_first_to_finish() -> None:
    turns, log = MemberTurns(), list[str]()
    first = asyncio.create_task(_handler(turns, 1, log, "first", 0.05))
    second = asyncio.create_task(_handler(turns, 1, log, "second", 0))
    await asyncio.wait_for(asyncio.gather(first, second), timeout=2)
    assert log == ["first starts", "first ends", "second starts", "second ends"]
    assert len(turns) == 0  # nothing kept once the member's handlers are done


async def test_other_members_do_not_wait_for_each_other() -> None:
    turns, log = MemberTurns(), list[str]()
    slow = asyncio.create_task(_handler(turns, 1, log, "alice", 0.2))
    quick = asyncio.create_task(_handler(turns, 2, log, "bob", 0))
    await asyncio.wait_for(quick, timeout=2)
    assert log == ["alice starts", "bob starts", "bob ends"]
    await slow


async def test_a_turn_passes_on_when_its_handler_fails() -> None:
    turns = MemberTurns()

    async def fails() -> None:
        turns.take(1)
        raise RuntimeError("the handler broke")

    broken = asyncio.create_task(fails())
    await asyncio.gather(broken, return_exceptions=True)
    assert len(turns) == 0  # the failed handler's turn is gone

    async def after() -> None:
        await turns.wait(turns.take(1), timeout=5)

    await asyncio.wait_for(after(), timeout=0.5)  # well inside the 5 s it would wait for a held turn


async def test_a_stuck_handler_holds_the_member_no_longer_than_the_timeout() -> None:
    turns = MemberTurns()
    stuck_started = asyncio.Event()

    async def stuck() -> None:
        turns.take(1)
        stuck_started.set()
        await asyncio.Event().wait()

    blocker = asyncio.create_task(stuck())
    await stuck_started.wait()

    async def next_one() -> None:
        await turns.wait(turns.take(1), timeout=0.05)

    await asyncio.wait_for(next_one(), timeout=1)
    blocker.cancel()


async def test_a_handler_taking_its_turn_twice_does_not_wait_for_itself() -> None:
    turns = MemberTurns()

    async def twice() -> None:
        turns.take(1)
        await turns.wait(turns.take(1), timeout=5)

    await asyncio.wait_for(twice(), timeout=0.5)
