"""Waiting for state another process writes (no fixed sleeps in tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout: float = 30.0,
                     every: float = 0.1) -> T:
    """Call ``read`` until ``accept`` says yes; return that value, or fail with the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(every)
