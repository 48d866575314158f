"""Reading job messages as members see them on the fake Discord."""

from __future__ import annotations

from typing import Any

from tests.fakediscord import FakeInteraction, buttons

EPHEMERAL = 64
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE = 4, 5, 6


def is_cancel(button: dict[str, Any]) -> bool:
    """The Cancel button that queued and running jobs show (``job:<id>:cancel``)."""
    return str(button.get("custom_id", "")).endswith(":cancel")


def shows_result(message: dict[str, Any]) -> bool:
    """True once a job's message shows its result: files and the result's buttons (no longer Cancel, which
    the progress edits carry next to their preview)."""
    shown = buttons(message)
    return bool(message.get("files")) and bool(shown) and not any(is_cancel(b) for b in shown)


async def ephemeral_answer(interaction: FakeInteraction, timeout: float = 10.0) -> dict[str, Any]:
    """The message only the interaction's member sees, however the bot acknowledged it: an ephemeral
    answer at once (callback 4); an ephemeral "thinking…" (5) replaced by the answer; or, after a public
    "thinking…" (5, deleted first: nobody else sees anything) or a deferred update (6), an ephemeral follow-up."""
    ack = await interaction.wait_ack()
    if ack.type == CHANNEL_MESSAGE:
        assert ack.data["flags"] & EPHEMERAL, ack
        return ack.data
    if ack.type == DEFERRED_CHANNEL_MESSAGE and ack.data.get("flags", 0) & EPHEMERAL:
        return await interaction.wait_original(lambda m: bool(m.get("content")), timeout=timeout)
    assert ack.type in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE), ack
    answer = await interaction.wait_followup(lambda m: bool(m["flags"] & EPHEMERAL), timeout=timeout)
    if ack.type == DEFERRED_CHANNEL_MESSAGE:
        assert interaction.original is None or interaction.original["flags"] & EPHEMERAL, interaction.original
    return answer
