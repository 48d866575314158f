"""Permutation prompts: ``a {red, blue} car`` is two prompts, ``a red car`` and ``a blue car``.

Braces hold options separated by commas and may nest (``{a {big, small} dog, a cat}``); they work anywhere,
parameters included (``--ar {1:1, 16:9}``). A backslash makes the next ``,``, ``{``, ``}`` or ``\\`` a plain
character. Expansion runs before anything else reads the prompt, so it also resolves those escapes.
"""

from __future__ import annotations

from typing import Any

from domain.errors import PromptError

__all__ = ["ESCAPED", "MAX_BRACE_DEPTH", "escape_braces", "expand_permutations"]

#: Characters a backslash escapes.
ESCAPED = "\\,{}"
#: How deeply braces may nest.
MAX_BRACE_DEPTH = 8

# A sequence is a list of pieces; a piece is plain text (str) or a group: a list of alternative sequences.
_Seq = list[Any]


def escape_braces(text: str) -> str:
    """Escape ``\\``, ``{`` and ``}`` so that :func:`expand_permutations` gives ``text`` back unchanged."""
    return text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")


def _parse(text: str) -> _Seq:
    """Split ``text`` into plain runs and brace groups. Raises :class:`PromptError` on unbalanced braces."""
    root: _Seq = []
    # Each open group: (position of its "{", options closed so far, the option being read).
    stack: list[tuple[int, list[_Seq], _Seq]] = []
    current = root
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            current.append("".join(buffer))
            buffer.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPED:
            buffer.append(text[i + 1])
            i += 2
            continue
        if char == "{":
            if len(stack) == MAX_BRACE_DEPTH:
                raise PromptError(
                    f"Braces are nested more than {MAX_BRACE_DEPTH} deep (character {i + 1}); "
                    "simplify the permutations."
                )
            flush()
            stack.append((i, [], current))
            current = []
        elif char == "," and stack:
            flush()
            stack[-1][1].append(current)
            current = []
        elif char == "}":
            if not stack:
                raise PromptError(
                    f"The `}}` at character {i + 1} has no matching `{{`. Remove it, or write `\\}}` "
                    "for a plain brace."
                )
            flush()
            _, options, parent = stack.pop()
            options.append(current)
            parent.append(options)
            current = parent
        else:
            buffer.append(char)
        i += 1
    if stack:
        raise PromptError(
            f"The `{{` at character {stack[-1][0] + 1} is never closed. Add a `}}`, or write `\\{{` "
            "for a plain brace."
        )
    flush()
    return root


def _count(seq: _Seq, cap: int) -> int:
    """How many prompts ``seq`` expands to, or ``cap`` if that many or more."""
    total = 1
    for piece in seq:
        if isinstance(piece, list):
            total *= min(cap, sum(_count(option, cap) for option in piece))
            total = min(total, cap)
    return total


def _expand(seq: _Seq) -> list[str]:
    """The texts ``seq`` stands for (recursing only into groups, so depth is bounded)."""
    texts = [""]
    for piece in seq:
        if isinstance(piece, str):
            texts = [text + piece for text in texts]
        else:
            options = [option_text for option in piece for option_text in _expand(option)]
            texts = [text + option_text for text in texts for option_text in options]
    return texts


def expand_permutations(text: str, limit: int) -> list[str]:
    """Every prompt ``text`` stands for, in order (first option first), escapes resolved.

    Parameters
    ----------
    text:
        The prompt as typed.
    limit:
        The most prompts allowed; more is an error, raised before anything is expanded.

    Raises
    ------
    PromptError
        Unbalanced or too deeply nested braces, or more than ``limit`` prompts.
    """
    if "{" not in text and "}" not in text and "\\" not in text:
        return [text]
    seq = _parse(text)
    count = _count(seq, limit + 1)
    if count > limit:
        raise PromptError(
            f"The `{{}}` options make more than {limit} prompts; the most is {limit}. Use fewer options."
        )
    return _expand(seq)
