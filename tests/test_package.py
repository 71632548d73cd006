"""The wheel installs anywhere: one `rankbot` namespace, and a working `rankbot` command.

Built from this tree, installed with `--no-deps` into a new virtual environment that borrows the
test environment's dependencies (no network), then run as a user would run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.fakes.openrouter import FakeOpenRouter

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                          check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of what the build reads, so that setuptools' build/ stays out of the tree.
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    for folder in PYPROJECT["tool"]["setuptools"]["package-dir"].values():
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-q", "-w", out, source)
    return next(out.glob("rankbot-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", home)
    site = Path(run(home / "bin/python", "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    # The dependencies, from the test environment: a plain path line, so its .pth files (the
    # editable install of this checkout among them) are not run.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(home / "bin/python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel)
    yield home


def test_the_wheel_claims_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"rankbot"}
    assert {f"rankbot/{p}/__init__.py" for p in ("bot", "adapters", "storage", "shell")} <= set(
        names)


def test_the_installed_rankbot_polls_the_loopback_fake(
        venv: Path, tmp_path: Path, fake_openrouter: FakeOpenRouter) -> None:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("RANKBOT_", "OPENROUTER_", "SLACK_", "DISCORD_", "PYTHON"))}
    rankbot = venv / "bin" / "rankbot"
    assert "Commands:" in run(rankbot, "--help", env=clean, cwd=tmp_path).stdout
    fake_openrouter.serve("models", catalog_bytes("2026-08-22T124646Z"))
    serve_export(fake_openrouter, rankings_csv())
    polled = run(rankbot, "poll", cwd=tmp_path, env={
        **clean, "OPENROUTER_BASE_URL": fake_openrouter.base_url,
        "RANKBOT_DB": str(tmp_path / "rankbot.db"), "RANKBOT_PROVIDERS_MAX": "0"})
    assert "baseline stored" in polled.stdout + polled.stderr
    assert (tmp_path / "rankbot.db").stat().st_size > 0
    where = run(venv / "bin/python", "-c", "import rankbot.bot; print(rankbot.bot.__file__)",
                env=clean, cwd=tmp_path).stdout
    assert where.startswith(str(venv))  # the wheel's copy, not this checkout
