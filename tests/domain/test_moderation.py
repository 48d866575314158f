"""The prompt filter both ways: the usual tricks are caught, innocent lookalikes pass; the image policy and
who may see a job."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.moderation import (
    DEFAULT_BLOCKED,
    ImageAction,
    PromptFilter,
    check_term,
    image_action,
    may_see_job,
    same_place,
)

FILTER = PromptFilter.build()

CAUGHT = [
    ("a nude woman on the beach", "nude"),
    ("a n u d e w0man", "nude"),  # the two prompts
    ("A NUDE woman", "nude"),
    ("a nüde woman", "nude"),  # diacritics
    ("a nu\u200bde woman", "nude"),  # zero-width space
    ("a nu\u00adde woman", "nude"),  # soft hyphen
    ("a ｎｕｄｅ woman", "nude"),  # fullwidth
    ("a 𝐧𝐮𝐝𝐞 woman", "nude"),  # mathematical bold
    ("a nud\u0435 woman", "nude"),  # Cyrillic е
    ("a n.u.d.e woman", "nude"),
    ("a n-u-d-e woman", "nude"),
    ("a n_u_d_e woman", "nude"),
    ("a nu*de woman", "nude"),
    ("a nu de woman", "nude"),
    ("nude!", "nude"),
    ("two nudes", "nude"),
    ("a n4k3d man", "naked"),
    ("p0rn", "porn"),
    ("pornstar", "porn"),  # a prefix term
    ("$3x", "sex"),
    ("s e x", "sex"),
    ("N1PPLES", "nipple"),
    ("some child porn", "porn"),
    ("a decapitated knight", "decapitated"),
]

INNOCENT = [
    "Scunthorpe United at dusk",
    "the Sussex coast, Essex and Middlesex",
    "a sextant on a captain's desk",
    "the sexton rings the bell",
    "Penistone railway station",
    "a nudibranch in a rock pool",
    "an assassin in the rain",
    "the title card of a film",
    "a blue tit on a branch",
    "summa cum laude",
    "a cocktail at sunset",
    "an analysis of grapes",
    "a skyscraper at night",
    "self-portrait in oil, 4k, 3d render, 1920s",
    "his ex is on the bus",
    "a therapist's office",
    "Dick Van Dyke dancing",
    "button mushrooms",
    "essex girls",
]


@pytest.mark.parametrize(("prompt", "term"), CAUGHT)
def test_the_usual_tricks_are_caught(prompt: str, term: str) -> None:
    assert FILTER.find(prompt) == term


@pytest.mark.parametrize("prompt", INNOCENT)
def test_innocent_lookalikes_pass(prompt: str) -> None:
    assert FILTER.find(prompt) is None


def test_punctuation_makes_each_part_a_word_too() -> None:
    # "naked-eye" is the words naked, eye and nakedeye: naked is blocked, as a server can change.
    assert FILTER.find("a naked-eye view of the comet") == "naked"
    assert PromptFilter.build(exceptions=["naked"]).find("a naked-eye view of the comet") is None


def test_a_server_adds_terms_and_makes_exceptions() -> None:
    server = PromptFilter.build(additions=["clown", "red nose", "goblin*"], exceptions=["nude"])
    assert server.find("a CL0WN at a party") == "clown"
    assert server.find("a jester's red noses") == "red nose"
    assert server.find("goblincore cottage") == "goblin"
    assert server.find("a nude study in charcoal") is None  # this server's exception
    assert server.find("a naked man") == "naked"  # the rest of the defaults still hold
    assert server.find("a red sweater with a nose") is None  # a phrase matches its words in a row
    assert FILTER.find("a CL0WN at a party") is None  # another server's filter is not this one


def test_terms_an_admin_types_are_checked() -> None:
    assert check_term("  N00b* ") == "noob*"
    with pytest.raises(ValueError, match="at least two"):
        check_term("*")
    with pytest.raises(ValueError, match="at most"):
        check_term("x" * 61)
    with pytest.raises(ValueError, match="control"):
        check_term("bad\x00word")


@given(st.text(max_size=300))
def test_the_filter_never_fails_on_any_text(text: str) -> None:
    found = FILTER.find(text)
    assert found is None or found in {t.rstrip("*") for t in DEFAULT_BLOCKED}


@given(st.sampled_from(["nude", "porn", "hentai", "naked"]), st.sampled_from(["", " ", ".", "-", "\u200b"]),
       st.booleans())
def test_a_blocked_word_spelled_out_with_separators_is_caught(word: str, separator: str, upper: bool) -> None:
    spelled = separator.join(word.upper() if upper else word)
    assert FILTER.find(f"a photo of {spelled} people") is not None


def test_image_action_channel_first_then_the_servers_kind_of_channel_then_the_default() -> None:
    assert image_action(channel=None, server=None, server_age_restricted=None,
                        age_restricted=False) is ImageAction.BLOCK
    assert image_action(channel=None, server=None, server_age_restricted=None,
                        age_restricted=True) is ImageAction.SPOILER
    assert image_action(channel=None, server=ImageAction.SPOILER, server_age_restricted=ImageAction.ALLOW,
                        age_restricted=True) is ImageAction.ALLOW
    assert image_action(channel=ImageAction.ALLOW, server=ImageAction.BLOCK, server_age_restricted=None,
                        age_restricted=False) is ImageAction.ALLOW


def test_a_stealth_job_is_shown_to_its_owner_only_and_clicks_stay_where_the_job_was_made() -> None:
    assert may_see_job(owner_id=1, stealth=True, viewer_id=1)
    assert not may_see_job(owner_id=1, stealth=True, viewer_id=2)
    assert may_see_job(owner_id=1, stealth=False, viewer_id=2)
    assert same_place(job_guild_id=5, job_channel_id=6, guild_id=5, channel_id=6)
    assert not same_place(job_guild_id=5, job_channel_id=6, guild_id=7, channel_id=6)
    assert not same_place(job_guild_id=5, job_channel_id=6, guild_id=5, channel_id=8)
