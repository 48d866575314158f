"""The parameters of the prompt language: names, ranges, and what each one does to a render.

``domain.prompt`` reads prompts with this table; ``docs/prompt-language.md`` explains it to users. What a
parameter does in diffusion terms is decided here, as small functions the workers call, so that the
numbers shown by ``imagine parse`` are the numbers that are rendered:

* ``--s`` (stylize) lowers classifier-free guidance as it rises (:func:`guidance_for_stylize`);
* ``--q`` (quality) scales the number of denoising steps (:func:`steps_for_quality`);
* ``--c`` (chaos) is carried in the spec; the worker perturbs each image's text conditioning with it
  (``inference.pipelines.conditioning``).
* ``--style raw`` turns off the house negative prompt (``domain.capabilities.negative_prompt_for``).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from domain.catalog import SCHEDULERS

__all__ = [
    "CFG_RANGE",
    "CHAOS_RANGE",
    "OLD_QUALITY_VALUES",
    "OLD_STYLIZE_MAX",
    "PARAMS",
    "QUALITY_VALUES",
    "REPEAT_RANGE",
    "STEPS_RANGE",
    "STOP_RANGE",
    "STYLIZE_DEFAULT",
    "STYLIZE_RANGE",
    "WEIGHT_LIMIT",
    "Arity",
    "Param",
    "format_number",
    "guidance_for_stylize",
    "lookup",
    "read_decimal",
    "read_int",
    "read_quality",
    "read_sampler",
    "read_stylize",
    "steps_for_quality",
    "suggest",
]

#: ``--s``: 0 follows the prompt most closely, 1000 gives the model the most freedom; 100 is neutral.
STYLIZE_RANGE = (0, 1000)
STYLIZE_DEFAULT = 100
#: ``--c``: 0 keeps the four images close, 100 spreads them furthest apart.
CHAOS_RANGE = (0, 100)
#: ``--q``: multiplies the model's step count (and so the GPU time and the cost).
QUALITY_VALUES = (0.25, 0.5, 1.0, 2.0)
#: ``--q`` values older Midjourney versions took (V1–V5); they run as the highest of ours, with a note.
OLD_QUALITY_VALUES = (4.0, 5.0)
#: The highest ``--s`` an older Midjourney took (V3: up to 60000); above ours it runs as ours, with a note.
OLD_STYLIZE_MAX = 60_000
#: ``--stop``: percentage of the denoising schedule to run.
STOP_RANGE = (10, 100)
#: ``--r``: jobs from one prompt (a plan may allow fewer).
REPEAT_RANGE = (1, 40)
#: ``--steps`` and ``--cfg`` (power users).
STEPS_RANGE = (1, 150)
CFG_RANGE = (0.0, 30.0)
#: Multi-prompt weights (``a::2``) lie in ``[-WEIGHT_LIMIT, WEIGHT_LIMIT]``.
WEIGHT_LIMIT = 100.0

_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


class Arity(StrEnum):
    """What follows a parameter's name."""

    FLAG = "flag"          # nothing: --tile
    VALUE = "value"        # one word: --ar 16:9
    OPTIONAL = "optional"  # a version number or nothing: --niji, --niji 6
    TEXT = "text"          # every word up to the next parameter: --no people, cars


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of the prompt language.

    ``key`` is what it sets: parameters sharing a key replace each other (``--v 6`` and ``--model sdxl``).
    ``ignored`` marks Midjourney parameters this bot accepts and drops with a note.
    """

    name: str
    key: str
    arity: Arity
    example: str = ""
    aliases: tuple[str, ...] = ()
    ignored: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def _ignored(arity: Arity, *names: str) -> list[Param]:
    return [Param(name, "", arity, ignored=True) for name in names]


PARAMS: tuple[Param, ...] = (
    Param("ar", "aspect", Arity.VALUE, "--ar 16:9", ("aspect",)),
    Param("seed", "seed", Arity.VALUE, "--seed 42"),
    Param("no", "negative", Arity.TEXT, "--no people, cars"),
    Param("s", "stylize", Arity.VALUE, "--s 250", ("stylize",)),
    Param("c", "chaos", Arity.VALUE, "--c 20", ("chaos",)),
    Param("q", "quality", Arity.VALUE, "--q 2", ("quality",)),
    Param("stop", "stop", Arity.VALUE, "--stop 80"),
    Param("tile", "tile", Arity.FLAG, "--tile"),
    Param("style", "raw", Arity.VALUE, "--style raw"),
    Param("raw", "raw", Arity.FLAG, "--raw"),
    Param("r", "repeat", Arity.VALUE, "--r 4", ("repeat",)),
    Param("model", "model", Arity.VALUE, "--model sdxl"),
    Param("v", "model", Arity.VALUE, "--v 6", ("version",)),
    Param("niji", "model", Arity.OPTIONAL, "--niji 6"),
    Param("steps", "steps", Arity.VALUE, "--steps 40"),
    Param("cfg", "cfg", Arity.VALUE, "--cfg 7"),
    Param("sampler", "sampler", Arity.VALUE, "--sampler euler_a"),
    Param("lora", "lora", Arity.VALUE, "--lora ink:0.8"),
    Param("draft", "draft", Arity.FLAG, "--draft"),
    # Where the job runs (not part of the spec: the lane is the queue, see domain.lanes).
    Param("fast", "lane", Arity.FLAG, "--fast"),
    Param("relax", "lane", Arity.FLAG, "--relax"),
    Param("turbo", "lane", Arity.FLAG, "--turbo"),
    # Midjourney parameters that have no meaning here: accepted, dropped, and named in a note.
    *_ignored(
        Arity.FLAG, "hd", "test", "testp", "beta", "upbeta", "uplight", "upanime", "remaster", "creative",
        "video", "loop", "public", "stealth",
    ),
    *_ignored(
        Arity.VALUE, "iw", "weird", "w", "exp", "sv", "sw", "cw", "ow", "motion", "bs", "end", "sameseed",
    ),
    *_ignored(Arity.TEXT, "sref", "cref", "oref", "profile", "p", "personalize"),
)

_BY_NAME: dict[str, Param] = {name: param for param in PARAMS for name in param.names}


def lookup(name: str) -> Param | None:
    """The parameter called ``name`` (case-insensitive), or ``None``."""
    return _BY_NAME.get(name.lower())


def suggest(name: str) -> str | None:
    """The parameter a mistyped ``name`` most likely meant, as ``--name``, or ``None``."""
    name = name.lower()
    prefixes = [known for known in _BY_NAME if len(known) >= 2 and name.startswith(known)]
    if prefixes:
        return "--" + _BY_NAME[max(prefixes, key=len)].name
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6)
    return "--" + _BY_NAME[close[0]].name if close else None


# Values. Each reader raises ValueError with a reason for the user; the caller adds which parameter it was.


def format_number(value: float) -> str:
    """Shortest decimal text that reads back as ``value`` (``2.0`` -> ``2``, ``1e-05`` -> ``0.00001``)."""
    if not math.isfinite(value):
        return repr(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def read_int(value: str, low: int, high: int, example: str) -> int:
    """A whole number from ``low`` to ``high``."""
    expected = f"use a whole number from {low} to {high}, like `{example}`."
    if _NONFINITE.fullmatch(value):
        raise ValueError(f"NaN and infinity are not allowed; {expected}")
    if not _INT.fullmatch(value):
        if _DECIMAL.fullmatch(value):
            raise ValueError(f"no decimals; {expected}")
        raise ValueError(f"not a number; {expected}")
    return _in_range(int(value), low, high, expected)


def read_decimal(value: str, low: float, high: float, example: str) -> float:
    """A number from ``low`` to ``high``, decimals allowed (``7``, ``7.5``, ``.5``)."""
    expected = f"use a number from {format_number(low)} to {format_number(high)}, like `{example}`."
    if _NONFINITE.fullmatch(value):
        raise ValueError(f"NaN and infinity are not allowed; {expected}")
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"not a number; {expected}")
    return _in_range(float(value), low, high, expected)


N = TypeVar("N", int, float)


def _in_range(number: N, low: float, high: float, expected: str) -> N:
    if number < low:
        raise ValueError(f"too low; {expected}")
    if number > high:
        raise ValueError(f"too high; {expected}")
    return number


def read_quality(value: str) -> tuple[float, str | None]:
    """One of :data:`QUALITY_VALUES`, and a note when an older Midjourney's ``4`` or ``5`` became ``2``."""
    if _DECIMAL.fullmatch(value):
        number = float(value)
        if number in QUALITY_VALUES:
            return number, None
        if number in OLD_QUALITY_VALUES:
            return QUALITY_VALUES[-1], (
                f"`--q {format_number(number)}` (older Midjourney versions) is not available here; "
                "used `--q 2`, the highest."
            )
    raise ValueError("use one of .25, .5, 1 or 2, like `--q 2`.")


def read_stylize(value: str) -> tuple[int, str | None]:
    """A stylize value; one an older Midjourney accepted above ours (up to 60000) is lowered, with a note."""
    try:
        return read_int(value, *STYLIZE_RANGE, "--s 250"), None
    except ValueError:
        if not _INT.fullmatch(value) or not STYLIZE_RANGE[1] < int(value) <= OLD_STYLIZE_MAX:
            raise
    number, high = int(value), STYLIZE_RANGE[1]
    return high, f"`--s {number}` (older Midjourney versions) is above this bot's {high}; used `--s {high}`."


def read_sampler(value: str) -> str:
    """One of :data:`domain.catalog.SCHEDULERS`."""
    if value.lower() in SCHEDULERS:
        return value.lower()
    raise ValueError(f"use one of {', '.join(SCHEDULERS)}.")


# What the parameters do.


def steps_for_quality(base_steps: int, quality: float) -> int:
    """Denoising steps at ``--q quality`` for a model whose default is ``base_steps``."""
    return max(1, int(base_steps * quality + 0.5))


def guidance_for_stylize(base_guidance: float, stylize: int | None) -> float:
    """Classifier-free guidance scale at ``--s stylize`` for a model whose default is ``base_guidance``.

    Guidance is how hard each step pushes toward the prompt. Stylize trades that for the model's own look:
    ``--s 0`` gives 1.5x the default (literal), ``--s 100`` (or none) the default, ``--s 1000`` half of it
    (loose and painterly), linear in between.
    """
    if stylize is None:
        stylize = STYLIZE_DEFAULT
    if stylize <= STYLIZE_DEFAULT:
        factor = 1.5 - 0.5 * stylize / STYLIZE_DEFAULT
    else:
        factor = 1.0 - 0.5 * (stylize - STYLIZE_DEFAULT) / (STYLIZE_RANGE[1] - STYLIZE_DEFAULT)
    return round(base_guidance * factor, 2)
