"""Run ``python -m src.serve.app`` where scikit-learn, SciPy, pandas and joblib do not exist.

Run by test_slim_process.py as ``python -m tests.integration_tests.slim_import_runner`` with
the service's settings in the environment and ``BLOCKED_IMPORTS_LOG`` naming a file. A finder
placed first on ``sys.meta_path`` refuses every import of those packages with
``ModuleNotFoundError``, as in the slim image where they are not installed, and appends a line
with the importing stack to the log file first, so an import the service swallows (``try:
import ... except ImportError``) is still seen. Each process that loads this module (the server
and, with ``WORKERS`` > 1, every spawned worker, which re-imports its parent's main module)
appends ``installed <pid>`` to the same file.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

BLOCKED = frozenset({"sklearn", "scipy", "pandas", "joblib"})
LOG_ENV = "BLOCKED_IMPORTS_LOG"


class BlockedImportFinder(importlib.abc.MetaPathFinder):
    """Refuses ``BLOCKED`` packages and their submodules, recording each attempt."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def _append(self, text: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(text)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        """Raise for a blocked name (after logging who imported it); otherwise defer."""
        if fullname.partition(".")[0] in BLOCKED:
            stack = "".join(traceback.format_stack(limit=12)[:-1])
            self._append(f"blocked {fullname} in {os.getpid()}\n{stack}\n")
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` and record this process."""
    finder = BlockedImportFinder(os.environ[LOG_ENV])
    sys.meta_path.insert(0, finder)
    preloaded = sorted(BLOCKED.intersection(sys.modules))
    finder._append(f"installed {os.getpid()}\n")
    if preloaded:
        finder._append(f"loaded before the finder {preloaded} in {os.getpid()}\n")


install()  # at import time: spawned workers import this module but do not run main()

if __name__ == "__main__":
    from src.serve.app import main  # after install(): the whole service behind the finder

    sys.exit(main())
