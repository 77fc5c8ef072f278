"""The benchmark's report logic (benchmarks/bench.py) on synthetic results: every target ratio
of the full run is computed and rendered (the quick run exercises only some of them)."""

from __future__ import annotations

from dataclasses import asdict

from benchmarks.bench import (
    Result,
    Scenario,
    interleaved,
    markdown,
    ratios,
    repeated,
    scenarios,
    selected,
    slices_per_set,
)


def _result(
    scenario: Scenario, req_per_s: float, p99_ms: float = 5.0, round_number: int = 0
) -> Result:
    return Result(
        scenario=scenario,
        req_per_s=req_per_s,
        rows_per_s=req_per_s * scenario.rows,
        p50_ms=1.0,
        p99_ms=p99_ms,
        errors=0,
        requests=int(req_per_s * 5),
        cpu_us_per_req=1e6 / req_per_s,
        round=round_number,
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


def _report(results: list[Result]) -> dict:
    return {
        "mode": "full",
        "created_at": "-",
        "cpu_count": 2,
        "seconds": 5.0,
        "in_process": {},
        "runs": [asdict(r) for r in results],
        "ratios": ratios(results),
        "versions": {},
    }


def test_a_missed_target_says_no() -> None:
    full = scenarios(quick=False)
    results = [_result(s, 1_000) for s in full]
    computed = ratios(results)
    assert computed["iris c=8 service[onnx] / sklearn floor"]["met"] is False  # 1.0 < 1.2
    assert computed["iris c=64 service[onnx] p99 / p50"]["met"] is False  # 5 ms / 1 ms > 3
    assert "| NO |" in markdown(_report(results))


def test_repeat_rounds_hold_the_forest_pair_adjacent_in_alternating_order() -> None:
    full = scenarios(quick=False)
    forward, backward = repeated(full, 2), repeated(full, 1)
    assert backward == forward[::-1]
    labels = [f"{s.model} {s.label} {s.endpoint} c={s.concurrency} rows={s.rows}" for s in forward]
    assert labels == [
        "forest service[sklearn] /predict c=1 rows=1",
        "forest service[sklearn, batching] /predict c=1 rows=1",
        "iris service[onnx] /predict/batch c=8 rows=1000",
    ]


def test_the_c8_throughput_ratios_are_measured_side_by_side() -> None:
    labels = [s.label for s in interleaved(scenarios(quick=False))]
    assert labels == ["onnx-floor", "service[onnx]", "service[onnx, log]"]
    assert [s.label for s in interleaved(scenarios(quick=True))] == labels


def test_only_selects_a_label_with_its_own_comma_and_comma_separated_alternatives() -> None:
    full = scenarios(quick=False)

    def labels(only: str) -> set[str]:
        return {f"{s.model} {s.label} c={s.concurrency}" for s in selected(full, only)}

    assert labels("iris service[onnx, log] /predict c=8") == {"iris service[onnx, log] c=8"}
    assert labels("iris onnx-floor /predict c=8,iris service[onnx, log] /predict c=8") == {
        "iris onnx-floor c=8",
        "iris service[onnx, log] c=8",
    }
    assert selected(full, "") == full  # no --only: everything


def test_slices_are_spread_evenly_over_fresh_server_sets() -> None:
    assert slices_per_set(12, 4) == [3, 3, 3, 3]
    assert slices_per_set(10, 4) == [3, 3, 2, 2]
    assert slices_per_set(2, 5) == [1, 1]  # never a set without a slice
    assert slices_per_set(5, 1) == [5]


def _with_repeats(speeds: dict[int, dict[str, float]], batch: dict[int, float]) -> list[Result]:
    """The full main pass plus, per round/slice number, the sliced c=8 servers at the given
    speeds (by label) and the repeated runs (the batch at its given speed)."""
    full = scenarios(quick=False)
    results = [_result(s, _speed(s), p99_ms=_p99(s)) for s in full]
    for n, by_label in speeds.items():
        for s in interleaved(full):
            result = _result(s, by_label[s.label], round_number=n)
            result.process_set = 1 + (n - 1) // 2  # two slices per set of servers
            results.append(result)
    for n, rows_speed in batch.items():
        for s in repeated(full, n):
            speed = rows_speed if s.endpoint == "/predict/batch" else _speed(s)
            results.append(_result(s, speed, p99_ms=_p99(s) + n, round_number=n))
    return results


def test_sliced_and_repeated_targets_are_medians_listing_every_sample() -> None:
    slice_speeds = {  # the machine's speed drifts; the ratios hardly do
        1: {"onnx-floor": 8_000, "service[onnx]": 4_800, "service[onnx, log]": 4_560},
        2: {"onnx-floor": 12_000, "service[onnx]": 7_800, "service[onnx, log]": 7_800},
        3: {"onnx-floor": 10_000, "service[onnx]": 7_000, "service[onnx, log]": 6_300},
    }
    results = _with_repeats(slice_speeds, batch={1: 150, 2: 210})
    computed = ratios(results)
    floor = computed["iris c=8 service[onnx] / onnx floor"]
    assert floor["samples"] == [0.6, 0.65, 0.7]  # the slices only, not the main pass's 0.75
    assert floor["value"] == 0.65
    assert floor["met"] is False
    assert floor["per_core"] == 0.65
    log = computed["iris c=8 service[onnx, log] / service[onnx]"]
    assert log["samples"] == [0.95, 1.0, 0.9]
    assert log["value"] == 0.95
    assert log["met"] is True
    batch = computed["iris /predict/batch 1000 rows: rows/s"]
    assert batch["samples"] == [250_000, 150_000, 210_000]  # repeats include the main pass
    assert batch["value"] == 210_000
    assert batch["met"] is True
    rise = computed["forest c=1 p99 rise with batching (ms)"]
    assert rise["samples"] == [2.0, 2.0, 2.0]
    # Targets from one run only (the tail) read the main pass.
    assert computed["iris c=64 service[onnx] p99 / p50"]["value"] == 2.5
    assert "samples" not in computed["iris c=8 service[onnx] / sklearn floor"]
    text = markdown({**_report(results), "rounds": 3, "slices": 3, "sets": 2})
    assert "## Repeated and side-by-side runs" in text
    assert "in 3 one-second slices with all three servers up, over 2 set(s)" in text
    assert "| 2 (set 1) | iris | onnx-floor | /predict | 1 | 8 | 12000 |" in text
    assert "| 3 (set 2) | iris | onnx-floor | /predict | 1 | 8 | 10000 |" in text
    assert "| 2 | iris | service[onnx] | /predict/batch |" in text  # a repeat, not a slice
    assert (
        "| iris c=8 service[onnx] / onnx floor | 0.65 | 0.7 | NO | 0.65 | 0.6, 0.65, 0.7 |" in text
    )
    main_table = text.split("## Repeated and side-by-side runs")[0]
    assert main_table.count("| iris | onnx-floor | /predict | 1 | 8 |") == 1


def test_without_slices_the_c8_ratios_come_from_the_main_pass() -> None:
    computed = ratios(_with_repeats({}, batch={}))
    floor = computed["iris c=8 service[onnx] / onnx floor"]
    assert floor["value"] == 0.75
    assert "samples" not in floor
