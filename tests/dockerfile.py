"""The Dockerfile, read as Docker reads it (enough of it for these tests), so that tests check
and run what it says instead of a copy of it."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[tuple[str, str]]  # (instruction, its arguments), continuations joined

    def all(self, name: str) -> list[str]:
        return [args for instruction, args in self.instructions if instruction == name]

    def last(self, name: str) -> str:
        return self.all(name)[-1]

    @property
    def env(self) -> dict[str, str]:
        """Every ENV, in order (`KEY=value` pairs, quoted as a shell would)."""
        pairs = [word.split("=", 1) for args in self.all("ENV") for word in shlex.split(args)]
        assert all(len(pair) == 2 for pair in pairs), "ENV KEY=value only"
        return {key: value for key, value in pairs}

    @property
    def command(self) -> list[str]:
        """What `docker run` runs: ENTRYPOINT then CMD, both in exec (JSON) form."""
        return [*json.loads(self.last("ENTRYPOINT")), *json.loads(self.last("CMD"))]

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's options (`interval` -> `60s`) and its command (exec form)."""
        options, _, command = self.last("HEALTHCHECK").partition(" CMD ")
        parsed = dict(word.removeprefix("--").split("=", 1) for word in shlex.split(options))
        return parsed, json.loads(command)

    @property
    def volumes(self) -> list[str]:
        return [v for args in self.all("VOLUME")
                for v in (json.loads(args) if args.startswith("[") else args.split())]


def parse(text: str) -> Dockerfile:
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue  # comments may sit inside a continued instruction, too
        pending += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            name, _, args = pending.strip().partition(" ")
            instructions.append((name.upper(), args.strip()))
            pending = ""
    return Dockerfile(instructions)


def load() -> Dockerfile:
    return parse(DOCKERFILE.read_text())
