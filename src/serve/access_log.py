"""The access log: one line per request, written in blocks.

Every request gets exactly one line with the fields of the service's other log lines (JSON
with ``LOG_JSON=true``, else text), but lines are not written one system call each: they
collect in a buffer that a daemon thread writes when it reaches ``ACCESS_LOG_BUFFER_BYTES``
and at least every ``ACCESS_LOG_FLUSH_SECONDS``, so the event loop never waits for the
stream (a slow disk or a full pipe). Pending lines are also written before any other log line
(so the two kinds of line keep their order on stderr), at shutdown and at interpreter exit. This is
nginx's ``access_log ... buffer=32k flush=1s``: a graceful stop (SIGTERM) loses no line; a hard
kill (SIGKILL, OOM) loses at most what the last flush interval collected.

A request only appends its raw fields (a tuple) to the buffer; the lines are built when the
buffer is written (``access_line.py``), not through loguru's record machinery: the latency is
rounded and the model version decoded there too. Building each line in the request cost about
10 us of the event loop's time per request (docs/performance.md); in a block it is cheaper and
off the loop.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from datetime import UTC, datetime, tzinfo
from typing import TextIO

from src.serve.access_line import ACCESS_LOGGER, Entry, LineFormat

__all__ = ["ACCESS_LOG", "ACCESS_LOGGER", "AccessLog", "Entry", "local_timezone"]

DEFAULT_BUFFER_BYTES = 32 * 1024
DEFAULT_FLUSH_SECONDS = 1.0
#: Pending lines past this many buffers (the flusher cannot keep up, e.g. a blocked stderr)
#: are written by the request's own thread: memory stays bounded.
BACKLOG_BLOCKS = 8


def local_timezone() -> tzinfo:
    """The machine's current UTC offset (what loguru stamps its lines with)."""
    return datetime.now().astimezone().tzinfo or UTC


class AccessLog:
    """The process's access log (see the module docstring); safe to call from any thread.

    Off until :meth:`configure` gives it a stream. ``buffer_bytes=0`` writes each line at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the pending lines
        self._io_lock = threading.Lock()  # one writer at a time, blocks in order
        self._entries: list[Entry] = []
        self._size = 0
        self._stream: TextIO | None = None
        self._format = LineFormat(json=True, zone=local_timezone())
        self._buffer_bytes = DEFAULT_BUFFER_BYTES
        self._flush_seconds = DEFAULT_FLUSH_SECONDS
        self._line_overhead = 0
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        atexit.register(self._flush_at_exit)
        os.register_at_fork(after_in_child=self._forget_flusher)

    @property
    def enabled(self) -> bool:
        """True when lines are written (``LOG_LEVEL`` is ``INFO`` or below)."""
        return self._stream is not None

    def configure(
        self,
        stream: TextIO | None,
        *,
        json: bool,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    ) -> None:
        """Write to ``stream`` from now on (``None``: no access log); pending lines are
        written to the previous stream first."""
        self.flush()
        with self._io_lock, self._lock:  # no block is being built while the format changes
            self._stream = stream
            self._format = LineFormat(json=json, zone=local_timezone())
            self._buffer_bytes = buffer_bytes
            self._flush_seconds = flush_seconds
            self._line_overhead = len(
                self._format.block([(time.time(), "", "POST", "", 200, 0.0, b"")])
            )
        self._wake.set()  # the flusher picks up the new interval

    def write(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        model_version: bytes,
    ) -> None:
        """Add one request's line (formatted when the buffer is written): its latency in
        seconds and the model version it answered with (``X-Model-Version``'s bytes)."""
        entry = (time.time(), request_id, method, route, status, seconds, model_version)
        with self._lock:
            if self._stream is None:
                return
            self._entries.append(entry)
            # the line's length, near enough: its fixed part plus its variable strings
            self._size += (
                self._line_overhead + len(request_id) + 2 * len(route) + len(model_version)
            )
            size = self._size
        if size >= self._buffer_bytes:
            if self._flusher is None or size >= self._buffer_bytes * BACKLOG_BLOCKS:
                self.flush()  # no flusher yet, unbuffered, or it fell far behind: write here
            elif not self._wake.is_set():
                self._wake.set()  # the flusher writes the block: no I/O on the caller's thread
        if self._flusher is None:
            self._start_flusher()

    def flush(self) -> None:
        """Write every pending line now (in order with any other flush)."""
        if not self._entries:
            return
        with self._io_lock:  # held while writing; request threads only take ``_lock``
            with self._lock:
                stream, entries = self._stream, self._entries
                self._entries, self._size = [], 0
            if stream is not None and entries:
                self._write(stream, self._format.block(entries))

    @staticmethod
    def _write(stream: TextIO, data: bytes) -> None:
        raw = getattr(stream, "buffer", None)
        if raw is not None:  # a text stream over bytes (stderr): skip decoding and encoding
            stream.flush()
            raw.write(data)
            raw.flush()
        else:
            stream.write(data.decode("utf-8", "replace"))
            stream.flush()

    def _flush_at_exit(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # stderr may be closed by then
            self.flush()

    # --- the periodic flush -------------------------------------------------------------------

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None:
                return
            self._wake.clear()  # a wake-up from configure() before it existed is moot
            self._flusher = threading.Thread(
                target=self._flush_forever, name="access-log-flush", daemon=True
            )
            self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self._format.follow_zone(local_timezone())  # e.g. a daylight-saving change
            try:
                self.flush()
            except (OSError, ValueError):  # stderr closed or gone: nothing left to tell
                time.sleep(self._flush_seconds)

    def _forget_flusher(self) -> None:
        """In a forked child: the parent's thread does not exist here, nor its lock's owner."""
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._entries, self._size = [], 0
        self._flusher = None
        self._wake = threading.Event()


ACCESS_LOG = AccessLog()
