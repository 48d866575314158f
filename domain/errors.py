"""Errors of the job domain.

Every error here is *expected*: its message is written for the person who typed the command and is
shown to them as it is (ephemerally in Discord, on stderr in the CLI).

    DomainError
    ├── PromptError        the prompt or one of its parameters cannot be used
    ├── UnknownModelError  the prompt names a model the models file does not have
    └── CatalogError       the models file itself is malformed (an operator's error)
"""

from __future__ import annotations

__all__ = ["CatalogError", "DomainError", "PromptError", "UnknownModelError"]


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
