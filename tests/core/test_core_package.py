"""The core package: standard library only, explicit public API, runnable docstring examples."""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import spinewatch.core

CORE_DIR = Path(spinewatch.core.__file__).parent
MODULES = sorted(p.stem for p in CORE_DIR.glob("*.py") if p.stem != "__init__")


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(CORE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_the_standard_library(path: Path) -> None:
    for root in _imported_roots(path):
        if root == "spinewatch":
            continue
        assert root in sys.stdlib_module_names or root == "__future__", f"{path.name}: {root}"
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spine"):
            assert node.module.startswith("spinewatch.core"), f"{path.name}: {node.module}"


def test_importing_core_loads_no_third_party_package() -> None:
    code = (
        "import sys, spinewatch.core\n"
        "bad = sorted(m for m in ('django', 'numpy', 'pandas', 'scipy') if m in sys.modules)\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_all_and_exports_exist(name: str) -> None:
    module = importlib.import_module(f"spinewatch.core.{name}")
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol}"


def test_package_reexports_every_public_name() -> None:
    public = set(spinewatch.core.__all__)
    for name in MODULES:
        if name.startswith("_"):
            continue
        module = importlib.import_module(f"spinewatch.core.{name}")
        # Module constants stay in their module; every class and function is re-exported.
        missing = {n for n in module.__all__ if not n.isupper()} - public
        assert not missing, f"{name}: {sorted(missing)}"
    for symbol in public:
        assert getattr(spinewatch.core, symbol) is not None


def test_every_error_is_an_input_error() -> None:
    errors = [getattr(spinewatch.core, n) for n in spinewatch.core.__all__ if n.endswith("Error")]
    assert len(errors) >= 10
    for error in errors:
        assert issubclass(error, spinewatch.core.InputError)
        assert issubclass(error, ValueError)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"spinewatch.core.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
