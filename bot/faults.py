"""Source faults: what went wrong with a payload or a fetch, as one typed error."""

from __future__ import annotations

from typing import Literal

FaultKind = Literal[
    "http", "rate_limited", "timeout", "network", "empty", "unparsable", "hash_mismatch", "shrunk"
]


class SourceFault(Exception):
    """A source gave no usable data. The message is one clear sentence, free of secrets."""

    def __init__(self, kind: FaultKind, message: str) -> None:
        super().__init__(message)
        self.kind: FaultKind = kind
        self.message = message
