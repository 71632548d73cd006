"""Source faults: what went wrong with a payload or a fetch, as one typed error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "http", "rate_limited", "timeout", "network", "empty", "unparsable", "hash_mismatch", "shrunk",
    "too_large", "bad_entries", "internal", "not_found",
]
MAX_BAD_SHARE = 0.10  # more bad entries than this and the whole payload is a fault


class SourceFault(Exception):
    """A source gave no usable data. The message is one clear sentence, free of secrets."""

    def __init__(self, kind: FaultKind, message: str) -> None:
        super().__init__(message)
        self.kind: FaultKind = kind
        self.message = message


class BadEntry(ValueError):
    """One catalog entry or rankings row holds a value that cannot be right (pure parsing)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry set aside for one poll: which one (`model openai/gpt-5`, `line 17`) and why."""

    what: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: {self.field} {self.reason}"


def check_rejected(rejected: Sequence[Rejected], total: int, noun: str) -> None:
    """A few bad entries are set aside; more than MAX_BAD_SHARE of them fault the payload."""
    if rejected and len(rejected) > total * MAX_BAD_SHARE:
        raise SourceFault("unparsable", f"{len(rejected)} of {total} {noun} are malformed "
                          f"(more than {MAX_BAD_SHARE:.0%}), e.g. {rejected[0]}")


def rejected_fault(rejected: Sequence[Rejected], noun: tuple[str, str],
                   shown: int = 3) -> SourceFault:
    """One fault naming the entries set aside (the first few, then how many more); `noun` is
    what one and several of them are called."""
    names = "; ".join(str(r) for r in rejected[:shown])
    more = f"; and {len(rejected) - shown} more" if len(rejected) > shown else ""
    called = noun[0] if len(rejected) == 1 else noun[1]
    return SourceFault("bad_entries", f"{len(rejected)} {called} set aside, the rest used: "
                       f"{names}{more}")
