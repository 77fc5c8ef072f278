"""Logging: loguru, one line per event, JSON when ``LOG_JSON`` is true.

Stdlib loggers (uvicorn's included) are routed through loguru. Every record carries
``extra.request_id`` ("-" outside a request); the middleware binds the real one with
``logger.contextualize``. Nothing here ever logs API keys or request bodies.
"""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from typing import Any, TextIO

import orjson
from loguru import logger

TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DDTHH:mm:ss.SSSZZ}</green> | <level>{level: <8}</level> | "
    "{extra[request_id]} | <cyan>{name}</cyan> | <level>{message}</level>"
)
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "fastapi", "asyncio")
# The middleware writes the one line per request; uvicorn's access log stays off (uvicorn
# only writes it when this logger has handlers, its own or inherited).
SILENCED_LOGGERS = ("uvicorn.access",)


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
        self.stream.write(orjson.dumps(entry, default=str).decode() + "\n")
        self.stream.flush()


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """(Re)configure loguru's single stderr sink and route stdlib logging through it."""
    logger.remove()
    logger.configure(extra={"request_id": "-"})
    if json:
        logger.add(JsonSink(sys.stderr), level=level, format="{message}", diagnose=False)
    else:
        logger.add(
            sys.stderr,
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
