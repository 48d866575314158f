"""Surviving what the gateway sends: a malformed event is logged and dropped, never the end of the bot.

discord.py parses each dispatch with ``ConnectionState.parsers[<EVENT>](data)``, called from the gateway
reader; an exception there (a field Discord or a proxy left out, e.g. an INTERACTION_CREATE without
``attachment_size_limit``) ends ``Client.connect`` and so the process. Each parser is wrapped once here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["drop_malformed_events"]

log = logging.getLogger(__name__)


def drop_malformed_events(parsers: dict[str, Callable[[Any], None]]) -> None:
    """Wrap every gateway event parser so that one that raises logs the event and drops it."""
    for event, parser in list(parsers.items()):
        if getattr(parser, "__wrapped__", None) is not None:
            continue
        parsers[event] = _guarded(event, parser)


def _guarded(event: str, parser: Callable[[Any], None]) -> Callable[[Any], None]:
    @functools.wraps(parser)
    def parse(data: Any) -> None:
        try:
            parser(data)
        except Exception as exc:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            log.warning("dropped a malformed %s event (%s: %s); its fields: %s", event, type(exc).__name__, exc, keys)
            return

    return parse
