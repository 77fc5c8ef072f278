"""One reload request reaching every worker: a generation counter in a shared file.

``POST /admin/reload`` reloads in the worker that received it and then bumps the counter
(write a temporary file, fsync, rename: readers see the old or the new number, never half of
one). Every worker's poller reads the file about every :data:`CHECK_SECONDS` (one small read)
and reloads all its models when the number differs from the one it last saw. With
``WORKERS`` > 1, ``app.main`` points ``RELOAD_GENERATION_FILE`` at a private temporary file
before the workers start.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CHECK_SECONDS = 0.5


class ReloadGeneration:
    """The shared counter of one service (a file all its workers can read and write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self.read()

    def read(self) -> int:
        """The current generation (0 when the file is missing or unreadable)."""
        try:
            return int(self.path.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            return 0

    def bump(self) -> int:
        """Announce a reload to every worker; returns the new generation."""
        generation = self.read() + 1
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(f"{generation}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._seen = generation  # this worker reloads itself in the request
        return generation

    def changed(self) -> bool:
        """True once per new generation written by any worker since the last call."""
        generation = self.read()
        if generation == self._seen:
            return False
        self._seen = generation
        return True


def prepare_generation_file(directory: Path) -> Path:
    """Create ``<directory>/reload-generation`` (generation 0) and return its path."""
    path = directory / "reload-generation"
    with contextlib.suppress(FileExistsError), open(path, "x", encoding="ascii") as handle:
        handle.write("0\n")
    return path
