"""The access log's lines: one request's fields -> the line the service writes for it.

The lines have the fields, order and format of the service's other log lines
(``logging_setup.py``): a flat JSON object with ``LOG_JSON=true``, else loguru's text
format. They are built when a block of them is written (``access_log.py``), off the event
loop, and cheaply: what is the same from line to line (the time's whole seconds, the fields
of a route and status, a model version) is formatted once and reused, and each JSON line is
one string format instead of a dict through ``orjson`` (about a third of the cost,
docs/performance.md). A line whose strings need JSON escaping is built by ``orjson``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, tzinfo

import orjson

#: The ``logger`` field of the access line: the module that has always written it.
ACCESS_LOGGER = "src.serve.middleware.request_context"
#: One request's fields: (epoch seconds, request id, method, route, status, latency in
#: seconds, model version as the response header's bytes).
Entry = tuple[float, str, str, str, int, float, bytes]

_TEXT_LEVEL = "INFO    "  # loguru's ``{level: <8}``
#: The characters a JSON string must escape (exactly the ones orjson escapes).
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
#: Formatted pieces kept per route and status, and per model version: a handful in
#: practice; the caches start over past this many (a bound, should a caller vary them).
_CACHE_LIMIT = 1024
_MICROS = 1_000_000


def milliseconds(seconds: float) -> str:
    """``str(round(seconds * 1000, 3))``, the latency as the line shows it (``0.23``,
    ``1.0``), without the cost of rounding a float to a float first."""
    text = f"{seconds * 1000:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


class LineFormat:
    """Builds the access lines of one format (JSON or text) in one time zone."""

    def __init__(self, *, json: bool, zone: tzinfo) -> None:
        self.json = json
        self.zone = zone
        self._second: int | None = None
        self._second_parts = ("", "")
        self._route_parts: dict[tuple[str, str, int], tuple[str, str] | None] = {}
        self._versions: dict[bytes, str | None] = {}

    def block(self, entries: Iterable[Entry]) -> bytes:
        """The lines of ``entries``, one after the other, as they are written."""
        line = self.json_line if self.json else self.text_line
        return "".join(map(line, entries)).encode()

    def follow_zone(self, zone: tzinfo) -> None:
        """Stamp lines in ``zone`` from now on (the machine's offset changed)."""
        if zone != self.zone:
            self.zone, self._second = zone, None

    def json_line(self, entry: Entry) -> str:
        """One entry as a JSON line (what ``orjson.dumps`` gives for the same dict)."""
        stamp, request_id, method, route, status, seconds, version = entry
        parts = self._route_parts.get((method, route, status), False)
        if parts is False:
            parts = self._cache_route_parts(method, route, status)
        model_version = self._versions.get(version, False)
        if model_version is False:
            model_version = self._cache_version(version)
        if (
            parts is None
            or model_version is None
            # a generated id is alphanumeric: nothing to escape, no pattern search needed
            or not (request_id.isalnum() or not _NEEDS_ESCAPE.search(request_id))
        ):
            return self._escaped_json_line(entry)
        latency = milliseconds(seconds)
        message_head, route_fields = parts
        return (
            f'{{"time":"{self._iso_time(stamp)}","level":"INFO",'
            f'"message":"{message_head}{latency} ms","logger":"{ACCESS_LOGGER}",'
            f'"request_id":"{request_id}",{route_fields}"latency_ms":{latency},'
            f'"model_version":"{model_version}"}}\n'
        )

    def text_line(self, entry: Entry) -> str:
        """One entry in loguru's text format (``logging_setup.TEXT_FORMAT``)."""
        stamp, request_id, method, route, status, seconds, _version = entry
        micro = self._micro(stamp)
        whole, zone = self._second_parts
        return (
            f"{whole}.{micro // 1000:03d}{zone} | {_TEXT_LEVEL} | {request_id} | "
            f"{ACCESS_LOGGER} | {method} {route} {status} {milliseconds(seconds)} ms\n"
        )

    def _escaped_json_line(self, entry: Entry) -> str:
        stamp, request_id, method, route, status, seconds, version = entry
        latency_ms = round(seconds * 1000, 3)
        return orjson.dumps(
            {
                "time": self._iso_time(stamp),
                "level": "INFO",
                "message": f"{method} {route} {status} {latency_ms} ms",
                "logger": ACCESS_LOGGER,
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "latency_ms": latency_ms,
                "model_version": version.decode("ascii", "replace"),
            },
            option=orjson.OPT_APPEND_NEWLINE,
        ).decode()

    def _cache_route_parts(self, method: str, route: str, status: int) -> tuple[str, str] | None:
        if len(self._route_parts) >= _CACHE_LIMIT:
            self._route_parts.clear()
        parts = None
        if not _NEEDS_ESCAPE.search(method + route):
            parts = (
                f"{method} {route} {status} ",
                f'"method":"{method}","route":"{route}","status":{status:d},',
            )
        self._route_parts[(method, route, status)] = parts
        return parts

    def _cache_version(self, version: bytes) -> str | None:
        if len(self._versions) >= _CACHE_LIMIT:
            self._versions.clear()
        decoded = version.decode("ascii", "replace")
        text = None if _NEEDS_ESCAPE.search(decoded) else decoded
        self._versions[version] = text
        return text

    def _micro(self, stamp: float) -> int:
        """The microseconds of ``stamp``, rounded as ``datetime.fromtimestamp`` rounds; its
        whole second's text parts are in ``_second_parts`` (formatted when it changes)."""
        second = int(stamp // 1)
        micro = round((stamp - second) * _MICROS)
        if micro == _MICROS:
            second, micro = second + 1, 0
        if second != self._second:
            self._new_second(second)
        return micro

    def _new_second(self, second: int) -> None:
        """Format the text parts of ``second`` (the date and time; the UTC offset)."""
        moment = datetime.fromtimestamp(second, self.zone)
        if self.json:
            iso = moment.isoformat()
            self._second_parts = iso[:19], iso[19:]
        else:
            self._second_parts = moment.strftime("%Y-%m-%dT%H:%M:%S"), moment.strftime("%z")
        self._second = second

    def _iso_time(self, stamp: float) -> str:
        """``datetime.fromtimestamp(stamp, zone).isoformat()``, as the other JSON lines."""
        micro = self._micro(stamp)
        whole, zone = self._second_parts
        return f"{whole}.{micro:06d}{zone}" if micro else whole + zone
