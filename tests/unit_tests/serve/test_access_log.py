"""The access log: the same line loguru wrote, in blocks (by size, by time, before any other
log line, at shutdown), on or off with the log level."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import pytest
from loguru import logger

from src.serve.access_log import ACCESS_LOG, ACCESS_LOGGER, AccessLog
from src.serve.logging_setup import configure_logging
from tests.polling import wait_for

FIELDS = {
    "method": "POST",
    "route": "/predict",
    "status": 200,
    "latency_ms": 1.743,
    "model_version": "20261203T092340854994Z",
}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} ")


def access(log: AccessLog, request_id: str = "rid-1") -> None:
    """One request's fields as the request context hands them over (seconds, header bytes)."""
    log.write(
        request_id,
        FIELDS["method"],
        FIELDS["route"],
        FIELDS["status"],
        FIELDS["latency_ms"] / 1000,
        FIELDS["model_version"].encode("ascii"),
    )


def loguru_line(request_id: str) -> None:
    """The access line as the service wrote it through loguru (the format to keep)."""
    with logger.contextualize(request_id=request_id):
        logger.patch(lambda record: record.update(name=ACCESS_LOGGER)).info(
            "{method} {route} {status} {latency_ms} ms", request_id=request_id, **FIELDS
        )


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    configure_logging("INFO", json=False)


@pytest.mark.usefixtures("restore_logging")
def test_json_line_has_the_fields_and_order_of_the_loguru_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    loguru_line("rid-1")
    access(ACCESS_LOG, "rid-1")
    ACCESS_LOG.flush()
    before, after = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert list(after) == list(before)  # same keys, same order
    before.pop("time"), after.pop("time")
    assert after == before
    assert after["message"] == "POST /predict 200 1.743 ms"


@pytest.mark.usefixtures("restore_logging")
def test_text_line_matches_the_loguru_text_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False)
    loguru_line("rid-2")
    access(ACCESS_LOG, "rid-2")
    ACCESS_LOG.flush()
    before, after = capsys.readouterr().err.splitlines()
    assert TIME.match(after)
    assert TIME.sub("", after) == TIME.sub("", before)
    assert after.endswith(f"| rid-2 | {ACCESS_LOGGER} | POST /predict 200 1.743 ms")


def test_a_full_buffer_is_written_by_the_flusher_not_the_caller() -> None:
    stream = io.StringIO()
    log = AccessLog()
    log.configure(stream, json=True, buffer_bytes=1000, flush_seconds=60)
    access(log)  # the first line starts the flusher thread
    assert stream.getvalue() == ""  # pending, not written
    for _ in range(20):
        access(log)  # over 1000 bytes: the flusher is woken, long before its 60 s
    wait_for(lambda: stream.getvalue().count("\n") == 21, 5, "the block write", step=0.02)
    assert all(json.loads(line)["request_id"] == "rid-1" for line in stream.getvalue().splitlines())


def test_a_flusher_that_falls_far_behind_makes_the_caller_write() -> None:
    stream = io.StringIO()
    log = AccessLog()
    log.configure(stream, json=True, buffer_bytes=1000, flush_seconds=60)
    access(log)
    with log._io_lock:  # the flusher is stuck writing (e.g. a full pipe): lines pile up
        for _ in range(5):
            access(log)
        assert stream.getvalue() == ""
    for _ in range(60):
        access(log)
    lines = stream.getvalue().count("\n")
    assert lines >= 8 * 1000 // 250 - 1  # bounded: about BACKLOG_BLOCKS buffers at most


def test_pending_lines_are_written_within_the_flush_interval() -> None:
    stream = io.StringIO()
    log = AccessLog()
    log.configure(stream, json=True, buffer_bytes=1 << 20, flush_seconds=0.2)
    access(log)
    assert stream.getvalue() == ""
    wait_for(lambda: stream.getvalue().count("\n") == 1, 5, "the periodic flush", step=0.02)


def test_zero_buffer_writes_each_line_at_once() -> None:
    stream = io.StringIO()
    log = AccessLog()
    log.configure(stream, json=False, buffer_bytes=0)
    access(log)
    assert stream.getvalue().endswith("POST /predict 200 1.743 ms\n")


@pytest.mark.usefixtures("restore_logging")
def test_other_log_lines_come_after_the_pending_access_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for json_mode in (True, False):
        configure_logging("INFO", json=json_mode)
        access(ACCESS_LOG, "first")
        logger.error("then an error")
        access(ACCESS_LOG, "last")
        ACCESS_LOG.flush()
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 3
        assert "first" in lines[0]
        assert "then an error" in lines[1]
        assert "last" in lines[2]


@pytest.mark.usefixtures("restore_logging")
def test_no_access_lines_above_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", json=True)
    assert not ACCESS_LOG.enabled
    access(ACCESS_LOG)
    ACCESS_LOG.flush()
    assert capsys.readouterr().err == ""
    configure_logging("DEBUG", json=True)
    assert ACCESS_LOG.enabled


def test_reconfiguring_writes_pending_lines_to_the_old_stream_first() -> None:
    old, new = io.StringIO(), io.StringIO()
    log = AccessLog()
    log.configure(old, json=True, buffer_bytes=1 << 20, flush_seconds=60)
    access(log, "to-old")
    log.configure(new, json=True, buffer_bytes=1 << 20, flush_seconds=60)
    access(log, "to-new")
    log.flush()
    assert "to-old" in old.getvalue()
    assert "to-new" not in old.getvalue()
    assert "to-new" in new.getvalue()
    assert "to-old" not in new.getvalue()
