"""uvicorn's httptools protocol with each response's head and body sent in one system call.

uvicorn writes a response's status line and headers, then its body, as two transport writes;
uvloop sends each at once, so every answer costs two ``write`` system calls and two TCP
segments. :class:`CoalescingTransport` holds a write until the next one (the body, in the
same event-loop step for every JSON answer) and sends both together; a write that nothing
follows in the same step (a streamed response's head) leaves at the end of that step, so no
byte waits longer than one turn of the event loop. docs/performance.md has the measurement.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The ``http`` option the service gives uvicorn (httptools is a dependency: uvicorn[standard]).
COALESCING_PROTOCOL = "src.serve.http_protocol:CoalescingHttpToolsProtocol"


class CoalescingTransport:
    """A transport wrapper that joins a held write to the next one (see the module docstring).

    Everything but writing, closing and the write-buffer size goes to the wrapped transport.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` with the held write, or hold it until the next write or step end."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif data:
            self._held = bytes(data)  # a caller may reuse a bytearray once write returns
            self._loop.call_soon(self.flush)

    def writelines(self, chunks: Any) -> None:
        """Send ``chunks`` after any held write, in one go."""
        held = self._held
        self._held = None
        self._transport.writelines((held, *chunks) if held is not None else chunks)

    def flush(self) -> None:
        """Send the held write now, if any (dropped when the connection is already closing)."""
        held = self._held
        if held is None:
            return
        self._held = None
        if not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        """Send the held write, then close."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send the held write, then half-close."""
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        """Close at once; a held write is dropped, as the transport drops its buffer."""
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        """Whether the connection is closing (uvicorn asks after every response; a method of
        its own spares that call the failed slot lookup ``__getattr__`` comes after)."""
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        """Bytes not yet handed to the kernel, the held write included."""
        held = len(self._held) if self._held is not None else 0
        return held + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
