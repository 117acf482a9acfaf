"""The one exception type that the CLI turns into a one-line message and exit code 2.

Raise `InputError` for anything a user can fix (a bad file, field or value); its message must
name the file or field and say what was expected. Any other exception is a bug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class HepablateError(Exception):
    """Base class of errors that are reported to the user without a traceback."""

    exit_code: int = 2


class InputError(HepablateError):
    """Bad input: a missing or unreadable file, an invalid field, an impossible request."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        parts = []
        if source:
            parts.append(str(source))
        if field:
            parts.append(f"field '{field}'")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def input_error_from_validation(
    exc: ValidationError, *, source: str | None = None, default_field: str | None = None
) -> InputError:
    """The first problem of a pydantic `ValidationError` as an `InputError` naming its field
    (dotted location, e.g. ``structures.0.name``)."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or default_field
    return InputError(err["msg"].removeprefix("Value error, "), source=source, field=loc)
