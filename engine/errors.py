"""Errors the engine raises. Each carries one sentence a user can act on."""

from __future__ import annotations


class InitscopeError(Exception):
    """Base class: every error the engine raises on purpose."""


class SpecError(InitscopeError, ValueError):
    """Bad user input: names the field, the value and what is allowed.

    str(err) is one sentence: "<field>: <value> is not valid; <allowed>."
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = value if isinstance(value, str) else repr(value)
        super().__init__(f"{field}: {shown!r} is not valid; {allowed}.")


class RunError(InitscopeError, RuntimeError):
    """A failure while running a valid spec (device missing, out of memory, bad file contents)."""


class Cancelled(InitscopeError):
    """The caller's cancellation check returned True; the run stopped between layers."""
