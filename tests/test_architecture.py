"""The dependency rule, checked on the source: arrows point inward, from the shell to the core.

shell/ (the CLI and the composition root) may import anything; adapters/ and storage/ may
import the core but not each other; the core, bot/, imports no adapter, storage or I/O library.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
IO_LIBRARIES = {"httpx", "slack_bolt", "slack_sdk", "discord", "aiohttp", "sqlite_utils",
                "sqlite3", "apscheduler", "dotenv", "click", "feedgen"}
FORBIDDEN = {
    "bot": {"rankbot.adapters", "rankbot.storage", "rankbot.shell"} | IO_LIBRARIES,
    "adapters": {"rankbot.storage", "rankbot.shell"},
    "storage": {"rankbot.adapters", "rankbot.shell"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports, with rankbot's own named as `rankbot.<folder>`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return {".".join(m.split(".")[:2]) if m.startswith("rankbot.") else m.split(".")[0]
            for m in modules}


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", [p for folder in FORBIDDEN for p in sources(folder)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_arrows_point_inward(path: Path) -> None:
    folder = path.relative_to(ROOT).parts[0]
    assert not imported_packages(path) & FORBIDDEN[folder]


def test_no_module_relies_on_the_old_top_level_names() -> None:
    # The wheel installs rankbot.bot, rankbot.adapters, ...: a bare `import storage` would work
    # in a checkout and fail once installed.
    for folder in ("bot", "adapters", "storage", "shell", "tests", "bench"):
        for path in sources(folder):
            assert not imported_packages(path) & {"bot", "adapters", "storage", "shell"}, path


def test_the_rule_sees_the_imports_it_forbids() -> None:
    # The shell does import them: if this failed, the check above would be checking nothing.
    shell = imported_packages(ROOT / "shell/bootstrap.py")
    assert {"rankbot.adapters", "rankbot.storage", "apscheduler"} <= shell
    assert len(sources("bot")) >= 10
