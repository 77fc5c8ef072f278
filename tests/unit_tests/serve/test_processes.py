"""pid_alive tells a running process from one that has exited."""

from __future__ import annotations

import os
import subprocess
import sys

from src.serve.processes import pid_alive


def test_this_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_an_exited_and_reaped_process_is_not() -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    assert not pid_alive(int(child.stdout))
