"""This process as a delivery worker: the name its outbox claims go under, and whether the
holder of another claim is gone (killed mid-send), so that its claims can be taken back."""

from __future__ import annotations

import functools
import os
import socket
import uuid


@functools.cache
def this_worker() -> str:
    """host:pid:token. The token tells this process from an earlier one with the same pid (a
    container's pid 1 after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_gone(worker: str) -> bool:
    """True only when certain: a worker on this host whose process has ended. Another host's
    workers are never judged; their claims run out by themselves."""
    parts = worker.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if worker == this_worker():
        return False
    if pid == os.getpid():
        return True  # our pid, another token: an earlier life of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False
