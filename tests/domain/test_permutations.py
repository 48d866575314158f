"""Permutation prompts."""

from __future__ import annotations

import pytest

from domain.errors import PromptError
from domain.permutations import escape_braces, expand_permutations


def test_expansion_order_and_nesting() -> None:
    assert expand_permutations("{a, b} {1, 2}", 10) == ["a 1", "a  2", " b 1", " b  2"]
    assert expand_permutations("{x{1,2},y}", 10) == ["x1", "x2", "y"]
    assert expand_permutations("{,big }dog", 10) == ["dog", "big dog"]


def test_escapes() -> None:
    assert expand_permutations("{a\\, b, c}", 10) == ["a, b", " c"]
    assert expand_permutations("\\{not\\} \\\\ \\x", 10) == ["{not} \\ \\x"]
    text = "odd {braces}, \\back\\slashes\\"
    assert expand_permutations(escape_braces(text), 1) == [text]


def test_the_count_is_checked_before_expanding() -> None:
    with pytest.raises(PromptError, match="more than 40 prompts"):
        expand_permutations("{a,b}" * 200, 40)
    assert len(expand_permutations("{a,b}" * 5, 32)) == 32


def test_long_flat_text_does_not_recurse() -> None:
    assert expand_permutations("{a}" * 3000, 1) == ["a" * 3000]
