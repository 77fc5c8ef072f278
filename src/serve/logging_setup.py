"""Logging: loguru, one line per event, JSON when ``LOG_JSON`` is true.

Stdlib loggers (uvicorn's included) are routed through loguru. Every record carries
``extra.request_id`` ("-" outside a request): the request-context middleware sets
:data:`REQUEST_ID` and a patcher copies it into each record. (A bare context variable costs
about 0.2 us per request; ``logger.contextualize`` about 3 us, for every request, to serve
the few that log anything.) Nothing here ever logs API keys or request bodies.

The one line per request does not go through loguru: :data:`~src.serve.access_log.ACCESS_LOG`
writes it in blocks, in the same format, to the same stream. Every other line writes the
access log's pending lines first, so stderr keeps the order in which things happened.
"""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

from src.serve.access_log import ACCESS_LOG, DEFAULT_BUFFER_BYTES, DEFAULT_FLUSH_SECONDS

if TYPE_CHECKING:
    from loguru import Record

NO_REQUEST_ID = "-"
#: The id of the request being handled in this context (copied into worker threads with it).
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST_ID)

TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DDTHH:mm:ss.SSSZZ}</green> | <level>{level: <8}</level> | "
    "{extra[request_id]} | <cyan>{name}</cyan> | <level>{message}</level>"
)
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "fastapi", "asyncio")
# The middleware writes the one line per request; uvicorn's access log stays off (uvicorn
# only writes it when this logger has handlers, its own or inherited).
SILENCED_LOGGERS = ("uvicorn.access",)
ACCESS_LEVEL_NO = 20  # INFO: the access log is written at this level or below


def add_request_id(record: Record) -> None:
    """The patcher: the current request's id, unless the call named one itself."""
    extra = record["extra"]
    if extra.get("request_id", NO_REQUEST_ID) == NO_REQUEST_ID:
        extra["request_id"] = REQUEST_ID.get()


class InterceptHandler(logging.Handler):
    """Send stdlib ``logging`` records to loguru (the recipe from loguru's documentation)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record, keeping its level and the caller's location."""
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


class JsonSink:
    """Write each record as one flat JSON object: time, level, message, logger, extras."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, message: Any) -> None:
        """Serialise one loguru message."""
        record = message.record
        entry: dict[str, Any] = {
            "time": record["time"].isoformat(),
            "level": record["level"].name,
            "message": record["message"],
            "logger": record["name"],
            **record["extra"],
        }
        if record["exception"] is not None:
            exc_type, exc, tb = record["exception"]
            entry["exception"] = "".join(traceback.format_exception(exc_type, exc, tb))
        ACCESS_LOG.flush()
        self.stream.write(orjson.dumps(entry, default=str).decode() + "\n")
        self.stream.flush()


class TextStream:
    """The text sink's stream: the access log's pending lines go out before each line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, message: str) -> None:
        """Write one formatted line (after the pending access lines)."""
        ACCESS_LOG.flush()
        self.stream.write(message)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self.stream.flush()

    def isatty(self) -> bool:
        """Colours only on a terminal, as for the stream itself."""
        return self.stream.isatty()


def configure_logging(
    level: str = "INFO",
    json: bool = False,
    *,
    access_buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    access_flush_seconds: float = DEFAULT_FLUSH_SECONDS,
) -> None:
    """(Re)configure loguru's single stderr sink and the access log, and route stdlib
    logging through loguru."""
    logger.remove()
    logger.configure(extra={"request_id": NO_REQUEST_ID}, patcher=add_request_id)
    access_on = logger.level(level).no <= ACCESS_LEVEL_NO
    ACCESS_LOG.configure(
        sys.stderr if access_on else None,
        json=json,
        buffer_bytes=access_buffer_bytes,
        flush_seconds=access_flush_seconds,
    )
    if json:
        logger.add(JsonSink(sys.stderr), level=level, format="{message}", diagnose=False)
    else:
        logger.add(
            TextStream(sys.stderr),
            level=level,
            format=TEXT_FORMAT,
            backtrace=False,
            diagnose=False,  # never print local variables (they may hold keys or inputs)
        )
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    for name in ROUTED_LOGGERS:
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
    for name in SILENCED_LOGGERS:
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = False
