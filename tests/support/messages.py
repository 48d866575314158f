"""Reading job messages as members see them on the fake Discord."""

from __future__ import annotations

from typing import Any

from tests.fakediscord import buttons


def is_cancel(button: dict[str, Any]) -> bool:
    """The Cancel button that queued and running jobs show (``job:<id>:cancel``)."""
    return str(button.get("custom_id", "")).endswith(":cancel")


def shows_result(message: dict[str, Any]) -> bool:
    """True once a job's message shows its result: files and the result's buttons (no longer Cancel, which
    the progress edits carry next to their preview)."""
    shown = buttons(message)
    return bool(message.get("files")) and bool(shown) and not any(is_cancel(b) for b in shown)
