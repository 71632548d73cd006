"""Whose outbox claims may be taken back: only those of a process on this host that has ended."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from rankbot.adapters.processes import this_worker, worker_gone

HOST = socket.gethostname()


def test_a_worker_names_its_host_and_process_and_keeps_its_name() -> None:
    assert this_worker() == this_worker()
    assert this_worker().startswith(f"{HOST}:{os.getpid()}:")
    assert not worker_gone(this_worker())


def test_a_process_that_ended_is_gone_and_a_running_one_is_not() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as running:
        try:
            assert not worker_gone(f"{HOST}:{running.pid}:abc")
        finally:
            running.kill()
        running.wait()  # reaped: its pid is free
        assert worker_gone(f"{HOST}:{running.pid}:abc")


def test_an_earlier_life_of_this_pid_is_gone_another_host_never_is() -> None:
    assert worker_gone(f"{HOST}:{os.getpid()}:earlier")  # a restarted container's pid 1
    assert not worker_gone(f"elsewhere:{os.getpid() + 1}:abc")
    assert not worker_gone("not a worker name")
