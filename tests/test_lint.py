"""ruff and mypy are part of the test command, so `.ci/run` keeps the tree clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
FOLDERS = ("bot", "adapters", "storage", "shell")  # installed as rankbot.<folder>


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, check=False, env=env)


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean(tmp_path: Path) -> None:
    # mypy cannot follow setuptools' editable finder, which maps rankbot.bot to ./bot; a tree
    # of links gives it the names the wheel installs.
    (tmp_path / "rankbot").mkdir()
    for folder in FOLDERS:
        (tmp_path / "rankbot" / folder).symlink_to(ROOT / folder, target_is_directory=True)
    for args in ((), ("--strict", "tests/fakes/memory.py")):  # the fake keeps the ports' shape
        result = run("mypy", *args, env={**os.environ, "MYPYPATH": str(tmp_path)})
        said = (result.stdout + result.stderr).replace(f"{tmp_path}/rankbot/", "")
        assert result.returncode == 0, said
        assert "no issues found" in said
