"""The root of SpineWatch's input errors, and the one-line message every edge shows for them.

Every error raised because *input* was wrong (a file, a value typed by a person, a CLI argument)
subclasses :class:`InputError`, itself a :class:`ValueError`. :func:`user_message` turns an
input error -- or an error of the operating system around the input (a missing or unreadable
file, a full disk, an output path that is a file) or a lack of memory -- into the one line the
command line prints (exit status 2) and the web worker stores as the job's message; it returns
``None`` for anything else, which is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno

__all__ = ["InputError", "user_message"]


class InputError(ValueError):
    """Input that SpineWatch refuses; the message names the value and what was expected.

    ``field`` (optional) is the path of the offending field in the input, in the input's own
    names: ``"vas"``, ``"follow_ups[2].vas"``, ``"vertebrae[3].lytic_fraction"``. A form
    attaches the message to that field; without it the message belongs to the whole input.

    >>> err = InputError("vas 12: expected 0-10", field="follow_ups[2].vas")
    >>> err.field, str(err)
    ('follow_ups[2].vas', 'vas 12: expected 0-10')
    """

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        # keep the field path across pickling (batch workers, job processes)
        return (_rebuild, (type(self), self.args, self.field, self.__dict__))


def _rebuild(
    cls: type[InputError], args: tuple[object, ...], field: str | None, state: dict[str, object]
) -> InputError:
    err = cls.__new__(cls)
    ValueError.__init__(err, *args)
    err.__dict__.update(state)
    err.field = field
    return err


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the disk"
    where = ""
    if getattr(exc, "filename", None) is not None:
        where = f": {exc.filename}"
        if getattr(exc, "filename2", None) is not None:
            where += f" -> {exc.filename2}"
    return f"{reason}{where}"


def user_message(exc: BaseException) -> str | None:
    """The one-line message for an input, operating-system or memory error; else ``None``.

    >>> user_message(InputError("ct.nii: tag Rows is empty"))
    'ct.nii: tag Rows is empty'
    >>> user_message(FileExistsError(17, "File exists", "out"))
    'File exists: out'
    >>> user_message(KeyError("x")) is None
    True
    """
    if isinstance(exc, InputError):
        return _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        return _one_line(_os_message(exc))
    if isinstance(exc, MemoryError):
        return (
            "not enough memory to read or analyse this input; the input limits "
            "(SPINEWATCH_MAX_IMAGE_BYTES and related settings) may be set too high for this "
            "machine"
        )
    return None
