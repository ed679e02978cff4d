"""Errors the engine raises. Each carries one sentence a user can act on."""

from __future__ import annotations


class InitscopeError(Exception):
    """Base class: every error the engine raises on purpose."""


# How a suggested fix (a field and the value to give it) is worded where the error is shown.
FIX_WORDING = {
    "cli": "use --{field} {value}",  # the command line's flags
    "app": "set the {field} field to {value}",  # the TUI's form fields
}


class SpecError(InitscopeError, ValueError):
    """Bad user input: names the field, the value and what is allowed.

    str(err) is one sentence: "<field>: <value> is not valid; <allowed>." With `fix` = (field, value),
    the value that would work, it ends "; <fix>", worded by message(where) for the command line
    ("use --arch 64-50-10", also str(err)) or the app ("set the arch field to 64-50-10").
    """

    def __init__(self, field: str, value: object, allowed: str, fix: tuple[str, str] | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.fix = fix
        super().__init__(self.message("cli"))

    def message(self, where: str = "cli") -> str:
        """The sentence for `where` ("cli" or "app"): only the suggested fix's wording differs."""
        fix = "" if self.fix is None else "; " + FIX_WORDING[where].format(field=self.fix[0], value=self.fix[1])
        return f"{self.field}: {_shown(self.value)!r} is not valid; {self.allowed}{fix}."


MAX_SHOWN = 120


def _shown(value: object) -> str:
    """The value as the message quotes it: its text, cut to MAX_SHOWN characters (a 5,000-digit number
    is named by its start and its length, so the sentence stays one readable line)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = repr(value)
        except ValueError:  # an int of more than 4,300 digits has no repr
            text = f"{type(value).__name__} of {value.bit_length()} bits" if isinstance(value, int) else "?"
    if len(text) > MAX_SHOWN:
        text = f"{text[:MAX_SHOWN - 20]}... ({len(text)} characters)"
    return text


class RunError(InitscopeError, RuntimeError):
    """A failure while running a valid spec (device missing, out of memory, bad file contents)."""


class Cancelled(InitscopeError):
    """The caller's cancellation check returned True; the run stopped between layers."""
