"""The dependency rule, checked on the source: the core imports no I/O library or adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SHELL = {"bot/bootstrap.py", "bot/cli.py"}  # the composition root and the CLI wire real parts
FORBIDDEN_IN_CORE = {"adapters", "storage", "httpx", "slack_bolt", "slack_sdk", "discord",
                     "sqlite_utils", "sqlite3", "apscheduler", "dotenv", "click"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


CORE = sorted(p for p in (ROOT / "bot").rglob("*.py")
              if p.relative_to(ROOT).as_posix() not in SHELL)


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_core_imports_no_adapter_storage_or_io_library(path: Path) -> None:
    assert not imported_packages(path) & FORBIDDEN_IN_CORE


@pytest.mark.parametrize("path", sorted((ROOT / "adapters").rglob("*.py")),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_adapters_do_not_reach_into_storage(path: Path) -> None:
    assert "storage" not in imported_packages(path)


def test_the_rule_sees_the_imports_it_forbids() -> None:
    # The shell does import them: if this failed, the check above would be checking nothing.
    assert {"adapters", "storage", "apscheduler"} <= imported_packages(ROOT / "bot/bootstrap.py")
    assert len(CORE) >= 10
