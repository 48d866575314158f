"""Moderation rules: the prompt filter, the image policy, who may see a job. Pure: no I/O.

The prompt filter matches **whole words** of a normalised prompt against a list of blocked terms (the
defaults below, plus a server's additions, minus its exceptions), so "Scunthorpe", "Sussex" or
"Penistone" pass while "nude", "NÜDE", "nu​de" (a zero-width space), "ｎｕｄｅ", "nudе" (a Cyrillic е),
"n.u.d.e", "n u d e" and "nud3" are all the word *nude*.

Normalisation, in order (:func:`words`):

1. NFKC (fullwidth and mathematical letters become plain ones), invisible format characters (zero-width
   spaces and joiners, soft hyphens) removed, diacritics removed (NFKD without combining marks), casefold;
2. confusable letters (Cyrillic and Greek lookalikes) mapped to the Latin letter they imitate;
3. split on whitespace; inside a word, leetspeak (``0→o 1→i 3→e 4→a 5→s 7→t 8→b 9→g @→a $→s !→i |→i +→t``)
   read as letters (numbers alone stay numbers), and punctuation between letters dropped (``n.u.d.e``),
   the parts between punctuation being words too (``self-portrait`` is *self*, *portrait* and
   *selfportrait*);
4. ``l`` is read as ``i`` on both sides (so ``1`` and ``|`` stand for either).

Letters spaced out (``n u d e``, ``nu de``) are read by joining runs of one- and two-letter words, matching
only joins that start and end on word boundaries ("is ex" is not "sex").

A term matches a word equal to it, or to it plus ``s``/``es``; a term ending in ``*`` matches every word
that starts with it (``porn*``); a term of several words matches them in a row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_BLOCKED",
    "MAX_TERM_CHARS",
    "ImageAction",
    "PromptFilter",
    "blocked_message",
    "check_term",
    "image_action",
    "may_see_job",
    "normalize_term",
    "same_place",
    "words",
]

#: Blocked everywhere unless a server makes an exception (``/admin filter allow``).
DEFAULT_BLOCKED: tuple[str, ...] = (
    "nude", "nudity", "naked", "topless", "nsfw*", "porn*", "hentai*", "xxx", "sex", "sexual", "sexy",
    "erotic*", "orgasm*", "masturbat*", "nipple", "genital*", "penis", "vagina", "vulva", "boobs", "blowjob",
    "dildo", "fetish*", "bdsm", "lolicon", "loli", "shota", "child porn", "cunt", "beheading", "decapitated",
    "dismembered",
)
#: The longest term a server may add.
MAX_TERM_CHARS = 60
#: Runs of spaced-out letters longer than this are not joined (bounds the work per prompt).
_MAX_RUN = 40

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "i", "+": "t"})
#: Cyrillic and Greek letters that look like Latin ones (after casefolding), and ``l`` read as ``i``.
_CONFUSABLE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "ո": "n", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ı": "i", "l": "i",
})
_SUFFIXES = ("", "s", "es")


def _fold(text: str) -> str:
    """Steps 1 and 2: NFKC, no format characters, no diacritics, casefolded, confusables mapped."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.casefold().translate(_CONFUSABLE)


def _parts(token: str) -> list[str]:
    """Step 3 for one whitespace-separated token: its words (the parts between punctuation, then the
    parts joined when there are several)."""
    while token and not token[0].isalnum() and token[0] not in "$@":
        token = token[1:]
    while token and not token[-1].isalnum():
        token = token[:-1]
    if not token or token.isdigit():
        return [token] if token else []
    token = token.translate(_LEET)
    pieces: list[str] = []
    current: list[str] = []
    for char in token:
        if char.isalnum():
            current.append(char)
        elif current:
            pieces.append("".join(current))
            current = []
    if current:
        pieces.append("".join(current))
    if len(pieces) > 1:
        pieces.append("".join(pieces))
    return pieces


def words(text: str) -> list[list[str]]:
    """The normalised words of ``text``: one list per whitespace-separated token, its readings (a token
    with punctuation inside has several; the last one is the joined reading)."""
    return [parts for token in _fold(text).split() if (parts := _parts(token))]


def normalize_term(term: str) -> str:
    """A blocked or allowed term as it is compared: normalised like a prompt, words joined by one space;
    a trailing ``*`` (a prefix term) kept."""
    prefix = term.strip().endswith("*")
    joined = " ".join(parts[-1] for parts in words(term.strip().rstrip("*")))
    return joined + ("*" if prefix and joined else "")


def check_term(term: str) -> str:
    """A term an admin typed, normalised; raises :class:`ValueError` with what to change."""
    if len(term) > MAX_TERM_CHARS:
        raise ValueError(f"A term may have at most {MAX_TERM_CHARS} characters; that one has {len(term)}.")
    if any(unicodedata.category(c) == "Cc" for c in term):
        raise ValueError("A term can't contain control characters.")
    normalized = normalize_term(term)
    if len(normalized.rstrip("*")) < 2:
        raise ValueError("A term needs at least two letters or digits.")
    return normalized


@dataclass(frozen=True, slots=True)
class PromptFilter:
    """The blocked terms of one server: the defaults plus its additions, minus its exceptions.

    ``terms`` maps each normalised term to the term as written (what a refusal names).
    """

    terms: Mapping[str, str]

    @classmethod
    def build(cls, additions: Iterable[str] = (), exceptions: Iterable[str] = (),
              defaults: Iterable[str] = DEFAULT_BLOCKED) -> PromptFilter:
        allowed = {normalize_term(term) for term in exceptions}
        blocked = {normalize_term(term): term.strip().rstrip("*") for term in (*defaults, *additions)}
        return cls({term: shown for term, shown in blocked.items() if term and term not in allowed})

    def find(self, text: str) -> str | None:
        """The first blocked term ``text`` contains (as written in the list), or None."""
        return self.terms[found] if (found := self._find(text)) is not None else None

    def _find(self, text: str) -> str | None:
        tokens = words(text)
        single = {t for t in self.terms if " " not in t}
        for parts in tokens:
            for word in parts:
                if _matches(word, single):
                    return _match_name(word, single)
        for term in self.terms:
            if " " in term and _has_sequence(tokens, term.split(" ")):
                return term
        return _spaced(tokens, single)


def _term_matches(word: str, term: str) -> bool:
    if term.endswith("*"):
        return word.startswith(term[:-1])
    return any(word == term + suffix for suffix in _SUFFIXES)


def _matches(word: str, terms: Iterable[str]) -> bool:
    return any(_term_matches(word, term) for term in terms)


def _match_name(word: str, terms: Iterable[str]) -> str:
    return next(term for term in sorted(terms) if _term_matches(word, term))


def _has_sequence(tokens: Sequence[list[str]], sequence: Sequence[str]) -> bool:
    joined = [parts[-1] for parts in tokens]
    span = len(sequence)
    return any(
        all(_term_matches(joined[start + k], sequence[k]) for k in range(span))
        for start in range(len(joined) - span + 1)
    )


def _spaced(tokens: Sequence[list[str]], terms: set[str]) -> str | None:
    """Letters spaced out: joins of two or more consecutive one- or two-letter words, word-aligned."""
    run: list[str] = []
    for parts in [*tokens, ["--end--"]]:
        word = parts[-1]
        if len(word) <= 2 and len(run) < _MAX_RUN:
            run.append(word)
            continue
        for start in range(len(run)):
            for end in range(start + 2, len(run) + 1):
                joined = "".join(run[start:end])
                if _matches(joined, terms):
                    return _match_name(joined, terms)
        run = [word] if len(word) <= 2 else []
    return None


def blocked_message(term: str) -> str:
    """The ephemeral refusal of a blocked prompt (it names the term, so the member knows what to change)."""
    return (f"Your prompt was blocked by this server's content filter: it contains “{term}”. "
            "Change the prompt and try again. If you think this is a mistake, press **Appeal** and the "
            "server's admins will review it.")


# -- images ----------------------------------------------------------------------------------------------


class ImageAction(StrEnum):
    """What happens to an image the safety classifier flags."""

    ALLOW = "allow"
    SPOILER = "spoiler"
    BLOCK = "block"


#: Without a policy: flagged images are blocked in ordinary channels, hidden behind a spoiler in
#: age-restricted ones.
DEFAULT_ACTION = ImageAction.BLOCK
DEFAULT_AGE_RESTRICTED_ACTION = ImageAction.SPOILER


def image_action(*, channel: ImageAction | None, server: ImageAction | None,
                 server_age_restricted: ImageAction | None, age_restricted: bool) -> ImageAction:
    """The action for a job's flagged images: the channel's own policy, else the server's for that kind
    of channel (ordinary or age-restricted), else the default."""
    if channel is not None:
        return channel
    if age_restricted:
        return server_age_restricted or DEFAULT_AGE_RESTRICTED_ACTION
    return server or DEFAULT_ACTION


# -- jobs --------------------------------------------------------------------------------------------------


def may_see_job(*, owner_id: int, stealth: bool, viewer_id: int) -> bool:
    """Whether ``viewer_id`` may be shown a job (its recipe, its images in a listing, its buttons):
    a stealth job only to its owner."""
    return not stealth or viewer_id == owner_id


def same_place(*, job_guild_id: int | None, job_channel_id: int | None,
               guild_id: int | None, channel_id: int | None) -> bool:
    """Whether a click (in ``guild_id``/``channel_id``) is where the job it names was made."""
    return job_guild_id == guild_id and job_channel_id == channel_id
