"""Errors of the job domain.

Every error here is *expected*: its message is written for the person who typed the command and is
shown to them as it is (ephemerally in Discord, on stderr in the CLI).

    DomainError
    ├── PromptError          the prompt or one of its parameters cannot be used
    │   └── UnknownModelError  the prompt names a model the models file does not have
    ├── CatalogError         the models file itself is malformed (an operator's error)
    ├── PlanError            the plans file is malformed, or a command names a plan it does not have
    └── RefusedError         a request is refused by the user's plan or standing; nothing was changed
        ├── BannedError        the user is banned
        ├── LimitError         too many jobs waiting or running in a lane
        ├── OutOfFastTimeError no fast time left, and the plan has no relax mode
        ├── NotAllowedError    the plan does not include this (relax, turbo, stealth), or not an admin
        ├── PromptBlockedError the server's content filter blocked the prompt
        └── SlowDownError      the member sends commands faster than the rate limit allows
"""

from __future__ import annotations

from domain.moderation import blocked_message

__all__ = [
    "BannedError",
    "CatalogError",
    "DomainError",
    "LimitError",
    "NotAllowedError",
    "OutOfFastTimeError",
    "PlanError",
    "PromptBlockedError",
    "PromptError",
    "RefusedError",
    "SlowDownError",
    "UnknownModelError",
]


class DomainError(Exception):
    """Base class: the message is safe and useful to show to the user."""


class PromptError(DomainError):
    """The prompt or one of its parameters is invalid; the message says what to change."""


class UnknownModelError(PromptError):
    """A model name that is not in the models file."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        choices = ", ".join(f"`{k}`" for k in known) or "(none configured)"
        super().__init__(f"Unknown model `{name}`. Choose one of: {choices}.")


class CatalogError(DomainError):
    """The models file cannot be read; raised at start-up, not per request."""


class PlanError(DomainError):
    """The plans file cannot be read (at start-up), or a command names an unknown plan."""


class RefusedError(DomainError):
    """A request the user's plan or standing does not allow. Raised before anything is written, or inside
    the submit transaction so that it rolls back: a refusal leaves no job row and no reservation."""


class BannedError(RefusedError):
    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        why = f" Reason: {reason}" if reason else ""
        super().__init__(f"You are banned from using this bot.{why}")


class LimitError(RefusedError):
    """Too many jobs waiting or running in one lane."""

    def __init__(self, lane: str, active: int, limit: int) -> None:
        self.lane, self.active, self.limit = lane, active, limit
        super().__init__(
            f"You already have {active} {lane} job{'s' if active != 1 else ''} waiting or running, and your "
            f"plan allows {limit} at a time. Wait for one to finish, then try again."
        )


class OutOfFastTimeError(RefusedError):
    """No fast GPU time left for this job, and the plan has no relax mode to fall back to."""


class NotAllowedError(RefusedError):
    """The plan does not include a feature, or the user may not run an (admin) command."""


class PromptBlockedError(RefusedError):
    """The content filter found a blocked term in the prompt (``domain.moderation``)."""

    def __init__(self, term: str, prompt: str) -> None:
        self.term, self.prompt = term, prompt
        super().__init__(blocked_message(term))


class SlowDownError(RefusedError):
    """The member's command rate limit (a token bucket shared by every bot process) is used up for now."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(f"Slow down: you're sending commands faster than this bot allows. "
                         f"Try again in {seconds} s.")
