"""One helper that parses every SpineWatch vocabulary enum at the boundary.

Tolerant-but-explicit reading: a member, its value or its name is accepted, case-insensitively,
with surrounding whitespace ignored and ``-`` or a space read as ``_`` (so ``"CT-fluoroscopy"``,
``"ct fluoroscopy"`` and ``"ct_fluoroscopy"`` are the same). Anything else raises the calling
module's error, naming the value and listing the choices.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from spinewatch.core.errors import InputError

__all__ = ["choices_text", "normalise_token", "parse_enum"]

E = TypeVar("E", bound=enum.Enum)


def normalise_token(text: str) -> str:
    """Lower-case, strip, read ``-`` and spaces as ``_`` (``" CT-Fluoro "`` -> ``"ct_fluoro"``)."""
    return "_".join(text.strip().lower().replace("-", " ").replace("_", " ").split())


def choices_text(enum_cls: type[enum.Enum]) -> str:
    """The accepted values of ``enum_cls`` as ``'a', 'b', 'c'`` for error messages."""
    return ", ".join(repr(member.value) for member in enum_cls)


def parse_enum(
    enum_cls: type[E],
    value: object,
    *,
    what: str,
    error: type[InputError] = InputError,
) -> E:
    """Return the member of ``enum_cls`` that ``value`` designates.

    ``value`` may be a member, its value (strings compared after :func:`normalise_token`;
    non-string values, e.g. ints of an ``IntEnum``, compared as they are -- never ``bool``) or its
    name (case-insensitive). ``what`` names the concept in the message (``"approach"``); ``error``
    is the module's :class:`InputError` subclass that is raised.
    """
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        token = normalise_token(value)
        if token:
            for member in enum_cls:
                if isinstance(member.value, str) and normalise_token(member.value) == token:
                    return member
            for member in enum_cls:
                if normalise_token(member.name) == token:
                    return member
            for member in enum_cls:
                if not isinstance(member.value, str) and str(member.value) == token:
                    return member
    elif not isinstance(value, bool) and not isinstance(value, enum.Enum):
        for member in enum_cls:
            if type(member.value) is type(value) and member.value == value:
                return member
            if isinstance(member, int) and isinstance(value, int) and int(member) == value:
                return member
    raise error(f"{what} {value!r} is not recognised; expected one of {choices_text(enum_cls)}")
