"""Logging: text or JSON lines, stdlib loggers routed through loguru, no uvicorn access log."""

from __future__ import annotations

import contextvars
import json
import threading

import pytest
from loguru import logger

from src.serve.logging_setup import REQUEST_ID, configure_logging


def test_text_logging_is_configurable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False)
    logger.bind(request_id="rid-1").info("hello")
    configure_logging("WARNING", json=True)
    logger.info("hidden")
    logger.warning("shown")
    err = capsys.readouterr().err.splitlines()
    assert "| INFO     | rid-1 |" in err[0]
    assert err[0].endswith("hello")
    assert json.loads(err[1])["message"] == "shown"
    assert len(err) == 2
    configure_logging("INFO", json=False)


def test_stdlib_loggers_are_routed_through_loguru(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    configure_logging("INFO", json=True)
    logging.getLogger("uvicorn.error").info("from uvicorn")
    entry = json.loads(capsys.readouterr().err.splitlines()[-1])
    assert entry["message"] == "from uvicorn"
    assert entry["request_id"] == "-"
    configure_logging("INFO", json=False)


def test_uvicorn_access_log_stays_off(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    configure_logging("INFO", json=True)
    access = logging.getLogger("uvicorn.access")
    assert not access.hasHandlers()  # uvicorn writes its access line only when this is true
    access.info("GET / 200")
    assert "GET / 200" not in capsys.readouterr().err
    configure_logging("INFO", json=False)


def test_records_carry_the_current_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    token = REQUEST_ID.set("rid-current")
    try:
        logger.info("in a request")
        logger.bind(request_id="rid-bound").info("named by the call")
        # a worker thread started for the request (anyio copies the context the same way)
        threading.Thread(target=contextvars.copy_context().run, args=(logger.info, "thread")).run()
    finally:
        REQUEST_ID.reset(token)
    logger.info("after it")
    ids = [json.loads(line)["request_id"] for line in capsys.readouterr().err.splitlines()]
    assert ids == ["rid-current", "rid-bound", "rid-current", "-"]
    configure_logging("INFO", json=False)
