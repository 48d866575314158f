"""The prompt language: ``/imagine`` text plus slash-command options in, job specs out, and back.

Reading a prompt, in order:

1. Check the raw text: length, control characters; drop invisible formatting characters (with a note).
2. Expand permutations (``{red, blue} car``), which also resolves ``\\,``-style escapes.
3. For each expansion: split it into words; a word that starts with a dash of any kind followed by a
   parameter name (``--ar``, ``—ar``, ``--ar16:9``) is a parameter, and takes its value from what is glued
   to it or from the next word. Two or more dashes before an unknown name is an error; everything else
   is prompt text. Midjourney parameters this bot lacks are dropped with a note.
4. Merge the slash-command options; an option that disagrees with an inline parameter is an error.
5. Image URLs at the start are set aside; ``a::2 b::-0.5`` becomes weighted parts.
6. Resolve against the model: size, steps, guidance, sampler; fit the job to what the model's family can
   do (``domain.capabilities.fit``: dropped with a note, or refused); give every job a concrete seed.

:func:`canonical_prompt` prints a spec back as a prompt that :func:`parse_prompt` reads as the same spec.
Every error is a :class:`~domain.errors.PromptError` whose message says what to change.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.aspect import parse_aspect, size_for_aspect
from domain.capabilities import fit
from domain.catalog import Catalog, ModelPreset
from domain.draft import draft_defaults
from domain.errors import PromptError
from domain.loras import choose_loras, lora_text, read_lora_value
from domain.params import (
    CFG_RANGE,
    CHAOS_RANGE,
    REPEAT_RANGE,
    STEPS_RANGE,
    STOP_RANGE,
    STYLIZE_RANGE,
    WEIGHT_LIMIT,
    Arity,
    Param,
    format_number,
    guidance_for_stylize,
    lookup,
    read_decimal,
    read_int,
    read_quality,
    read_sampler,
    read_stylize,
    steps_for_quality,
    suggest,
)
from domain.permutations import escape_braces, expand_permutations
from domain.spec import GRID_SIZE, MAX_SEED, JobSpec, Lane, image_seed

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_JOBS",
    "MAX_PROMPT_CHARS",
    "MAX_PROMPT_PARTS",
    "ParsedPrompt",
    "PromptOptions",
    "canonical_prompt",
    "main_parse",
    "parse_prompt",
    "spec_json",
    "split_canonical",
]

#: The most characters of prompt text and negative prompt together, parameters not counted.
MAX_PROMPT_CHARS = 1500
#: The most characters typed in all, parameters and braces included (Discord's own limit for an option).
MAX_INPUT_CHARS = 6000
#: Jobs one prompt may start (permutations times ``--r``) unless the caller passes a lower ``max_jobs``.
MAX_JOBS = 40
#: The most parts in a multi-prompt (each is one more pass of the text encoder).
MAX_PROMPT_PARTS = 20

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
_MARKER = re.compile(f"([{re.escape(_DASHES)}]+)([A-Za-z]+)(.*)", re.DOTALL)
_URL = re.compile(r"<?https?://\S+", re.IGNORECASE)
_VERSION = re.compile(r"\d+(?:\.\d+)?")
_WEIGHT_WORD = re.compile(r"[^\s:,]*")
_WEIGHT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: Control characters that are only line breaks and tabs: read as spaces.
_SPACE_CONTROLS = "\t\n\r\x0b\x0c\x85"
_JOINERS = "\u200c\u200d"
_TRAILING = ".,;"
#: Settings that options and inline parameters share, in canonical order.
_FIELDS = ("aspect", "seed", "stylize", "chaos", "quality", "stop", "tile", "raw", "draft", "repeat", "model",
           "steps", "cfg", "sampler")


@dataclass(frozen=True, slots=True)
class PromptOptions:
    """The typed options of ``/imagine``; ``None`` means not given. Each has an inline equivalent."""

    aspect: str | None = None       # --ar
    seed: int | None = None         # --seed
    negative: str | None = None     # --no (merged with it, not a conflict)
    model: str | None = None        # --model
    stylize: int | None = None      # --s
    chaos: int | None = None        # --c
    quality: float | None = None    # --q
    stop: int | None = None         # --stop
    tile: bool | None = None        # --tile
    raw: bool | None = None         # --style raw
    repeat: int | None = None       # --r
    steps: int | None = None        # --steps
    cfg: float | None = None        # --cfg
    sampler: str | None = None      # --sampler
    draft: bool | None = None       # --draft
    lora: str | None = None         # --lora (merged with it, not a conflict)


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """What a prompt asks for: one spec per permutation and repeat, in order.

    ``notes`` are for the user (dropped parameters, a repeated parameter, ignored image URLs, ...);
    each spec also carries the notes that apply to it. ``canonicals[i]`` is ``specs[i]`` as a prompt.
    """

    specs: list[JobSpec]
    notes: list[str]
    canonical: str
    canonicals: list[str] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)
    #: ``--fast``, ``--relax`` or ``--turbo`` in the prompt: the lane asked for these jobs (else the member's).
    lane: Lane | None = None


# 1. The raw text.


def _word_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LMN" or category in ("So", "Sk")


def _clean_text(text: str, what: str) -> tuple[str, int]:
    """Refuse control characters; remove invisible formatting characters. Returns the text and how many."""
    kept: list[str] = []
    removed = 0
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cc" and char not in _SPACE_CONTROLS:
            raise PromptError(
                f"The {what} contains an invisible control character (U+{ord(char):04X}) at character "
                f"{index + 1}; remove it."
            )
        if category == "Cs":
            raise PromptError(
                f"The {what} contains a broken character (U+{ord(char):04X}) at character {index + 1}; "
                "retype that part."
            )
        if category == "Cf":
            # Keep joiners inside words and emoji (👩‍💻, Persian), and the tag characters of flag emoji.
            joins = (
                char in _JOINERS and 0 < index < len(text) - 1
                and _word_char(text[index - 1]) and _word_char(text[index + 1])
            )
            if not joins and not 0xE0020 <= ord(char) <= 0xE007F:
                removed += 1
                continue
        kept.append(char)
    return "".join(kept), removed


# 3. Words and parameters.


@dataclass(frozen=True, slots=True)
class _Marker:
    name: str            # lower-cased, as typed: "s" or "stylize"
    glued: str           # what follows the name in the same word: "16:9" in "--ar16:9"
    param: Param | None  # None: an unknown name after two or more dashes


def _marker(word: str) -> _Marker | None:
    """The parameter ``word`` starts, or ``None`` if it is prompt text."""
    match = _MARKER.fullmatch(word)
    if match is None:
        return None
    param = lookup(match[2])
    if param is None and len(match[1]) < 2:
        return None  # "—dreamy", "-shirt": a dash in the text
    return _Marker(match[2].lower(), match[3], param)


@dataclass(frozen=True, slots=True)
class _Given:
    """One inline parameter as written."""

    param: Param
    name: str
    value: str | None

    @property
    def label(self) -> str:
        return f"`--{self.name}`" if self.value is None else f"`--{self.name} {self.value}`"


@dataclass
class _Reading:
    text: list[str] = field(default_factory=list)
    given: dict[str, _Given] = field(default_factory=dict)
    negatives: list[str] = field(default_factory=list)
    loras: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _trim(value: str) -> str:
    """Drop a trailing period or comma: ``--ar 16:9.`` at the end of a sentence."""
    return value.rstrip(_TRAILING + " ")


def _take_value(marker: _Marker, param: Param, words: list[str], index: int) -> tuple[str | None, int]:
    """The value of ``param`` and the index of the first word after it."""
    has_next = index < len(words) and _marker(words[index]) is None
    if param.arity is Arity.FLAG:
        rest = _trim(marker.glued)
        if rest and not param.ignored:
            raise PromptError(f"`--{marker.name}` takes no value; remove `{rest}`.")
        return None, index
    if param.arity is Arity.VALUE:
        if marker.glued:
            return _trim(marker.glued) or None, index
        if has_next:
            return _trim(words[index]) or None, index + 1
        return None, index
    if param.arity is Arity.OPTIONAL:
        if marker.glued:
            return _trim(marker.glued) or None, index
        if has_next and _VERSION.fullmatch(_trim(words[index])):
            return _trim(words[index]), index + 1
        return None, index
    taken = [marker.glued] if marker.glued else []
    while index < len(words) and _marker(words[index]) is None:
        taken.append(words[index])
        index += 1
    return _trim(" ".join(taken)) or None, index


def _unknown(name: str) -> PromptError:
    guess = suggest(name)
    if guess:
        return PromptError(f"Unknown parameter `--{name}`. Did you mean `{guess}`?")
    return PromptError(
        f"Unknown parameter `--{name}`. Remove it; parameters look like `--ar 16:9` or `--no people`."
    )


def _read(words: list[str]) -> _Reading:
    """Sort ``words`` into prompt text and parameters."""
    reading = _Reading()
    index = 0
    while index < len(words):
        marker = _marker(words[index])
        if marker is None:
            reading.text.append(words[index])
            index += 1
            continue
        if marker.param is None:
            raise _unknown(marker.name)
        param = marker.param
        value, index = _take_value(marker, param, words, index + 1)
        if param.ignored:
            if f"`--{param.name}`" not in reading.dropped:
                reading.dropped.append(f"`--{param.name}`")
            continue
        if value is None and param.arity in (Arity.VALUE, Arity.TEXT):
            raise PromptError(f"`--{marker.name}` needs a value, like `{param.example}`.")
        given = _Given(param, marker.name, value)
        if param.key == "negative":
            reading.negatives.append(_clean_negative(value or ""))
            continue
        if param.key == "lora":  # several at once: --lora a --lora b
            reading.loras.append(value or "")
            continue
        earlier = reading.given.pop(param.key, None)
        if earlier is not None:
            if earlier.label == given.label:
                reading.notes.append(f"{given.label} is given twice; once is enough.")
            else:
                reading.notes.append(f"{given.label} replaces the earlier {earlier.label}.")
        reading.given[param.key] = given
    return reading


def _clean_negative(text: str) -> str:
    return _trim(" ".join(text.split()))


# 4. Values of inline parameters and options.


def _find_version(catalog: Catalog, version: str) -> ModelPreset | None:
    major = version.split(".")[0]
    for name in (version, f"v{version}", major, f"v{major}"):
        preset = catalog.find(name)
        if preset is not None:
            return preset
    return None


def _find_niji(catalog: Catalog, version: str | None) -> ModelPreset | None:
    names = [f"niji{version}", f"niji {version}", f"niji-{version}"] if version else []
    for name in [*names, "niji"]:
        preset = catalog.find(name)
        if preset is not None:
            return preset
    return None


def _value(key: str, value: str, catalog: Catalog, notes: list[str], *, pasted: bool = True) -> Any:
    """Read ``value`` for setting ``key``; raises ValueError with a reason (or PromptError for models).

    ``pasted``: the value was written in the prompt, where values older Midjourney versions took are lowered
    to ours with a note; a typed option was bounded by Discord and is only checked again.
    """
    if key == "aspect":
        return parse_aspect(value)
    if key == "seed":
        return read_int(value, 0, MAX_SEED, "--seed 42")
    if key == "stylize":
        if not pasted:
            return read_int(value, *STYLIZE_RANGE, "--s 250")
        stylize, note = read_stylize(value)
        if note:
            notes.append(note)
        return stylize
    if key == "chaos":
        return read_int(value, *CHAOS_RANGE, "--c 20")
    if key == "quality":
        quality, note = read_quality(value)
        if note:
            notes.append(note)
        return quality
    if key == "stop":
        return read_int(value, *STOP_RANGE, "--stop 80")
    if key == "repeat":
        return read_int(value, *REPEAT_RANGE, "--r 4")
    if key == "steps":
        return read_int(value, *STEPS_RANGE, "--steps 40")
    if key == "cfg":
        return read_decimal(value, *CFG_RANGE, "--cfg 7")
    if key == "sampler":
        return read_sampler(value)
    if key == "model":
        return catalog.get(value).name
    raise AssertionError(key)


def _inline_setting(given: _Given, catalog: Catalog, reading: _Reading) -> Any:
    """The value an inline parameter sets, or ``None`` if it is dropped."""
    name, value = given.param.name, given.value
    if given.param.key in ("tile", "draft"):
        return True
    if given.param.key == "lane":
        return Lane(name)
    if given.param.key == "raw":
        if name == "raw" or (value or "").lower() == "raw":
            return True
        reading.dropped.append(f"`--style {value}`")
        return None
    if name == "v":
        preset = _find_version(catalog, value or "")
        if preset is None:
            reading.notes.append(f"{given.label} matches no model here, so it was ignored.")
        return preset.name if preset else None
    if name == "niji":
        preset = _find_niji(catalog, value)
        if preset is None:
            reading.notes.append(f"{given.label}: there is no niji (anime) model here, so it was ignored.")
        return preset.name if preset else None
    return _value(given.param.key, value or "", catalog, reading.notes)


def _option_settings(
    options: PromptOptions, catalog: Catalog, notes: list[str]
) -> dict[str, tuple[Any, str]]:
    """Each option that was given: its value and how to name it in a message."""
    settings: dict[str, tuple[Any, str]] = {}
    for key in _FIELDS:
        raw = getattr(options, key)
        if raw is None:
            continue
        text = format_number(raw) if isinstance(raw, float) else str(raw)
        label = f"`{key}: {text}`"
        if key in ("tile", "raw", "draft"):
            settings[key] = (bool(raw), label)
            continue
        try:
            settings[key] = (_value(key, text.strip(), catalog, notes, pasted=False), label)
        except ValueError as exc:
            raise PromptError(f"{label}: {exc}") from None
    return settings


def _option_negative(options: PromptOptions, notes: list[str]) -> str:
    if not options.negative:
        return ""
    text, removed = _clean_text(options.negative, "`negative` option")
    if removed:
        notes.append(f"Removed {_count(removed, 'invisible character')} from the `negative` option.")
    negative = _clean_negative(text)
    for word in negative.split():
        if _marker(word) is not None:
            raise PromptError(
                f"The `negative` option cannot hold parameters like `{word}`; put them in the prompt."
            )
    return negative


# 5. Prompt text: image URLs and multi-prompts.


def _read_weight(word: str) -> float:
    problem = f"`::{word}`: a multi-prompt weight must be a number, like `::2` or `::-0.5`."
    if _NONFINITE.fullmatch(word) or not _WEIGHT.fullmatch(word):
        raise PromptError(problem)
    weight = float(word)
    if abs(weight) > WEIGHT_LIMIT:
        limit = format_number(WEIGHT_LIMIT)
        raise PromptError(f"`::{word}`: weights go from -{limit} to {limit}; use a smaller one.")
    return weight


def _parts(text: str) -> tuple[list[tuple[str, float]], bool]:
    """Split ``a::2 b::-0.5`` into ``(words, weight)`` parts; the flag says whether it was a multi-prompt.

    Whitespace is collapsed; parts of a multi-prompt also lose leading and trailing commas.
    """
    if "::" not in text:
        words = " ".join(text.split())
        return ([(words, 1.0)] if words else []), False
    chunks: list[tuple[str, float, str | None]] = []
    start = 0
    while (found := text.find("::", start)) >= 0:
        after = found + 2
        match = _WEIGHT_WORD.match(text, after)
        word = match[0] if match else ""
        if word and (word[0] in "+-." or word[0].isdecimal() or _NONFINITE.fullmatch(word)):
            chunks.append((text[start:found], _read_weight(word), word))
            start = after + len(word)
        else:
            chunks.append((text[start:found], 1.0, None))
            start = after
    chunks.append((text[start:], 1.0, None))
    parts: list[tuple[str, float]] = []
    for chunk, weight, written in chunks:
        words = " ".join(chunk.split()).strip(", ")
        if words:
            parts.append((words, weight))
        elif written is not None:
            raise PromptError(f"`::{written}` has no text before it; write what it weighs, like `castle::2`.")
    return parts, True


def _take_image_urls(parts: list[tuple[str, float]], multi: bool) -> list[str]:
    """Remove the image URLs the prompt starts with (``https://…/a.png a cat``) and return them."""
    urls: list[str] = []
    while parts:
        words, weight = parts[0]
        split = words.split(" ")
        while split and _URL.fullmatch(split[0]):
            urls.append(split.pop(0).strip("<>"))
        rest = " ".join(split).strip(", ") if multi else " ".join(split)
        if rest:
            parts[0] = (rest, weight)
            break
        parts.pop(0)
    return urls


def _weigh(parts: list[tuple[str, float]]) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The prompt for plain encoders and the weighted parts (none unless there are two or more)."""
    if len(parts) > MAX_PROMPT_PARTS:
        raise PromptError(f"The multi-prompt has {len(parts)} parts; the most is {MAX_PROMPT_PARTS}.")
    total = round(sum(weight for _, weight in parts), 6)
    if parts and not total > 0:
        raise PromptError(
            f"The multi-prompt weights add up to {format_number(total)}; they must add up to more than 0. "
            "Raise a weight or remove a negative one."
        )
    if len(parts) <= 1:
        return (parts[0][0] if parts else ""), ()
    return ", ".join(words for words, weight in parts if weight > 0), tuple(parts)


# 6. Putting it together.


@dataclass
class _Job:
    """One expansion, read and resolved except for its seeds."""

    spec: JobSpec
    repeat: int
    seed: int | None
    notes: list[str]
    image_urls: list[str]
    lane: Lane | None = None


def _lora_picks(values: list[str], label: Callable[[str], str]) -> list[tuple[str, float | None]]:
    picks: list[tuple[str, float | None]] = []
    for value in values:
        try:
            picks += read_lora_value(value)
        except ValueError as exc:
            raise PromptError(f"{label(value)}: {exc}") from None
    return picks


def _resolve(
    text: str, catalog: Catalog, options: dict[str, tuple[Any, str]], negative_option: str,
    lora_option: list[tuple[str, float | None]],
) -> _Job:
    reading = _read(text.split())
    lora_picks = lora_option + _lora_picks(reading.loras, lambda value: f"`--lora {value}`")

    settings: dict[str, Any] = {}
    for key, given in reading.given.items():
        try:
            value = _inline_setting(given, catalog, reading)
        except ValueError as exc:
            raise PromptError(f"{given.label}: {exc}") from None
        if value is None:
            continue
        if key in options and options[key][0] != value:
            raise PromptError(
                f"The {options[key][1]} option and {given.label} in the prompt disagree; keep one of them."
            )
        settings[key] = value
    for key, (value, _) in options.items():
        settings.setdefault(key, value)

    parts, multi = _parts(" ".join(reading.text))
    image_urls = _take_image_urls(parts, multi)
    prompt, weighted = _weigh(parts)
    notes = list(reading.notes)
    if image_urls:
        ignored = _count(len(image_urls), "image URL")
        notes.insert(0, f"Image prompts are not supported yet; ignored {ignored}.")
    if reading.dropped:
        dropped = ", ".join(reading.dropped)
        notes.insert(0, f"Ignored Midjourney parameters this bot does not have: {dropped}.")

    if not prompt:
        if image_urls:
            raise PromptError("Image-only prompts are not supported yet; describe the image after the URL.")
        if reading.given or reading.negatives or reading.dropped:
            raise PromptError(
                "The prompt has parameters but no description; describe the image first, like "
                "`a lighthouse at dusk --ar 16:9`."
            )
        raise PromptError("The prompt is empty; describe the image, like `a lighthouse at dusk`.")
    negative = ", ".join(part for part in (negative_option, *reading.negatives) if part)
    length = (sum(len(words) for words, _ in weighted) if weighted else len(prompt)) + len(negative)
    if length > MAX_PROMPT_CHARS:
        raise PromptError(
            f"The prompt's text is {length} characters long; the most is {MAX_PROMPT_CHARS} (parameters "
            "not counted). Shorten it."
        )

    preset = catalog.get(settings.get("model"))
    aspect: tuple[int, int] = settings.get("aspect", (1, 1))
    width, height = size_for_aspect(aspect[0], aspect[1], preset.pixel_budget)
    quality = settings.get("quality", 1.0)
    stylize = settings.get("stylize")
    draft = settings.get("draft", False)
    base_steps, base_guidance, base_sampler = _defaults(preset, catalog, draft)
    spec = JobSpec(
        prompt=prompt,
        model=preset.name,
        width=width,
        height=height,
        seed=0,
        steps=settings.get("steps", steps_for_quality(base_steps, quality)),
        guidance_scale=settings.get("cfg", guidance_for_stylize(base_guidance, stylize)),
        negative_prompt=negative,
        weighted_prompts=weighted,
        sampler=settings.get("sampler", base_sampler),
        aspect=f"{aspect[0]}:{aspect[1]}",
        stylize=stylize,
        chaos=settings.get("chaos", 0),
        quality=quality,
        stop=settings.get("stop", 100),
        tile=settings.get("tile", False),
        raw=settings.get("raw", False),
        loras=choose_loras(preset.name, preset.loras, lora_picks, notes),
        draft=draft,
    )
    spec, dropped_by_model = fit(spec, preset.capabilities, model=preset.name)
    notes.extend(dropped_by_model)
    return _Job(spec, settings.get("repeat", 1), settings.get("seed"), notes, image_urls, settings.get("lane"))


def _defaults(preset: ModelPreset, catalog: Catalog, draft: bool) -> tuple[int, float, str]:
    """Steps, guidance and sampler a job of ``preset`` starts from (``--q``, ``--s`` then apply): the
    model's own, or its draft variant's under ``--draft``."""
    if not draft:
        return preset.steps, preset.guidance, preset.scheduler
    if preset.draft is None:
        drafts = [f"`{p.name}`" for p in catalog.models.values() if p.draft is not None]
        hint = f" or pick a model that has one: {', '.join(drafts)}" if drafts else ""
        raise PromptError(f"The model `{preset.name}` has no draft mode here; remove `--draft`{hint}.")
    defaults = draft_defaults(preset, catalog)
    return defaults.steps, defaults.guidance, defaults.scheduler


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def parse_prompt(
    text: str,
    catalog: Catalog,
    options: PromptOptions | None = None,
    *,
    random_seed: Callable[[], int] | None = None,
    max_jobs: int = MAX_JOBS,
) -> ParsedPrompt:
    """Read an ``/imagine`` prompt and its options into job specs.

    Parameters
    ----------
    text:
        What the user typed, parameters included.
    catalog:
        The models file; names, aliases and defaults come from here.
    options:
        The slash-command options. They merge with inline parameters; a disagreement is an error.
    random_seed:
        Called once per job that has no ``--seed``; defaults to a cryptographically random 32-bit seed.
    max_jobs:
        The most jobs (permutations times ``--r``) this prompt may start; a plan may pass fewer.

    Raises
    ------
    PromptError
        For anything that cannot be used; the message names the problem and what to change.
    """
    if max_jobs < 1:
        raise ValueError(f"max_jobs must be at least 1, not {max_jobs}")
    options = options or PromptOptions()
    draw = random_seed or (lambda: secrets.randbelow(MAX_SEED + 1))

    # 1. Check the raw text.
    if len(text) > MAX_INPUT_CHARS:
        raise PromptError(
            f"The prompt is {len(text)} characters long; the most is {MAX_INPUT_CHARS}. Shorten it."
        )
    text, removed = _clean_text(text, "prompt")
    notes: list[str] = []
    if removed:
        notes.append(
            f"Removed {_count(removed, 'invisible character')} (zero-width spaces or similar) "
            "from the prompt."
        )
    option_settings = _option_settings(options, catalog, notes)
    negative_option = _option_negative(options, notes)
    lora_option = _lora_picks([options.lora] if options.lora else [], lambda value: f"`lora: {value}`")

    # 2-5. Expand permutations and read each expansion.
    jobs = [_resolve(expansion, catalog, option_settings, negative_option, lora_option)
            for expansion in expand_permutations(text, max_jobs)]
    total = sum(job.repeat for job in jobs)
    if total > max_jobs:
        raise PromptError(
            f"This prompt makes {total} jobs; the most is {max_jobs}. "
            "Use fewer `{}` options or a smaller `--r`."
        )

    # 6. Seeds: one per job, or the given one moved on by a grid per repeat so repeats differ.
    specs: list[JobSpec] = []
    for job in jobs:
        job_notes = tuple(_unique(notes + job.notes))
        for repeat in range(job.repeat):
            fixed = job.seed is not None
            seed = image_seed(job.seed or 0, repeat * GRID_SIZE) if fixed else draw() % (MAX_SEED + 1)
            specs.append(job.spec.replace(seed=seed, notes=job_notes))
    canonicals = [canonical_prompt(spec, catalog) for spec in specs]
    return ParsedPrompt(
        specs=specs,
        notes=_unique(notes + [note for job in jobs for note in job.notes]),
        canonical=canonicals[0],
        canonicals=canonicals,
        image_urls=_unique([url for job in jobs for url in job.image_urls]),
        lane=next((job.lane for job in reversed(jobs) if job.lane is not None), None),
    )


# The canonical form.


def _escape(text: str) -> str:
    return escape_braces(text)


def _prompt_text(spec: JobSpec) -> str:
    if not spec.weighted_prompts:
        return _escape(spec.prompt)
    # A space keeps a part ending in ":" from running into the "::" after it.
    return " ".join(
        f"{_escape(words)}{' ' if words.endswith(':') else ''}::{format_number(weight)}"
        for words, weight in spec.weighted_prompts
    )


def canonical_prompt(spec: JobSpec, catalog: Catalog) -> str:
    """``spec`` as a prompt: the text, then only the parameters that differ from what they default to.

    :func:`parse_prompt` reads the result back as ``spec`` (except ``notes``, which describe how the
    original was read), provided the catalog still has the spec's model.
    """
    preset = catalog.find(spec.model)
    parts = [_prompt_text(spec)]
    if spec.aspect != "1:1":
        parts.append(f"--ar {spec.aspect}")
    parts.append(f"--seed {spec.seed}")
    if spec.negative_prompt:
        parts.append(f"--no {_escape(spec.negative_prompt)}")
    if spec.stylize is not None:
        parts.append(f"--s {spec.stylize}")
    if spec.chaos:
        parts.append(f"--c {spec.chaos}")
    if spec.quality != 1:
        parts.append(f"--q {format_number(spec.quality)}")
    if spec.stop != 100:
        parts.append(f"--stop {spec.stop}")
    if spec.tile:
        parts.append("--tile")
    if spec.raw:
        parts.append("--style raw")
    if spec.loras:
        parts.append(lora_text(spec.loras))
    if spec.draft:
        parts.append("--draft")
    if preset is None or preset.name != catalog.default:
        parts.append(f"--model {spec.model}")
    known = preset is not None and (preset.draft is not None or not spec.draft)
    steps, guidance, sampler = _defaults(preset, catalog, spec.draft) if known and preset else (0, 0.0, "")
    if not known or spec.steps != steps_for_quality(steps, spec.quality):
        parts.append(f"--steps {spec.steps}")
    if not known or spec.guidance_scale != guidance_for_stylize(guidance, spec.stylize):
        parts.append(f"--cfg {format_number(spec.guidance_scale)}")
    if spec.sampler and (not known or spec.sampler != sampler):
        parts.append(f"--sampler {spec.sampler}")
    return " ".join(parts)


_FIRST_PARAM = re.compile(r"(?:^|\s)--[A-Za-z]")


def split_canonical(prompt: str) -> tuple[str, str]:
    """A canonical prompt's text and its parameters (with their leading space):
    ``"a fox --ar 16:9 --seed 1"`` -> ``("a fox", " --ar 16:9 --seed 1")``.

    Safe on canonical prompts only: their text holds no word that reads as a parameter (the parser took
    those), so the first ``--name`` starts the parameters.
    """
    match = _FIRST_PARAM.search(prompt)
    if match is None:
        return prompt, ""
    return prompt[: match.start()], prompt[match.start():]


# Inspection: `imagine parse "PROMPT"`.


def _job_json(spec: JobSpec, canonical: str) -> dict[str, Any]:
    return {
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "weighted_prompts": [[words, weight] for words, weight in spec.weighted_prompts],
        "width": spec.width,
        "height": spec.height,
        "aspect": spec.aspect,
        "seed": spec.seed,
        "image_seeds": [image_seed(spec.seed, index) for index in range(spec.images)],
        "steps": spec.steps,
        "guidance_scale": spec.guidance_scale,
        "sampler": spec.sampler,
        "model": spec.model,
        "stylize": spec.stylize,
        "chaos": spec.chaos,
        "quality": spec.quality,
        "stop": spec.stop,
        "tile": spec.tile,
        "raw": spec.raw,
        "loras": [[name, weight] for name, weight in spec.loras],
        "draft": spec.draft,
        "canonical": canonical,
    }


def spec_json(parsed: ParsedPrompt) -> dict[str, Any]:
    """The first job's resolved spec, the notes, and every job under ``"jobs"`` (permutations, repeats)."""
    pairs = zip(parsed.specs, parsed.canonicals, strict=True)
    jobs = [_job_json(spec, canonical) for spec, canonical in pairs]
    return {**jobs[0], "notes": parsed.notes, "image_urls": parsed.image_urls, "jobs": jobs}


def main_parse(text: str, catalog: Catalog, options: PromptOptions | None = None) -> tuple[int, str]:
    """``imagine parse "PROMPT"``: ``(0, JSON)`` to print on stdout, or ``(2, message)`` for stderr."""
    try:
        parsed = parse_prompt(text, catalog, options)
    except PromptError as exc:
        return 2, f"error: {exc}"
    return 0, json.dumps(spec_json(parsed), indent=2, ensure_ascii=False)
