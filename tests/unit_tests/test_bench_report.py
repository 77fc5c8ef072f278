"""The benchmark's report logic (benchmarks/bench.py) on synthetic results: every target ratio
of the full run is computed and rendered (the quick run exercises only some of them)."""

from __future__ import annotations

from dataclasses import asdict

from benchmarks.bench import Result, Scenario, markdown, ratios, scenarios


def _result(scenario: Scenario, req_per_s: float, p99_ms: float = 5.0) -> Result:
    return Result(
        scenario=scenario,
        req_per_s=req_per_s,
        rows_per_s=req_per_s * scenario.rows,
        p50_ms=1.0,
        p99_ms=p99_ms,
        errors=0,
        requests=int(req_per_s * 5),
        cpu_us_per_req=1e6 / req_per_s,
    )


def _speed(s: Scenario) -> float:
    if s.server == "onnx-floor":
        return 10_000
    if s.server == "sklearn-floor":
        return 2_000 if s.model == "iris" else 100
    if s.endpoint == "/predict/batch":
        return 250
    if s.backend == "onnx":
        return 7_500
    if s.model == "forest":
        return 1_500 if s.batching else 100
    return 3_000


def _p99(s: Scenario) -> float:
    if s.concurrency == 64 and s.endpoint == "/predict":
        return 1.0 if s.server == "onnx-floor" else 2.5  # p50 is 1.0 everywhere
    return 12.0 if s.batching else 10.0


def test_full_run_targets_are_all_computed_and_rendered() -> None:
    full = scenarios(quick=False)
    results = [_result(s, _speed(s), p99_ms=_p99(s)) for s in full]
    computed = ratios(results)
    assert computed["iris c=8 service[onnx] / onnx floor"]["value"] == 0.75
    assert computed["iris c=8 service[onnx] / onnx floor"]["met"] is True
    assert computed["iris c=8 service[onnx] / sklearn floor"]["value"] == 3.75
    assert computed["forest c=8 service[onnx] / sklearn floor"]["value"] == 75
    assert computed["forest c=64 service[sklearn, batching] / service[sklearn]"]["value"] == 15
    assert computed["forest c=1 p99 rise with batching (ms)"] == {
        "value": 2.0,
        "target": "<= 4",
        "met": True,
    }
    batch = computed["iris /predict/batch 1000 rows: rows/s"]
    assert batch["value"] == 250_000
    assert batch["met"] is True
    assert batch["per_core"] == 250_000
    for backend in ("onnx", "onnx, batching", "sklearn", "sklearn, batching"):
        tail = computed[f"iris c=64 service[{backend}] p99 / p50"]
        assert tail == {"value": 2.5, "target": "<= 3", "met": True}
    assert computed["iris c=64 service[onnx] p99 / onnx floor p99"] == {
        "value": 2.5,
        "target": "<= 3",
        "met": True,
    }
    for name, r in computed.items():  # cpu per request mirrors req/s here
        if "/" in name and "rows/s" not in name and "p99" not in name:
            assert r["per_core"] == r["value"], name
    report = {
        "mode": "full",
        "created_at": "2026-01-01T00:00:00+00:00",
        "cpu_count": 2,
        "seconds": 5.0,
        "in_process": {"iris": {"sklearn_us": 200.0, "onnx_us": 10.0}},
        "runs": [asdict(r) for r in results],
        "ratios": computed,
        "versions": {"python": "3.11"},
    }
    text = markdown(report)
    assert text.count("| yes |") == len(computed)
    assert "## The tail at saturation (c=64)" in text
    assert "| iris | onnx-floor | 10000 | 1.00 | 1.00 | 1.0 |" in text
    assert "| iris | service[onnx] | 7500 | 1.00 | 2.50 | 2.5 |" in text
    assert "| forest | service[sklearn, batching] | /predict | 1 | 64 | 1500 |" in text


def test_a_missed_target_says_no() -> None:
    full = scenarios(quick=False)
    results = [_result(s, 1_000) for s in full]
    computed = ratios(results)
    assert computed["iris c=8 service[onnx] / sklearn floor"]["met"] is False  # 1.0 < 1.2
    assert computed["iris c=64 service[onnx] p99 / p50"]["met"] is False  # 5 ms / 1 ms > 3
    assert "| NO |" in markdown(
        {
            "mode": "full",
            "created_at": "-",
            "cpu_count": 2,
            "seconds": 5.0,
            "in_process": {},
            "runs": [asdict(r) for r in results],
            "ratios": computed,
            "versions": {},
        }
    )
