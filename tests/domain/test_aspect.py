"""Aspect ratios to pixel sizes."""

from __future__ import annotations

import pytest

from domain.aspect import parse_aspect, size_for_aspect


@pytest.mark.parametrize(
    ("ratio", "budget", "size"),
    [
        ((1, 1), 512 * 512, (512, 512)),
        ((16, 9), 512 * 512, (704, 384)),
        ((2, 3), 512 * 512, (448, 640)),
        ((1, 1), 1024 * 1024, (1024, 1024)),
        ((16, 9), 1024 * 1024, (1344, 768)),
        ((9, 16), 1024 * 1024, (768, 1344)),
        ((21, 9), 1024 * 1024, (1536, 640)),
        ((4, 1), 512 * 512, (1024, 256)),
    ],
)
def test_sizes(ratio: tuple[int, int], budget: int, size: tuple[int, int]) -> None:
    assert size_for_aspect(*ratio, budget) == size


def test_ratios_are_reduced() -> None:
    assert parse_aspect("32:18") == (16, 9)
    assert parse_aspect("1920:1080") == (16, 9)
    assert parse_aspect("4:1") == (4, 1)


def test_huge_sides_do_not_overflow() -> None:
    assert parse_aspect("1" + "0" * 400 + ":" + "1" + "0" * 400) == (1, 1)
    with pytest.raises(ValueError, match="between 1:4 and 4:1"):
        parse_aspect("1" + "0" * 400 + ":1")
