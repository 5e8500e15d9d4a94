"""Output paths of the command line: checked before any work, written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from spinewatch.core.errors import InputError

__all__ = ["OutputPathError", "check_output_dir", "check_output_file", "write_text_atomic"]


class OutputPathError(InputError):
    """An output option naming a path that cannot be used (a file where a folder is wanted...)."""


def check_output_dir(path: Path | None, option: str) -> None:
    """``path`` must be a folder or not exist yet (it is created later); checked at start-up so
    an analysis does not run for minutes and then fail to write."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise OutputPathError(
            f"{option} {path}: exists and is not a folder; expected a folder (existing or new)"
        )
    parent = next((p for p in (path, *path.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder")


def check_output_file(path: Path | None, option: str) -> None:
    """``path`` must not be a folder, and its parent must not be a file."""
    if path is None:
        return
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; expected a file name")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
