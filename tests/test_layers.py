"""Imports point inward: imaging and outcomes never import Django (they run in a notebook, a
batch worker or a test without a database)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["spinewatch.imaging", "spinewatch.outcomes"])
def test_imaging_and_outcomes_import_no_django(package: str) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "names = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), sorted(m for m in sys.modules if m.split('.')[0] == 'django')[:3])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split(maxsplit=1)
    assert int(out[0]) >= 5  # the walk found the modules
    assert out[1].strip() == "[]"
