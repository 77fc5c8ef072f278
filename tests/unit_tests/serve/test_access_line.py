"""The access lines: exactly what orjson writes for the line's fields (JSON), loguru's text
format otherwise, whatever the strings hold."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from src.serve.access_line import ACCESS_LOGGER, Entry, LineFormat, milliseconds

ZONE = timezone(timedelta(hours=2))
STAMP = 1_796_364_000.123456  # 2026-12-04T08:00:00.123456+02:00


def reference_json_line(entry: Entry, zone: timezone = ZONE) -> str:
    """The line as orjson writes the fields' dict (the format the other log lines have)."""
    stamp, request_id, method, route, status, seconds, version = entry
    latency_ms = round(seconds * 1000, 3)
    return orjson.dumps(
        {
            "time": datetime.fromtimestamp(stamp, zone),
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


def entry(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "stamp": STAMP,
        "request_id": "7a81327b734e4be59fdfb98155c5aed6",
        "method": "POST",
        "route": "/predict",
        "status": 200,
        "seconds": 0.000233,
        "version": b"20261204T051945828990Z",
    }
    fields.update(changes)
    return tuple(fields.values())  # type: ignore[return-value]


def test_a_json_line_is_what_orjson_writes_for_its_fields() -> None:
    line = LineFormat(json=True, zone=ZONE).json_line(entry())
    assert line == reference_json_line(entry())
    assert json.loads(line)["time"] == "2026-12-04T08:00:00.123456+02:00"
    assert json.loads(line)["message"] == "POST /predict 200 0.233 ms"


@pytest.mark.parametrize(
    "changes",
    [
        {"request_id": 'quote"d'},
        {"request_id": "back\\slash"},
        {"route": "/tab\there"},
        {"method": "PO\x01ST"},
        {"version": b'v"1'},
        {"version": b"caf\xc3\xa9"},  # not ASCII: decoded with replacement characters
        {"status": 404, "route": "<unmatched>"},
    ],
)
def test_strings_that_need_escaping_give_the_same_line_as_orjson(changes: dict) -> None:
    line = LineFormat(json=True, zone=ZONE).json_line(entry(**changes))
    assert line == reference_json_line(entry(**changes))
    json.loads(line)  # valid JSON


def test_times_and_latencies_match_orjson_across_seconds_and_rounding() -> None:
    rng = random.Random(7)
    lines = LineFormat(json=True, zone=ZONE)
    stamps = [STAMP + rng.random() * 5 for _ in range(400)]
    stamps += [1_796_364_000.0, 1_796_364_000.9999996, 1_796_364_001.0000004]  # whole, carry
    for stamp in stamps:
        seconds = rng.random() * rng.choice([1e-5, 1e-3, 1.0, 120.0])
        one = entry(stamp=stamp, seconds=seconds)
        assert lines.json_line(one) == reference_json_line(one)


def test_milliseconds_shows_what_rounding_to_three_decimals_shows() -> None:
    rng = random.Random(11)
    values = [0.0, 0.001, 0.00123, 0.0005, 0.0015, 1.0, 2.5e-7, 3600.0]
    values += [rng.random() * rng.choice([1e-6, 1e-3, 1.0, 1e4]) for _ in range(5000)]
    for seconds in values:
        assert milliseconds(seconds) == str(round(seconds * 1000, 3))


def test_a_zone_change_restamps_the_lines() -> None:
    lines = LineFormat(json=True, zone=ZONE)
    assert '"time":"2026-12-04T08:00:00.123456+02:00"' in lines.json_line(entry())
    lines.follow_zone(UTC)
    assert '"time":"2026-12-04T06:00:00.123456+00:00"' in lines.json_line(entry())


def test_a_text_line_has_loguru_text_format() -> None:
    line = LineFormat(json=False, zone=ZONE).text_line(entry(seconds=0.00174))
    assert line == (
        "2026-12-04T08:00:00.123+0200 | INFO     | 7a81327b734e4be59fdfb98155c5aed6 | "
        f"{ACCESS_LOGGER} | POST /predict 200 1.74 ms\n"
    )


def test_a_block_is_its_lines_in_order() -> None:
    lines = LineFormat(json=True, zone=ZONE)
    entries = [entry(request_id=f"r{i}", status=200 + i) for i in range(3)]
    block = lines.block(entries).decode()
    assert block == "".join(reference_json_line(e) for e in entries)


def test_many_distinct_routes_and_versions_keep_the_lines_right() -> None:
    lines = LineFormat(json=True, zone=ZONE)
    for i in range(2_100):  # past the caches' bound
        one = entry(route=f"/r{i}", version=f"v{i}".encode())
        assert lines.json_line(one) == reference_json_line(one)
