"""The prompt language: every parameter, every message, the canonical form and `imagine parse`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from domain.errors import PromptError, UnknownModelError
from domain.prompt import (
    MAX_INPUT_CHARS,
    MAX_PROMPT_CHARS,
    ParsedPrompt,
    PromptOptions,
    canonical_prompt,
    main_parse,
    parse_prompt,
    spec_json,
)
from domain.spec import JobSpec, Lane, image_seed
from tests.domain.prompt_catalog import make_catalog

CATALOG = make_catalog()


def parse(text: str, options: PromptOptions | None = None, **kwargs: object) -> ParsedPrompt:
    kwargs.setdefault("random_seed", lambda: 1234)
    return parse_prompt(text, CATALOG, options, **kwargs)  # type: ignore[arg-type]


def spec(text: str, options: PromptOptions | None = None) -> JobSpec:
    parsed = parse(text, options)
    assert len(parsed.specs) == 1
    return parsed.specs[0]


def has(s: JobSpec, **expected: object) -> bool:
    """Whether ``s`` has these field values (a readable multi-field assert)."""
    actual = {name: getattr(s, name) for name in expected}
    assert actual == expected
    return True


def error(text: str, options: PromptOptions | None = None, **kwargs: object) -> str:
    with pytest.raises(PromptError) as info:
        parse(text, options, **kwargs)
    return str(info.value)


# The issue's example and the resolved fields.


def test_issue_example() -> None:
    parsed = parse("a lighthouse at dusk --ar 16:9 --seed 42 --no people --s 250")
    s = parsed.specs[0]
    assert has(
        s, prompt="a lighthouse at dusk", negative_prompt="people", seed=42, stylize=250, aspect="16:9"
    )
    assert (s.model, s.width, s.height, s.steps, s.sampler) == ("sd15", 704, 384, 30, "dpmpp_2m_karras")
    assert s.guidance_scale == 6.42  # 7 x 0.9167: stylize above 100 loosens guidance
    assert parsed.canonical == "a lighthouse at dusk --ar 16:9 --seed 42 --no people --s 250"
    assert parsed.notes == [] and s.notes == ()


def test_defaults() -> None:
    s = spec("a cat")
    assert has(s, width=512, height=512, aspect="1:1", seed=1234, steps=30, guidance_scale=7.0)
    assert has(s, chaos=0, quality=1.0, stop=100, tile=False, stylize=None, negative_prompt="")


def test_random_seed_is_drawn_per_job_and_the_default_is_random() -> None:
    seeds = iter([5, 6, 2**32 + 9])
    parsed = parse("{a, b, c}", random_seed=lambda: next(seeds))
    assert [s.seed for s in parsed.specs] == [5, 6, 9]
    drawn = {parse_prompt("a cat", CATALOG).specs[0].seed for _ in range(5)}
    assert len(drawn) > 1 and all(0 <= seed < 2**32 for seed in drawn)


# Every parameter, long and short, any case.


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("x --ar 16:9", "aspect", "16:9"),
        ("x --aspect 9:16", "aspect", "9:16"),
        ("x --AR 32:18", "aspect", "16:9"),
        ("x --seed 0", "seed", 0),
        ("x --seed 4294967295", "seed", 4294967295),
        ("x --no people, red cars", "negative_prompt", "people, red cars"),
        ("x --s 0", "stylize", 0),
        ("x --stylize 1000", "stylize", 1000),
        ("x --c 100", "chaos", 100),
        ("x --chaos 20", "chaos", 20),
        ("x --q .25", "quality", 0.25),
        ("x --quality 0.5", "quality", 0.5),
        ("x --q 2", "quality", 2.0),
        ("x --stop 10", "stop", 10),
        ("x --tile", "tile", True),
        ("x --TILE", "tile", True),
        ("x --model sdxl", "model", "sdxl"),
        ("x --model XL", "model", "sdxl"),
        ("x --v 6", "model", "sdxl"),
        ("x --version 5", "model", "sd15"),
        ("x --v 6.1", "model", "sdxl"),
        ("x --niji", "model", "anime"),
        ("x --niji 6", "model", "anime"),
        ("x --steps 150", "steps", 150),
        ("x --cfg 7.5", "guidance_scale", 7.5),
        ("x --cfg 0", "guidance_scale", 0.0),
        ("x --sampler Euler_A", "sampler", "euler_a"),
    ],
)
def test_parameter(text: str, field: str, value: object) -> None:
    assert getattr(spec(text), field) == value


def test_repeat_makes_jobs_and_moves_a_given_seed_on_by_a_grid() -> None:
    assert len(parse("x --r 3").specs) == 3
    assert len(parse("x --repeat 1").specs) == 1
    assert [s.seed for s in parse("x --seed 4294967294 --r 2").specs] == [4294967294, 2]


def test_sizes_keep_the_models_pixel_budget_in_multiples_of_64() -> None:
    assert (spec("x --ar 16:9 --model sdxl").width, spec("x --ar 16:9 --model sdxl").height) == (1344, 768)
    assert (spec("x --model sdxl").width, spec("x --model sdxl").height) == (1024, 1024)
    assert (spec("x --ar 1:4").width, spec("x --ar 1:4").height) == (256, 1024)
    assert (spec("x --ar 4:1 --v 6").width, spec("x --ar 4:1 --v 6").height) == (2048, 512)


def test_quality_scales_the_models_steps_unless_steps_are_given() -> None:
    assert [spec(f"x --q {q}").steps for q in (".25", ".5", "1", "2")] == [8, 15, 30, 60]
    assert spec("x --q 2 --steps 12").steps == 12
    assert spec("x --niji --q .5").steps == 13  # 25 x .5, rounded half up


def test_stylize_moves_guidance_and_cfg_overrides_it() -> None:
    assert [spec(f"x --s {s}").guidance_scale for s in (0, 50, 100, 550, 1000)] == [
        10.5,
        8.75,
        7.0,
        5.25,
        3.5,
    ]
    assert spec("x --s 0 --cfg 4").guidance_scale == 4.0
    assert spec("x --model sdxl --s 1000").guidance_scale == 3.0


def test_model_defaults_follow_the_model() -> None:
    s = spec("x --niji")
    assert (s.steps, s.guidance_scale, s.sampler, s.width) == (25, 5.0, "euler_a", 1024)


def test_negatives_merge() -> None:
    assert spec("x --no a --no b.").negative_prompt == "a, b"
    assert spec("x --no b", PromptOptions(negative="a")).negative_prompt == "a, b"


def test_style_raw_turns_off_the_house_style() -> None:
    for text in ("x --style raw", "x --raw"):
        assert spec(text).raw is True
    assert spec("x").raw is False
    assert parse("x --style raw").canonical == "x --seed 1234 --style raw"


# What real prompts look like.


@pytest.mark.parametrize(
    "text",
    [
        "a cat —ar 16:9",  # phones turn -- into an em dash
        "a cat –ar 16:9",  # or an en dash
        "a cat -ar 16:9",
        "a cat −ar 16:9",  # minus sign
        "a cat --ar16:9",  # glued value
        "a cat --ar 16:9.",  # end of a sentence
        "a cat --ar 16:9,",
        "a cat\n--ar 16:9",  # line break before the parameters
        "a cat\u00a0--ar\u00a016:9",  # no-break spaces
    ],
)
def test_real_world_spellings(text: str) -> None:
    s = spec(text)
    assert (s.prompt, s.aspect) == ("a cat", "16:9")


def test_glued_values_for_short_names() -> None:
    s = spec("x --s250 --c5 --q.5 --seed42 --v6")
    assert (s.stylize, s.chaos, s.quality, s.seed, s.model) == (250, 5, 0.5, 42, "sdxl")


@pytest.mark.parametrize(
    "text",
    [
        "a—b",
        "x -- y",
        "see https://example.com/a--b",
        "t-shirt",
        "a — b",
        "so —dreamy",
        "a -shirt",
        "-5 degrees",
    ],
)
def test_dashes_in_text_stay_in_the_prompt(text: str) -> None:
    assert spec(text).prompt == text


def test_text_after_a_value_stays_in_the_prompt() -> None:
    assert spec("a cat --ar 16:9 in a hat").prompt == "a cat in a hat"


def test_repeated_parameter_last_wins_with_a_note() -> None:
    parsed = parse("x --ar 16:9 --ar 1:1")
    assert parsed.specs[0].aspect == "1:1"
    assert parsed.notes == ["`--ar 1:1` replaces the earlier `--ar 16:9`."]
    assert parsed.specs[0].notes == tuple(parsed.notes)
    assert parse("x --s 10 --stylize 20").notes == ["`--stylize 20` replaces the earlier `--s 10`."]
    assert parse("x --v 5 --model sdxl").specs[0].model == "sdxl"
    assert parse("x --tile --tile").notes == ["`--tile` is given twice; once is enough."]


def test_midjourney_only_parameters_are_dropped_with_a_note() -> None:
    parsed = parse(
        "a cat --sref https://x.com/a.png 2 --cref https://x.com/b.png --profile abc def --exp 25 --sv 4 "
        "--hd --test --testp --upbeta --uplight --weird 500 --iw 2 --p --ar 2:3"
    )
    s = parsed.specs[0]
    assert (s.prompt, s.aspect) == ("a cat", "2:3")
    assert parsed.notes == [
        "Ignored Midjourney parameters this bot does not have: `--sref`, `--cref`, `--profile`, `--exp`, "
        "`--sv`, `--hd`, `--test`, `--testp`, `--upbeta`, `--uplight`, `--weird`, `--iw`, `--p`."
    ]


def test_a_prompt_pasted_from_midjourney_runs() -> None:
    parsed = parse(
        "https://s.mj.run/abc123 portrait of a woman, cinematic lighting\n"
        "—ar 2:3 —style raw —v 6.1 —stylize 250 —sref 12345 —p abc123 —cw 50 —turbo."
    )
    s = parsed.specs[0]
    assert has(s, prompt="portrait of a woman, cinematic lighting", aspect="2:3", model="sdxl")
    assert has(s, stylize=250, width=832, height=1280)
    assert parsed.notes == [
        "Ignored Midjourney parameters this bot does not have: `--sref`, `--p`, `--cw`.",
        "Image prompts are not supported yet; ignored 1 image URL.",
    ]
    assert parsed.lane is Lane.TURBO


@pytest.mark.parametrize(("text", "lane"), [("a cat --relax", Lane.RELAX), ("a cat —fast", Lane.FAST),
                                            ("a cat --TURBO", Lane.TURBO), ("a cat", None)])
def test_lane_flags_choose_the_lane_and_stay_out_of_the_spec(text: str, lane: Lane | None) -> None:
    parsed = parse(text)
    assert parsed.lane is lane
    assert parsed.notes == []
    assert "--relax" not in parsed.canonical and "--fast" not in parsed.canonical


def test_the_last_lane_flag_wins_with_a_note() -> None:
    parsed = parse("a cat --fast --relax")
    assert parsed.lane is Lane.RELAX
    assert parsed.notes == ["`--relax` replaces the earlier `--fast`."]


def test_other_styles_are_dropped_with_a_note() -> None:
    parsed = parse("x --style cute")
    assert not parsed.specs[0].raw
    assert parsed.canonical == "x --seed 1234"
    assert parsed.notes == ["Ignored Midjourney parameters this bot does not have: `--style cute`."]


def test_unknown_versions_and_missing_niji_are_ignored_with_a_note() -> None:
    parsed = parse("x --v 7")
    assert parsed.specs[0].model == "sd15"
    assert parsed.notes == ["`--v 7` matches no model here, so it was ignored."]
    no_niji = parse_prompt("x --niji 6", make_catalog(niji=False), random_seed=lambda: 1)
    assert no_niji.specs[0].model == "sd15"
    assert no_niji.notes == ["`--niji 6`: there is no niji (anime) model here, so it was ignored."]


def test_quality_4_becomes_2_with_a_note() -> None:
    parsed = parse("x --q 4")
    assert parsed.specs[0].quality == 2.0
    assert parsed.notes == ["`--q 4` (older Midjourney versions) is not available here; used `--q 2`, the highest."]


def test_prompts_pasted_from_older_midjourney_versions_run_with_notes() -> None:
    parsed = parse("a castle --s 4000 --q 5 --beta --upbeta --remaster")
    s = parsed.specs[0]
    assert (s.stylize, s.quality) == (1000, 2.0)
    assert parsed.notes == [
        "Ignored Midjourney parameters this bot does not have: `--beta`, `--upbeta`, `--remaster`.",
        "`--s 4000` (older Midjourney versions) is above this bot's 1000; used `--s 1000`.",
        "`--q 5` (older Midjourney versions) is not available here; used `--q 2`, the highest.",
    ]
    # What no version took is still refused, with what to change.
    with pytest.raises(PromptError, match="too high; use a whole number from 0 to 1000"):
        parse("a castle --s 70000")


def test_image_urls_at_the_start_are_set_aside_with_a_note() -> None:
    parsed = parse("https://x.com/a.png <https://x.com/b.jpg> a cat https://x.com/c.png")
    assert parsed.specs[0].prompt == "a cat https://x.com/c.png"
    assert parsed.image_urls == ["https://x.com/a.png", "https://x.com/b.jpg"]
    assert parsed.notes == ["Image prompts are not supported yet; ignored 2 image URLs."]


def test_zero_width_characters_are_removed_with_a_note_but_emoji_joiners_stay() -> None:
    parsed = parse("a\u200b cat -\u200b-ar 16:9 \ufeff👩\u200d💻")
    assert (parsed.specs[0].prompt, parsed.specs[0].aspect) == ("a cat 👩\u200d💻", "16:9")
    assert parsed.notes == ["Removed 3 invisible characters (zero-width spaces or similar) from the prompt."]


# Multi-prompts.


def test_multi_prompt_weights() -> None:
    s = spec("hot dog::2 bun::-0.5")
    assert s.weighted_prompts == (("hot dog", 2.0), ("bun", -0.5))
    assert s.prompt == "hot dog"
    assert canonical_prompt(s, CATALOG) == "hot dog::2 bun::-0.5 --seed 1234"
    assert spec("hot:: dog").weighted_prompts == (("hot", 1.0), ("dog", 1.0))
    assert spec("red::2, blue::.5,").weighted_prompts == (("red", 2.0), ("blue", 0.5))
    assert spec("std::vector").weighted_prompts == (("std", 1.0), ("vector", 1.0))


def test_a_single_weighted_part_is_a_plain_prompt() -> None:
    s = spec("castle::2")
    assert (s.prompt, s.weighted_prompts) == ("castle", ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a::nan b", "`::nan`: a multi-prompt weight must be a number, like `::2` or `::-0.5`."),
        ("a::inf b", "`::inf`: a multi-prompt weight must be a number, like `::2` or `::-0.5`."),
        ("a::2x b", "`::2x`: a multi-prompt weight must be a number, like `::2` or `::-0.5`."),
        ("a::101 b", "`::101`: weights go from -100 to 100; use a smaller one."),
        ("::2 a", "`::2` has no text before it; write what it weighs, like `castle::2`."),
        (
            "a::-1 b::0.5",
            "The multi-prompt weights add up to -0.5; they must add up to more than 0. Raise a "
            "weight or remove a negative one.",
        ),
        (
            "a::1 b::-1",
            "The multi-prompt weights add up to 0; they must add up to more than 0. Raise a weight or "
            "remove a negative one.",
        ),
        ("::".join("abcdefghijklmnopqrstu"), "The multi-prompt has 21 parts; the most is 20."),
    ],
)
def test_multi_prompt_errors(text: str, message: str) -> None:
    assert error(text) == message


# Permutations.


def test_permutations() -> None:
    assert [s.prompt for s in parse("a {red, blue} car").specs] == ["a red car", "a blue car"]
    nested = parse("{a {big, small} dog, a cat} x")
    assert [s.prompt for s in nested.specs] == ["a big dog x", "a small dog x", "a cat x"]
    assert [s.prompt for s in parse("a {b\\, c, d}").specs] == ["a b, c", "a d"]
    assert [s.aspect for s in parse("x --ar {1:1, 16:9}").specs] == ["1:1", "16:9"]
    assert spec("a \\{literal\\} brace").prompt == "a {literal} brace"


def test_permutations_times_repeat_in_order() -> None:
    parsed = parse("{a, b} --r 2 --seed 10")
    assert [(s.prompt, s.seed) for s in parsed.specs] == [("a", 10), ("a", 14), ("b", 10), ("b", 14)]
    assert len(parsed.canonicals) == 4


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (
            "a {b, c",
            {},
            "The `{` at character 3 is never closed. Add a `}`, or write `\\{` for a plain brace.",
        ),
        (
            "a b}",
            {},
            "The `}` at character 4 has no matching `{`. Remove it, or write `\\}` for a plain brace.",
        ),
        (
            "{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}",
            {},
            "The `{}` options make more than 40 prompts; the most is 40. Use fewer options.",
        ),
        (
            "{" * 9 + "a" + "}" * 9,
            {},
            "Braces are nested more than 8 deep (character 9); simplify the permutations.",
        ),
        (
            "{a, b} --r 3",
            {"max_jobs": 5},
            "This prompt makes 6 jobs; the most is 5. Use fewer `{}` options or a smaller `--r`.",
        ),
    ],
)
def test_permutation_errors(text: str, kwargs: dict[str, int], message: str) -> None:
    assert error(text, None, **kwargs) == message


def test_max_jobs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_jobs"):
        parse("x", max_jobs=0)


# Slash-command options.


def test_options_fill_in_and_agree() -> None:
    options = PromptOptions(
        aspect="16:9",
        seed=7,
        model="xl",
        stylize=0,
        chaos=10,
        quality=2.0,
        stop=50,
        tile=True,
        repeat=2,
        steps=20,
        cfg=5.5,
        sampler="ddim",
        negative="blur",
    )
    parsed = parse("x", options)
    s = parsed.specs[0]
    assert has(s, aspect="16:9", seed=7, model="sdxl", stylize=0, chaos=10, quality=2.0, stop=50)
    assert has(s, tile=True, steps=20, guidance_scale=5.5, sampler="ddim", negative_prompt="blur")
    assert len(parsed.specs) == 2
    agreeing = parse(
        "x --ar 32:18 --v 6 --seed 7 --tile", PromptOptions(aspect="16:9", model="sdxl", seed=7, tile=True)
    )
    assert agreeing.specs[0].aspect == "16:9" and agreeing.notes == []


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        (
            "x --ar 1:1",
            PromptOptions(aspect="16:9"),
            "The `aspect: 16:9` option and `--ar 1:1` in the prompt disagree; keep one of them.",
        ),
        (
            "x --seed 1",
            PromptOptions(seed=2),
            "The `seed: 2` option and `--seed 1` in the prompt disagree; keep one of them.",
        ),
        (
            "x --v 5",
            PromptOptions(model="sdxl"),
            "The `model: sdxl` option and `--v 5` in the prompt disagree; keep one of them.",
        ),
        (
            "x --tile",
            PromptOptions(tile=False),
            "The `tile: False` option and `--tile` in the prompt disagree; keep one of them.",
        ),
        (
            "x",
            PromptOptions(stylize=2000),
            "`stylize: 2000`: too high; use a whole number from 0 to 1000, like `--s 250`.",
        ),
        (
            "x",
            PromptOptions(aspect="0:1"),
            "`aspect: 0:1`: both sides of the aspect ratio must be whole numbers above 0, like `--ar 16:9`.",
        ),
        (
            "x",
            PromptOptions(cfg=float("nan")),
            "`cfg: nan`: NaN and infinity are not allowed; use a number from 0 to 30, like `--cfg 7`.",
        ),
        (
            "x",
            PromptOptions(negative="blur --ar 1:1"),
            "The `negative` option cannot hold parameters like `--ar`; put them in the prompt.",
        ),
        (
            "x",
            PromptOptions(negative="a\x00"),
            "The `negative` option contains an invisible control character "
            "(U+0000) at character 2; remove it.",
        ),
    ],
)
def test_option_errors(text: str, options: PromptOptions, message: str) -> None:
    assert error(text, options) == message


def test_option_model_must_exist() -> None:
    with pytest.raises(UnknownModelError):
        parse("x", PromptOptions(model="nope"))


# Bad input: every message.


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The prompt is empty; describe the image, like `a lighthouse at dusk`."),
        ("  \n ", "The prompt is empty; describe the image, like `a lighthouse at dusk`."),
        (
            "--ar 16:9 --seed 1",
            "The prompt has parameters but no description; describe the image first, like "
            "`a lighthouse at dusk --ar 16:9`.",
        ),
        (
            "--hd",
            "The prompt has parameters but no description; describe the image first, like "
            "`a lighthouse at dusk --ar 16:9`.",
        ),
        (
            "https://x.com/a.png --ar 1:1",
            "Image-only prompts are not supported yet; describe the image after the URL.",
        ),
        ("x --asp 3:4", "Unknown parameter `--asp`. Did you mean `--ar`?"),
        ("x --seeds 3", "Unknown parameter `--seeds`. Did you mean `--seed`?"),
        ("x --nopeople", "Unknown parameter `--nopeople`. Did you mean `--no`?"),
        (
            "x --foo",
            "Unknown parameter `--foo`. Remove it; parameters look like `--ar 16:9` or `--no people`.",
        ),
        (
            "x —-foo",
            "Unknown parameter `--foo`. Remove it; parameters look like `--ar 16:9` or `--no people`.",
        ),
        ("x --ar", "`--ar` needs a value, like `--ar 16:9`."),
        ("x --ar --seed 1", "`--ar` needs a value, like `--ar 16:9`."),
        ("x --ar .", "`--ar` needs a value, like `--ar 16:9`."),
        ("x --no", "`--no` needs a value, like `--no people, cars`."),
        ("x --no --ar 1:1", "`--no` needs a value, like `--no people, cars`."),
        ("x --model", "`--model` needs a value, like `--model sdxl`."),
        ("x --tile2", "`--tile` takes no value; remove `2`."),
        (
            "x --ar 0:1",
            "`--ar 0:1`: both sides of the aspect ratio must be whole numbers above 0, like `--ar 16:9`.",
        ),
        (
            "x --ar 1.5:1",
            "`--ar 1.5:1`: both sides of the aspect ratio must be whole numbers above 0, like `--ar 16:9`.",
        ),
        (
            "x --ar -16:9",
            "`--ar -16:9`: both sides of the aspect ratio must be whole numbers above 0, like `--ar 16:9`.",
        ),
        (
            "x --ar 16x9",
            "`--ar 16x9`: write the aspect ratio as two whole numbers with a colon, like `--ar 16:9`.",
        ),
        (
            "x --ar nan:1",
            "`--ar nan:1`: write the aspect ratio as two whole numbers with a colon, like `--ar 16:9`.",
        ),
        (
            "x --ar 5:1",
            "`--ar 5:1`: the aspect ratio must be between 1:4 and 4:1, like `--ar 9:16` or `--ar 21:9`.",
        ),
        (
            "x --ar 1:5",
            "`--ar 1:5`: the aspect ratio must be between 1:4 and 4:1, like `--ar 9:16` or `--ar 21:9`.",
        ),
        ("x --seed -1", "`--seed -1`: too low; use a whole number from 0 to 4294967295, like `--seed 42`."),
        (
            "x --seed 4294967296",
            "`--seed 4294967296`: too high; use a whole number from 0 to 4294967295, like `--seed 42`.",
        ),
        (
            "x --seed 4.2",
            "`--seed 4.2`: no decimals; use a whole number from 0 to 4294967295, like `--seed 42`.",
        ),
        (
            "x --seed abc",
            "`--seed abc`: not a number; use a whole number from 0 to 4294967295, like `--seed 42`.",
        ),
        (
            "x --s nan",
            "`--s nan`: NaN and infinity are not allowed; use a whole number from 0 to 1000, like `--s 250`.",
        ),
        ("x --s 60001", "`--s 60001`: too high; use a whole number from 0 to 1000, like `--s 250`."),
        ("x --c 101", "`--c 101`: too high; use a whole number from 0 to 100, like `--c 20`."),
        ("x --chaos -1", "`--chaos -1`: too low; use a whole number from 0 to 100, like `--c 20`."),
        ("x --q 3", "`--q 3`: use one of .25, .5, 1 or 2, like `--q 2`."),
        ("x --q nan", "`--q nan`: use one of .25, .5, 1 or 2, like `--q 2`."),
        ("x --stop 9", "`--stop 9`: too low; use a whole number from 10 to 100, like `--stop 80`."),
        ("x --r 0", "`--r 0`: too low; use a whole number from 1 to 40, like `--r 4`."),
        ("x --r 41", "`--r 41`: too high; use a whole number from 1 to 40, like `--r 4`."),
        ("x --steps 151", "`--steps 151`: too high; use a whole number from 1 to 150, like `--steps 40`."),
        (
            "x --cfg inf",
            "`--cfg inf`: NaN and infinity are not allowed; use a number from 0 to 30, like `--cfg 7`.",
        ),
        ("x --cfg 31", "`--cfg 31`: too high; use a number from 0 to 30, like `--cfg 7`."),
        ("x --cfg -1", "`--cfg -1`: too low; use a number from 0 to 30, like `--cfg 7`."),
        ("x --cfg 1e3", "`--cfg 1e3`: not a number; use a number from 0 to 30, like `--cfg 7`."),
        (
            "x --sampler foo",
            "`--sampler foo`: use one of euler, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, unipc.",
        ),
        ("x --v", "`--v` needs a value, like `--v 6`."),
        (
            "a\x07 cat",
            "The prompt contains an invisible control character (U+0007) at character 2; remove it.",
        ),
        ("a \ud800 cat", "The prompt contains a broken character (U+D800) at character 3; retype that part."),
        (
            "x" * (MAX_PROMPT_CHARS + 1),
            f"The prompt's text is {MAX_PROMPT_CHARS + 1} characters long; the most is "
            f"{MAX_PROMPT_CHARS} (parameters not counted). Shorten it.",
        ),
        (
            "x" * (MAX_INPUT_CHARS + 1),
            f"The prompt is {MAX_INPUT_CHARS + 1} characters long; the most is "
            f"{MAX_INPUT_CHARS}. Shorten it.",
        ),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    assert error(text) == message


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(
        UnknownModelError, match=r"Unknown model `nope`\. Choose one of: `sd15`, `sdxl`, `anime`\."
    ):
        parse("x --model nope")


def test_length_limit_counts_text_and_negative_but_not_parameters() -> None:
    text = "x" * 1000 + " --no " + "y" * 499 + " --ar 16:9 --seed 1 --s 250 --c 5 --q 2 --stop 50 --tile"
    assert len(spec(text).negative_prompt) == 499
    assert "1501 characters" in error("x" * 1000 + " --no " + "y" * 501)


# Canonical form.


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a cat", "a cat --seed 1234"),
        ("a cat --seed 5 --ar 1:1 --s 100 --q 1 --stop 100 --c 0", "a cat --seed 5 --s 100"),
        (
            "a cat —ar 32:18. --no dogs. --tile --seed 5",
            "a cat --ar 16:9 --seed 5 --no dogs --tile",
        ),
        (
            "a cat --q .5 --steps 40 --cfg 4.25 --sampler euler --v 6 --seed 1",
            "a cat --seed 1 --q 0.5 --model sdxl --steps 40 --cfg 4.25 --sampler euler",
        ),
        ("a cat --c 20 --stop 80 --seed 1 --steps 30 --cfg 7", "a cat --seed 1 --c 20 --stop 80"),
        ("a \\{b\\} c\\\\d --no \\{x\\}", "a \\{b\\} c\\\\d --seed 1234 --no \\{x\\}"),
        ("a: ::2 b", "a: ::2 b::1 --seed 1234"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    parsed = parse(text)
    assert parsed.canonical == canonical
    assert parse(canonical).specs == [s.replace(notes=()) for s in parsed.specs]


def test_canonical_names_a_model_the_catalog_lacks() -> None:
    s = spec("x --seed 1").replace(model="gone", sampler="ddim")
    assert canonical_prompt(s, CATALOG) == "x --seed 1 --model gone --steps 30 --cfg 7 --sampler ddim"


# `imagine parse`.


def test_spec_json() -> None:
    data = spec_json(parse("a {red, blue} car --ar 16:9 --seed 42 --no people --sref abc"))
    for key in (
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "seed",
        "steps",
        "guidance_scale",
        "model",
        "tile",
        "sampler",
        "chaos",
        "stylize",
        "quality",
        "stop",
        "aspect",
        "weighted_prompts",
        "canonical",
    ):
        assert key in data
    assert (data["prompt"], data["width"], data["height"], data["seed"]) == ("a red car", 704, 384, 42)
    assert data["image_seeds"] == [image_seed(42, i) for i in range(4)]
    assert [job["prompt"] for job in data["jobs"]] == ["a red car", "a blue car"]
    assert data["notes"] == ["Ignored Midjourney parameters this bot does not have: `--sref`."]
    json.dumps(data)


def test_main_parse() -> None:
    code, out = main_parse("a lighthouse --ar 16:9 --seed 42", CATALOG)
    assert code == 0
    assert json.loads(out)["canonical"] == "a lighthouse --ar 16:9 --seed 42"
    assert main_parse("a lighthouse --asp 16:9", CATALOG) == (
        2,
        "error: Unknown parameter `--asp`. Did you mean `--ar`?",
    )


def test_spec_dict_round_trip() -> None:
    s = spec("a::2 b::1 --seed 3 --no x --q 2")
    assert JobSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_domain_imports_no_adapters() -> None:
    code = (
        "import sys, domain.prompt, domain.params, domain.aspect, domain.permutations\n"
        "bad = [m for m in ('discord', 'torch', 'sqlalchemy', 'diffusers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
