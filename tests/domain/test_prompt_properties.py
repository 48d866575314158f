"""Properties of the prompt language over arbitrary and prompt-like text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.aspect import MAX_RATIO, SIDE_STEP
from domain.catalog import SCHEDULERS
from domain.errors import PromptError
from domain.params import (
    CFG_RANGE,
    CHAOS_RANGE,
    QUALITY_VALUES,
    STOP_RANGE,
    STYLIZE_RANGE,
    WEIGHT_LIMIT,
)
from domain.prompt import MAX_JOBS, MAX_PROMPT_CHARS, ParsedPrompt, PromptOptions, parse_prompt
from domain.spec import MAX_SEED, JobSpec
from tests.domain.prompt_catalog import make_catalog

CATALOG = make_catalog()
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces real prompts are made of, good and bad, so that generated text reaches every branch.
WORDS = [
    "a",
    "lighthouse",
    "at",
    "dusk",
    "cat,",
    "red",
    "x",
    "--",
    "—",
    "a—b",
    "-shirt",
    "—dreamy",
    "::",
    "::2",
    "::-0.5",
    "::nan",
    "::1e5",
    "::.5",
    "{",
    "}",
    ",",
    "\\,",
    "\\{",
    "\\",
    "{red, blue}",
    "{a {b, c}, d}",
    "https://e.com/a--b.png",
    "<https://e.com/x>",
    ".",
    "\n",
    "\u200b",
    "\u200d",
    "👩\u200d💻",
    "\t",
    "0",
    "16:9",
]
PARAMS = [
    "--ar",
    "--aspect",
    "—ar",
    "–ar",
    "-ar",
    "--AR",
    "--seed",
    "--no",
    "--s",
    "--stylize",
    "--c",
    "--chaos",
    "--q",
    "--quality",
    "--stop",
    "--tile",
    "--r",
    "--repeat",
    "--model",
    "--v",
    "--version",
    "--niji",
    "--style",
    "--raw",
    "--steps",
    "--cfg",
    "--sampler",
    "--sref",
    "--cref",
    "--profile",
    "--p",
    "--exp",
    "--sv",
    "--hd",
    "--test",
    "--testp",
    "--upbeta",
    "--uplight",
    "--weird",
    "--w",
    "--iw",
    "--asp",
    "--foo",
]
VALUES = [
    "16:9",
    "1:1",
    "9:16",
    "4:1",
    "5:1",
    "0:1",
    "1.5:1",
    "16x9",
    "42",
    "0",
    "4294967295",
    "4294967296",
    "-1",
    "250",
    "1000",
    "2000",
    "2.5",
    "nan",
    "inf",
    "-inf",
    ".25",
    ".5",
    "1",
    "2",
    "4",
    "3",
    "10",
    "100",
    "9",
    "people, cars",
    "raw",
    "cute",
    "sd15",
    "sdxl",
    "xl",
    "6",
    "6.1",
    "7",
    "niji",
    "euler_a",
    "bogus",
    "7.5",
    "30",
    "{1:1, 16:9}",
    "{1, 2}",
    "16:9.",
    "42,",
]
words = st.sampled_from(WORDS)
pairs = st.builds(lambda p, v: f"{p} {v}", st.sampled_from(PARAMS), st.sampled_from(VALUES))
piece = st.one_of(
    words,
    words,
    words,
    pairs,
    pairs,
    st.sampled_from(PARAMS),
    st.builds(lambda p, v: f"{p}{v}", st.sampled_from(PARAMS), st.sampled_from(VALUES)),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=8),
)
promptlike = st.lists(piece, max_size=12).map(" ".join)

# Valid parameters, to reach the resolved specs often.
VALID = {
    "--ar": ["16:9", "2:3", "1:4", "4:1", "21:9", "32:18", "{1:1, 3:2}"],
    "--seed": ["0", "42", "4294967295"],
    "--no": ["people", "red cars, trees.", "{a, b}", "x\\, y"],
    "--s": ["0", "100", "250", "1000"],
    "--c": ["0", "20", "100"],
    "--q": [".25", ".5", "1", "2", "4"],
    "--stop": ["10", "55", "100"],
    "--tile": [""],
    "--r": ["1", "2", "3"],
    "--v": ["5", "6", "6.1", "7"],
    "--niji": ["", "6", "5"],
    "--model": ["sd15", "sdxl", "xl", "anime"],
    "--style": ["raw", "cute"],
    "--steps": ["1", "40", "150"],
    "--cfg": ["0", "7", "7.25", "30", ".5"],
    "--sampler": ["euler", "DDIM", "dpmpp_2m_karras"],
    "--sref": ["https://x.com/a.png 2", ""],
    "--hd": [""],
}
valid_param = st.sampled_from(sorted(VALID)).flatmap(
    lambda name: st.sampled_from(VALID[name]).map(lambda value: f"{name} {value}".strip())
)
text_word = st.one_of(
    st.sampled_from(WORDS),
    st.text(st.characters(exclude_categories=("Cc", "Cs", "Zs")), min_size=1, max_size=6),
)
wellformed = st.builds(
    lambda text, params, sep: " ".join(text) + sep + " ".join(params),
    st.lists(text_word, min_size=1, max_size=6),
    st.lists(valid_param, max_size=6),
    st.sampled_from([" ", "\n", " \n "]),
)

options = st.builds(
    PromptOptions,
    aspect=st.none() | st.sampled_from(["16:9", "32:18", "0:1", "x"]),
    seed=st.none() | st.integers(-5, MAX_SEED + 5),
    negative=st.none() | st.text(max_size=20) | st.sampled_from(["people.", "{a, b}", "x --ar 1:1", "\\"]),
    model=st.none() | st.sampled_from(["sdxl", "xl", "nope"]),
    stylize=st.none() | st.integers(-10, 1100),
    chaos=st.none() | st.integers(-1, 101),
    quality=st.none() | st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0, 3.0, float("nan")]),
    tile=st.none() | st.booleans(),
    repeat=st.none() | st.integers(0, 5),
    cfg=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    sampler=st.none() | st.sampled_from(["euler", "EULER_A", "nope"]),
)


def assert_in_ranges(spec: JobSpec) -> None:
    assert spec.prompt and spec.prompt == spec.prompt.strip()
    preset = CATALOG.get(spec.model)
    assert spec.width % SIDE_STEP == 0 and spec.height % SIDE_STEP == 0
    assert spec.width >= SIDE_STEP and spec.height >= SIDE_STEP
    assert 1 / (MAX_RATIO + 0.5) <= spec.width / spec.height <= MAX_RATIO + 0.5
    assert 0.7 * preset.pixel_budget <= spec.width * spec.height <= 1.3 * preset.pixel_budget
    w, h = (int(side) for side in spec.aspect.split(":"))
    assert w > 0 and h > 0 and w <= MAX_RATIO * h and h <= MAX_RATIO * w
    assert 0 <= spec.seed <= MAX_SEED
    assert 1 <= spec.steps <= 150
    assert CFG_RANGE[0] <= spec.guidance_scale <= CFG_RANGE[1]
    assert spec.sampler in SCHEDULERS
    assert spec.stylize is None or STYLIZE_RANGE[0] <= spec.stylize <= STYLIZE_RANGE[1]
    assert CHAOS_RANGE[0] <= spec.chaos <= CHAOS_RANGE[1]
    assert spec.quality in QUALITY_VALUES
    assert STOP_RANGE[0] <= spec.stop <= STOP_RANGE[1]
    content = sum(len(words) for words, _ in spec.weighted_prompts) or len(spec.prompt)
    assert content + len(spec.negative_prompt) <= MAX_PROMPT_CHARS
    if spec.weighted_prompts:
        assert len(spec.weighted_prompts) >= 2
        assert sum(weight for _, weight in spec.weighted_prompts) > 0
        assert all(abs(weight) <= WEIGHT_LIMIT for _, weight in spec.weighted_prompts)
    assert JobSpec.from_dict(spec.to_dict()) == spec


def no_draw() -> int:
    raise AssertionError("a canonical prompt carries its seed")


def check(text: str, options: PromptOptions | None = None) -> ParsedPrompt | None:
    """Parse; only PromptError may escape. On success check ranges and the canonical round trip."""
    try:
        parsed = parse_prompt(text, CATALOG, options, random_seed=lambda: 7)
    except PromptError as exc:
        assert str(exc)
        return None
    assert 1 <= len(parsed.specs) <= MAX_JOBS
    for spec, canonical in zip(parsed.specs, parsed.canonicals, strict=True):
        assert_in_ranges(spec)
        again = parse_prompt(canonical, CATALOG, random_seed=no_draw)
        assert again.specs == [spec.replace(notes=())], canonical
        assert again.notes == [] and again.canonical == canonical
    return parsed


@PROPERTY
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check(text)


@PROPERTY
@given(promptlike)
def test_promptlike_text(text: str) -> None:
    check(text)


@PROPERTY
@given(wellformed)
def test_wellformed_prompts(text: str) -> None:
    check(text)


@PROPERTY
@given(wellformed | promptlike, options)
def test_options(text: str, options: PromptOptions) -> None:
    check(text, options)
