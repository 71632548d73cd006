from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import World, world


@pytest.fixture
def running(tmp_path: Path) -> Iterator[World]:
    """The fakes up, and a `rankbot` pointed at them, not yet started."""
    with world(tmp_path) as fakes:
        yield fakes
