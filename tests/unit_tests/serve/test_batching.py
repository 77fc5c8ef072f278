"""Micro-batching: right answers to the right callers, isolated errors, the wait bound, drain."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from src.serve.app import create_app
from src.serve.backends.base import Prediction
from src.serve.batching import BatchMetrics, MicroBatcher
from src.serve.hooks import HookRegistry
from src.serve.inference import InferenceService
from src.serve.loaded_model import LoadedModel
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.echo_backend import EchoBackend, RowCounter, echo_model, run_scenario
from tests.unit_tests.serve.helpers import AUTH, AppClient, make_settings, metric_value

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture
def model(artifacts: Path, iris: BuiltArtifact) -> LoadedModel:
    """A loaded model whose backend is an :class:`EchoBackend` (in the thread pool)."""
    return echo_model(artifacts)


def _announce(batcher: MicroBatcher, requests: int) -> None:
    """Announce ``requests`` single-row requests whose rows are still being read."""
    for _ in range(requests):
        batcher.row_arriving()


def _batcher(
    *, max_size: int = 64, max_wait: float = 0.002, hook: RowCounter | None = None
) -> MicroBatcher:
    hooks = HookRegistry()
    if hook is not None:
        hooks.add(hook)
    return MicroBatcher(
        hooks,
        max_size=max_size,
        max_wait_seconds=max_wait,
        metrics=BatchMetrics(CollectorRegistry()),
    )


def test_each_caller_gets_its_own_answer_from_shared_backend_calls(model: LoadedModel) -> None:
    backend: EchoBackend = model.backend  # type: ignore[assignment]
    hook = RowCounter()
    batcher = _batcher(max_size=16, hook=hook)

    async def scenario() -> list[list[Prediction]]:
        _announce(batcher, 100)  # more requests announced: rows wait for company
        calls = [batcher.infer(model, [(i, 0, 0, 0)]) for i in range(100)]
        return await asyncio.gather(*calls)

    answers = run_scenario(scenario())
    assert [a[0].prediction for a in answers] == [i * 10 for i in range(100)]
    assert sorted(hook.rows) == list(range(100))  # the hooks saw every row once
    assert max(len(call) for call in backend.calls) == 16  # capped at BATCH_MAX_SIZE
    assert len(backend.calls) < 20  # ~100/16 backend calls, not 100
    assert threading.get_ident() not in backend.threads  # in the thread pool, not the loop


def test_one_bad_row_fails_only_its_own_request(model: LoadedModel) -> None:
    hook = RowCounter()
    batcher = _batcher(max_size=8, hook=hook)

    async def scenario() -> list[Any]:
        _announce(batcher, 8)
        rows = [(i, 0, 0, 0) for i in range(7)]
        rows.insert(3, ("bad", 0, 0, 0))
        calls = [batcher.infer(model, [row]) for row in rows]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = run_scenario(scenario())
    assert isinstance(results[3], ValueError)
    good = [r for i, r in enumerate(results) if i != 3]
    assert [r[0].prediction for r in good] == [i * 10 for i in range(7)]
    assert sorted(hook.rows) == list(range(7))  # the failed row is not reported as answered


def test_a_lone_request_is_dispatched_at_once(model: LoadedModel) -> None:
    batcher = _batcher(max_wait=30.0)  # a row that waited for company would hang the test

    async def scenario() -> Any:
        batcher.row_arriving()
        batcher.row_arrived()
        return await asyncio.wait_for(batcher.infer(model, [(7, 0, 0, 0)]), 5)

    assert run_scenario(scenario())[0].prediction == 70


def test_a_row_waits_for_an_announced_row_and_shares_its_backend_call(
    model: LoadedModel,
) -> None:
    backend: EchoBackend = model.backend  # type: ignore[assignment]
    batcher = _batcher(max_wait=30.0)

    async def scenario() -> list[Any]:
        _announce(batcher, 2)  # two requests are reading their rows
        batcher.row_arrived()
        first = asyncio.create_task(batcher.infer(model, [(1, 0, 0, 0)]))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not first.done()  # waiting for the row still on its way
        batcher.row_arrived()
        second = asyncio.create_task(batcher.infer(model, [(2, 0, 0, 0)]))
        return await asyncio.gather(first, second)

    assert [a[0].prediction for a in run_scenario(scenario())] == [10, 20]
    assert backend.calls == [[1, 2]]


def test_a_row_waits_for_an_announced_row_no_longer_than_batch_max_wait(
    model: LoadedModel,
) -> None:
    backend: EchoBackend = model.backend  # type: ignore[assignment]
    batcher = _batcher(max_wait=0.05)

    async def scenario() -> Any:
        _announce(batcher, 1)  # announced, but its row never comes
        return await asyncio.wait_for(batcher.infer(model, [(7, 0, 0, 0)]), 5)

    assert run_scenario(scenario())[0].prediction == 70
    assert backend.calls == [[7]]


def test_a_full_batch_does_not_wait_for_the_timer(model: LoadedModel) -> None:
    batcher = _batcher(max_size=4, max_wait=30.0)

    async def scenario() -> float:
        _announce(batcher, 1000)
        started = time.perf_counter()
        calls = [batcher.infer(model, [(i, 0, 0, 0)]) for i in range(4)]
        await asyncio.wait_for(asyncio.gather(*calls), 5)
        return time.perf_counter() - started

    assert run_scenario(scenario()) < 5.0


def test_shutdown_drains_the_queue(model: LoadedModel) -> None:
    batcher = _batcher(max_size=64, max_wait=30.0)  # rows would otherwise wait 30 s

    async def scenario() -> tuple[list[Any], float]:
        _announce(batcher, 1000)
        tasks = [asyncio.create_task(batcher.infer(model, [(i, 0, 0, 0)])) for i in range(10)]
        await asyncio.sleep(0.01)
        assert not any(t.done() for t in tasks)  # queued, waiting for company
        started = time.perf_counter()
        await asyncio.wait_for(batcher.stop(), 5)
        assert all(t.done() for t in tasks)  # stop() returned after every row was answered
        return [t.result()[0].prediction for t in tasks], time.perf_counter() - started

    answers, took = run_scenario(scenario())
    assert answers == [i * 10 for i in range(10)]
    assert took < 5.0


def test_after_stop_rows_pass_straight_through(model: LoadedModel) -> None:
    batcher = _batcher(max_wait=30.0)

    async def scenario() -> Any:
        await batcher.stop()
        _announce(batcher, 1000)
        return await asyncio.wait_for(batcher.infer(model, [(1, 0, 0, 0)]), 5)

    assert run_scenario(scenario())[0].prediction == 10


def test_a_caller_that_gives_up_does_not_disturb_the_others(model: LoadedModel) -> None:
    model = dataclasses.replace(model, backend=EchoBackend(delay=0.05))
    batcher = _batcher(max_size=4, max_wait=0.01)

    async def scenario() -> list[Any]:
        _announce(batcher, 1000)
        impatient = asyncio.create_task(batcher.infer(model, [(0, 0, 0, 0)]))
        others = [asyncio.create_task(batcher.infer(model, [(i, 0, 0, 0)])) for i in (1, 2)]
        await asyncio.sleep(0)
        impatient.cancel()
        return await asyncio.gather(*others)

    assert [a[0].prediction for a in run_scenario(scenario())] == [10, 20]


def test_rows_of_two_model_versions_are_predicted_by_their_own_model(model: LoadedModel) -> None:
    other = dataclasses.replace(model, backend=EchoBackend())
    batcher = _batcher(max_size=8)

    async def scenario() -> list[Any]:
        _announce(batcher, 8)
        calls = [batcher.infer(model if i % 2 else other, [(i, 0, 0, 0)]) for i in range(8)]
        return await asyncio.gather(*calls)

    answers = run_scenario(scenario())
    assert [a[0].prediction for a in answers] == [i * 10 for i in range(8)]
    mine = [x for call in model.backend.calls for x in call]  # type: ignore[attr-defined]
    theirs = [x for call in other.backend.calls for x in call]  # type: ignore[attr-defined]
    assert sorted(mine) == [1, 3, 5, 7]
    assert sorted(theirs) == [0, 2, 4, 6]


def test_multi_row_calls_bypass_the_queue(model: LoadedModel) -> None:
    batcher = _batcher(max_wait=30.0)

    async def scenario() -> Any:
        _announce(batcher, 1000)
        return await asyncio.wait_for(batcher.infer(model, [(1, 0, 0, 0), (2, 0, 0, 0)]), 5)

    assert [p.prediction for p in run_scenario(scenario())] == [10, 20]


def test_batch_max_size_one_means_no_batcher(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    app = create_app(make_settings(artifacts))
    assert type(app.state.serve.inference) is InferenceService
    with pytest.raises(ValueError, match="max_size >= 2"):
        MicroBatcher(HookRegistry(), max_size=1, max_wait_seconds=0.002)


def test_the_service_batches_concurrent_predictions(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    app = create_app(make_settings(artifacts, batch_max_size=8, batch_max_wait_ms=20))
    assert isinstance(app.state.serve.inference, MicroBatcher)
    rows = [
        {"sepal_length": 4.0 + i / 10, "sepal_width": 3.0, "petal_length": 1.0 + i / 5,
         "petal_width": 0.2 + i / 20}
        for i in range(24)
    ]  # fmt: skip
    with AppClient(app) as client:
        singles = [client.post("/predict", json=row, headers=AUTH).json() for row in rows]

        async def concurrently() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                calls = [
                    http.post("/predict", json={**row, "request_id": f"r{i}"}, headers=AUTH)
                    for i, row in enumerate(rows)
                ]
                return await asyncio.gather(*calls)

        responses = client.portal.call(concurrently)
        metrics = client.get("/metrics").text
    for i, (response, single) in enumerate(zip(responses, singles, strict=True)):
        assert response.status_code == 200
        body = response.json()
        assert body["request_id"] == f"r{i}"
        assert body["prediction"] == single["prediction"]
        for label, probability in single["probabilities"].items():  # BLAS: batch vs one row
            assert body["probabilities"][label] == pytest.approx(probability, abs=1e-12)
    assert metric_value(metrics, "serve_batch_size_count") >= 1
    assert metric_value(metrics, "serve_batch_size_sum") == 2 * len(rows)
    assert metric_value(metrics, "serve_batch_queue_wait_seconds_count") == 2 * len(rows)


def test_inference_threads_setting_reaches_the_service(
    clean_env: pytest.MonkeyPatch, artifacts: Path, iris: BuiltArtifact
) -> None:
    plain = create_app(make_settings(artifacts, inference_threads=3))
    assert plain.state.serve.inference.threads == 3
    batching = create_app(make_settings(artifacts, inference_threads=2, batch_max_size=4))
    assert batching.state.serve.inference.threads == 2
    assert create_app(make_settings(artifacts)).state.serve.inference.threads == 1
