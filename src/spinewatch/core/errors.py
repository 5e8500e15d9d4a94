"""The root of SpineWatch's input errors.

Every error raised because *input* was wrong (a file, a value typed by a person, a CLI argument)
subclasses :class:`InputError`, itself a :class:`ValueError`. The command line turns exactly these
into one message and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Input that SpineWatch refuses; the message names the value and what was expected."""
