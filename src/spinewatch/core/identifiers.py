"""Hospital numbers: one person, one number, however it is typed.

A hospital number (the PACS' PatientID) is typed by people and by machines in several spellings
of the same value: ``"demo 00002"``, ``"demo-00002"``, ``"DEMO-00002"``. The registry keeps the
number as typed (tidied: surrounding space stripped, letters upper-cased, runs of spaces made one)
for display and for the PACS, and compares numbers by their *key*: the letters and digits only,
upper-cased. Two numbers with the same key are the same number.

>>> hospital_number_key(" demo-00002 ")
'DEMO00002'
>>> tidy_hospital_number(" demo  00002 ")
'DEMO 00002'
"""

from __future__ import annotations

import re
import unicodedata

from spinewatch.core.errors import InputError

__all__ = [
    "HospitalNumberError",
    "hospital_number_key",
    "names_match",
    "search_key",
    "tidy_hospital_number",
]

_SEPARATORS = re.compile(r"[\s\-./_]+")
_ALLOWED = re.compile(r"[A-Z0-9 \-./_]+")


class HospitalNumberError(InputError):
    """A hospital number that is empty, too long or holds characters other than letters,
    digits, spaces and the separators ``- . / _``."""


def tidy_hospital_number(value: object) -> str:
    """The number as stored: stripped, upper-case, single spaces; refused when unusable."""
    if not isinstance(value, str):
        raise HospitalNumberError(f"hospital number {value!r}: expected text")
    text = " ".join(unicodedata.normalize("NFKC", value).upper().split())
    if not text:
        raise HospitalNumberError("hospital number '': expected letters and digits")
    if len(text) > 64 or not _ALLOWED.fullmatch(text):
        raise HospitalNumberError(
            f"hospital number {value!r}: expected at most 64 letters and digits, optionally "
            "separated by spaces, '-', '.', '/' or '_'"
        )
    if not hospital_number_key(text):
        raise HospitalNumberError(
            f"hospital number {value!r}: expected at least one letter or digit"
        )
    return text


def hospital_number_key(value: str) -> str:
    """The comparison key: letters and digits only, upper case (case, spaces and dashes ignored)."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value).upper())


def _name_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def names_match(a: str, b: str) -> bool:
    """Whether two names are the same when case, accents, spaces and hyphens are ignored
    (``"Müller-Smith"`` and ``"muller smith"``)."""
    return bool(_name_key(a)) and _name_key(a) == _name_key(b)


def search_key(text: str) -> str:
    """Text as it is searched: accents stripped, case folded, whitespace collapsed to one
    space (``"  Müller-SMITH "`` -> ``"muller-smith"``). The registry stores it for each identity
    (an indexed column) and searches it with the key of what was typed.

    >>> search_key("Ørsted  Zoë")
    'ørsted zoe'
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())
