"""The local Hub and the Bedrock emulator are independent oracles: they import nothing from the product package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[2] / "cli" / "modelferry_cli" / "local"


def imported_modules(source: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("package", ["hub", "bedrock"])
def test_the_emulator_package_imports_nothing_from_modelferry(package: str) -> None:
    sources = sorted((LOCAL / package).glob("*.py"))
    assert len(sources) > 2, f"{package}: expected a package of several modules"
    product = {
        f"{source.name}: {module}"
        for source in sources
        for module in imported_modules(source)
        if module == "modelferry" or module.startswith("modelferry.")
    }
    assert product == set()
