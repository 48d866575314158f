"""Discord's limits on what the bot sends, and fitting a job's message within them.

Discord refuses (400, code 50035) a message over 2,000 characters, more than 5 action rows, more than 5
buttons in a row, or a custom_id over 100 characters; a slash command has at most 25 options. A refused edit
leaves the message as it was (still "Waiting to start"), so every message is fitted before it is sent:
:func:`fit_message` shortens the prompt's *text* in its middle, never its parameters (the seed stays
copyable), and keeps as many notes as fit, saying how many more there were.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_CONTENT", "MessageParts", "fit_message", "shorten_middle"]

#: Characters in a message's content. (The views in ``bot.components`` use at most 3 rows of at most 5
#: buttons, with custom_ids of at most 44 characters; ``tests/bot/test_render_buttons.py`` checks them.)
MAX_CONTENT = 2000

#: What the notes may take from the prompt's text when both do not fit.
_NOTES_SHARE = 600
#: A note longer than this (one quoting a pasted value) is shortened in its middle.
_NOTE_MAX = 300
#: The prompt's text keeps at least this much; a longer ``--no`` value is shortened to make room.
_TEXT_MIN = 80
_ELLIPSIS = "…"


def shorten_middle(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its start and end, joined by "…" (at a space when one is near)."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return _ELLIPSIS[:limit]
    keep = limit - 1
    cut_head, cut_tail = (keep + 1) // 2, len(text) - keep // 2
    head, tail = text[:cut_head], text[cut_tail:]
    # Prefer to cut between words, when that loses little.
    space = head.rfind(" ")
    if text[cut_head] != " " and 0 < space >= len(head) - 12:
        head = head[:space]
    space = tail.find(" ")
    if text[cut_tail - 1] != " " and 0 <= space < 12:
        tail = tail[space + 1 :]
    return f"{head.rstrip()}{_ELLIPSIS}{tail.lstrip()}"


@dataclass(frozen=True, slots=True)
class MessageParts:
    """A job's message before fitting: ``{before}**{text}{params}**{after}``, then one ``-#`` line per note.

    ``params`` is the canonical prompt's parameters with their leading space (``" --ar 16:9 --seed 42"``).
    """

    text: str
    params: str = ""
    before: str = ""
    after: str = ""
    notes: tuple[str, ...] = ()
    #: Lines after the title that always stay (e.g. how an upscale was made), before the notes.
    lines: tuple[str, ...] = ()


def _note_lines(notes: tuple[str, ...], budget: int) -> list[str]:
    """As many ``-#`` note lines as fit in ``budget`` characters (newlines included), then "…and N more"."""
    lines = [f"-# {shorten_middle(note, _NOTE_MAX)}" for note in notes]
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        left = len(lines) - index - 1
        more = f"-# …and {left} more note{'s' if left != 1 else ''}" if left else ""
        need = used + 1 + len(line) + (1 + len(more) if more else 0)
        if need > budget:
            rest = len(lines) - index
            line = f"-# …and {rest} more note{'s' if rest != 1 else ''}"
            if used + 1 + len(line) <= budget:
                kept.append(line)
            break
        kept.append(line)
        used += 1 + len(line)
    return kept


def _params_fitted(params: str, limit: int) -> str:
    """Shorten the value of ``--no`` (the one parameter as long as the text may be) so ``params`` fits."""
    if len(params) <= limit:
        return params
    start = params.find(" --no ")
    if start < 0:
        return params  # only fixed-size parameters: they always fit
    value_start = start + len(" --no ")
    end = params.find(" --", value_start)
    end = len(params) if end < 0 else end
    value = params[value_start:end]
    room = max(1, len(value) - (len(params) - limit))
    return params[:value_start] + shorten_middle(value, room) + params[end:]


def fit_message(parts: MessageParts, limit: int = MAX_CONTENT) -> str:
    """The message within ``limit`` characters, every parameter kept (see the module docstring)."""
    fixed_lines = [line for line in parts.lines if line]
    frame = len(parts.before) + 4 + len(parts.after) + sum(1 + len(line) for line in fixed_lines)
    params = _params_fitted(parts.params, limit - frame - _TEXT_MIN - _NOTES_SHARE)
    room = limit - frame - len(params)  # for the text and the notes
    notes_full = sum(1 + len(f"-# {shorten_middle(n, _NOTE_MAX)}") for n in parts.notes)
    text = parts.text
    if len(text) + notes_full > room:
        notes_budget = max(room - len(text), min(_NOTES_SHARE, notes_full))
        note_lines = _note_lines(parts.notes, notes_budget)
        used = sum(1 + len(line) for line in note_lines)
        text = shorten_middle(text, max(1, room - used))
    else:
        note_lines = [f"-# {shorten_middle(n, _NOTE_MAX)}" for n in parts.notes]
    title = f"{parts.before}**{text}{params}**{parts.after}"
    content = "\n".join([title, *fixed_lines, *note_lines])
    return content if len(content) <= limit else content[: limit - 1] + _ELLIPSIS
