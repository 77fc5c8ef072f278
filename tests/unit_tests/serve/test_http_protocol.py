"""One transport write per response: the coalescing transport and uvicorn protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from src.serve.http_protocol import (
    COALESCING_PROTOCOL,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
)

REQUEST = b"GET /x HTTP/1.1\r\nhost: test\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """Records what reaches the socket: one entry per write/writelines call (one syscall)."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []
        self.events: list[str] = []
        self.closing = False
        self.buffered = 0

    def write(self, data: Any) -> None:
        self.sends.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.sends.append(b"".join(bytes(c) for c in chunks))

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def write_eof(self) -> None:
        self.events.append("write_eof")

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        self.events.append("pause_reading")

    def resume_reading(self) -> None:
        self.events.append("resume_reading")


def _wrapped() -> tuple[RecordingTransport, CoalescingTransport]:
    """A recording transport and the coalescing wrapper around it (in the running loop)."""
    raw = RecordingTransport()
    return raw, CoalescingTransport(raw, asyncio.get_running_loop())


async def _one_step() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_a_write_followed_by_another_in_the_same_step_leaves_with_it() -> None:
    async def scenario() -> list[bytes]:
        raw, transport = _wrapped()
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert raw.sends == []  # held
        transport.write(b"body")
        await _one_step()  # the end-of-step flush finds nothing left
        return raw.sends

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


def test_a_lone_write_leaves_at_the_end_of_the_step() -> None:
    async def scenario() -> list[list[bytes]]:
        raw, transport = _wrapped()
        transport.write(b"head")
        before = list(raw.sends)
        await _one_step()
        after_step = list(raw.sends)
        transport.write(b"chunk")
        await _one_step()
        return [before, after_step, raw.sends]

    before, after_step, final = asyncio.run(scenario())
    assert before == []
    assert after_step == [b"head"]
    assert final == [b"head", b"chunk"]


def test_a_held_bytearray_is_copied() -> None:
    async def scenario() -> list[bytes]:
        raw, transport = _wrapped()
        buffer = bytearray(b"head")
        transport.write(buffer)
        buffer[:] = b"XXXX"
        transport.write(b"!")
        return raw.sends

    assert asyncio.run(scenario()) == [b"head!"]


def test_empty_writes_are_not_held() -> None:
    async def scenario() -> list[bytes]:
        raw, transport = _wrapped()
        transport.write(b"")
        transport.write(b"a")
        transport.write(b"b")
        return raw.sends

    assert asyncio.run(scenario()) == [b"ab"]


def test_writelines_sends_the_held_write_first() -> None:
    async def scenario() -> list[bytes]:
        raw, transport = _wrapped()
        transport.write(b"1")
        transport.writelines([b"2", b"3"])
        transport.writelines([b"4"])
        return raw.sends

    assert asyncio.run(scenario()) == [b"123", b"4"]


@pytest.mark.parametrize("method", ["close", "write_eof"])
def test_close_and_write_eof_send_the_held_write_first(method: str) -> None:
    async def scenario() -> tuple[list[bytes], list[str]]:
        raw, transport = _wrapped()
        transport.write(b"last words")
        getattr(transport, method)()
        await _one_step()
        return raw.sends, raw.events

    sends, events = asyncio.run(scenario())
    assert sends == [b"last words"]
    assert events == [method]


def test_abort_drops_the_held_write() -> None:
    async def scenario() -> tuple[list[bytes], list[str]]:
        raw, transport = _wrapped()
        transport.write(b"never sent")
        transport.abort()
        await _one_step()
        return raw.sends, raw.events

    assert asyncio.run(scenario()) == ([], ["abort"])


def test_a_connection_closed_before_the_flush_gets_nothing_written() -> None:
    async def scenario() -> list[bytes]:
        raw, transport = _wrapped()
        transport.write(b"head")
        raw.closing = True  # the peer went away; writing now would raise on uvloop
        await _one_step()
        return raw.sends

    assert asyncio.run(scenario()) == []


def test_the_write_buffer_size_counts_the_held_write_and_other_calls_pass_through() -> None:
    async def scenario() -> tuple[int, list[str], Any]:
        raw, transport = _wrapped()
        raw.buffered = 10
        transport.write(b"12345")
        size = transport.get_write_buffer_size()
        transport.pause_reading()
        transport.resume_reading()
        return size, raw.events, transport.get_extra_info("peername")

    size, events, peer = asyncio.run(scenario())
    assert size == 15
    assert events == ["pause_reading", "resume_reading"]
    assert peer == ("127.0.0.1", 5555)


async def _json_app(scope: dict, receive: Any, send: Any) -> None:
    body = b'{"ok":true}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _streaming_app(scope: dict, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.05)  # the head must not wait for this
    await send({"type": "http.response.body", "body": b"late", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _serve_one(app: Any, requests: bytes, until_sends: int) -> list[bytes]:
    async def scenario() -> list[bytes]:
        # No log config or level: uvicorn.Config would reconfigure the process's loggers.
        config = uvicorn.Config(app, http=COALESCING_PROTOCOL, log_config=None)
        config.load()
        assert config.http_protocol_class is CoalescingHttpToolsProtocol
        protocol = CoalescingHttpToolsProtocol(config, ServerState(), app_state={})
        raw = RecordingTransport()
        protocol.connection_made(raw)
        protocol.data_received(requests)
        for _ in range(200):
            if len(raw.sends) >= until_sends:
                break
            await asyncio.sleep(0.005)
        await _one_step()
        protocol.connection_lost(None)
        return raw.sends

    return asyncio.run(scenario())


def test_uvicorn_sends_a_json_answer_in_one_write() -> None:
    sends = _serve_one(_json_app, REQUEST, until_sends=1)
    assert len(sends) == 1
    head, _, body = sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 11" in head
    assert body == b'{"ok":true}'


def test_pipelined_requests_get_one_write_each() -> None:
    sends = _serve_one(_json_app, REQUEST * 3, until_sends=3)
    assert len(sends) == 3
    assert all(s.startswith(b"HTTP/1.1 200 OK") and s.endswith(b'{"ok":true}') for s in sends)


def test_a_streamed_head_is_not_held_back_by_a_slow_body() -> None:
    sends = _serve_one(_streaming_app, REQUEST, until_sends=2)
    assert sends[0].startswith(b"HTTP/1.1 200 OK")
    assert sends[0].endswith(b"\r\n\r\n")
    assert b"late" in b"".join(sends[1:])
