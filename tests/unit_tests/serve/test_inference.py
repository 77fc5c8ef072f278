"""The plain inference service: answers, hooks, inline versus thread pool, the thread bound."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from src.serve.backends.base import Prediction, Row
from src.serve.hooks import HookRegistry
from src.serve.inference import InferenceService
from src.serve.loaded_model import LoadedModel
from tests.artifact_factory import BuiltArtifact
from tests.unit_tests.serve.echo_backend import EchoBackend, RowCounter, echo_model, run_scenario

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture
def model(artifacts: Path, iris: BuiltArtifact) -> LoadedModel:
    """A loaded model whose backend is an :class:`EchoBackend` (in the thread pool)."""
    return echo_model(artifacts)


def _service(hook: RowCounter | None = None, *, threads: int = 1) -> InferenceService:
    hooks = HookRegistry()
    if hook is not None:
        hooks.add(hook)
    return InferenceService(hooks, threads=threads)


def test_an_announced_row_never_holds_back_a_request(model: LoadedModel) -> None:
    service = _service()

    async def scenario() -> Any:
        service.row_arriving()  # another request announced; the plain service does not wait
        answer = await asyncio.wait_for(service.infer(model, [(7, 0, 0, 0)]), 5)
        service.row_arrived()
        return answer

    assert run_scenario(scenario())[0].prediction == 70


def test_every_answered_row_reaches_the_hooks_once(model: LoadedModel) -> None:
    hook = RowCounter()
    service = _service(hook)

    async def scenario() -> list[Any]:
        first = await service.infer(model, [(1, 0, 0, 0), (2, 0, 0, 0)])
        second = await service.infer(model, [(3, 0, 0, 0)])
        return [p.prediction for p in first + second]

    assert run_scenario(scenario()) == [10, 20, 30]
    assert hook.rows == [1, 2, 3]


def test_a_failing_backend_call_fails_its_request_and_reaches_no_hook(model: LoadedModel) -> None:
    hook = RowCounter()
    service = _service(hook)

    with pytest.raises(ValueError, match="breaks the model"):
        run_scenario(service.infer(model, [("bad", 0, 0, 0)]))
    assert hook.rows == []


def test_calls_up_to_inline_max_rows_run_on_the_event_loop(model: LoadedModel) -> None:
    inline = dataclasses.replace(model, backend=EchoBackend(), inline_max_rows=1)
    backend: EchoBackend = inline.backend  # type: ignore[assignment]
    service = _service()

    async def scenario() -> int:
        await service.infer(inline, [(1, 0, 0, 0)])
        loop_thread = threading.get_ident()
        backend.threads.clear()
        await service.infer(inline, [(1, 0, 0, 0), (2, 0, 0, 0)])
        return loop_thread

    backend.threads.clear()
    loop_thread = threading.get_ident()  # asyncio.run runs the loop in this thread
    assert run_scenario(scenario()) == loop_thread
    assert loop_thread not in backend.threads  # two rows: over the limit, in the thread pool


class ConcurrencyProbe(EchoBackend):
    """Records how many predictions ran at the same time."""

    def __init__(self) -> None:
        super().__init__(delay=0.05)
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().predict(rows)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("threads", [1, 3])
def test_inference_threads_bound_concurrent_predictions(model: LoadedModel, threads: int) -> None:
    probe = ConcurrencyProbe()
    slow = dataclasses.replace(model, backend=probe)
    service = _service(threads=threads)

    async def scenario() -> list[Any]:
        calls = [service.infer(slow, [(i, 0, 0, 0), (i, 0, 0, 0)]) for i in range(6)]
        return await asyncio.gather(*calls)

    answers = run_scenario(scenario())
    assert [a[0].prediction for a in answers] == [i * 10 for i in range(6)]
    assert probe.most == threads


class StuckBackend(EchoBackend):
    """Blocks every call until ``release`` is set (a model stuck in C code)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        self.entered.set()
        self.release.wait(10)
        return super().predict(rows)


def test_a_swapped_in_model_is_not_held_up_by_calls_stuck_on_the_old_one(
    model: LoadedModel,
) -> None:
    stuck = StuckBackend()
    old = dataclasses.replace(model, backend=stuck)  # a model object of its own: own slots
    new = dataclasses.replace(model, backend=EchoBackend())
    service = _service(threads=1)

    async def scenario() -> tuple[list[Any], bool]:
        hanging = asyncio.ensure_future(service.infer(old, [(1, 0, 0, 0), (1, 0, 0, 0)]))
        await asyncio.get_running_loop().run_in_executor(None, stuck.entered.wait, 5)
        answer = await asyncio.wait_for(service.infer(new, [(2, 0, 0, 0), (2, 0, 0, 0)]), 5)
        still_stuck = not hanging.done()
        stuck.release.set()
        await hanging
        return [p.prediction for p in answer], still_stuck

    answer, still_stuck = run_scenario(scenario())
    assert answer == [20, 20]
    assert still_stuck  # the old model's only slot was taken the whole time


def test_calls_of_one_model_still_share_its_slots(model: LoadedModel) -> None:
    stuck = StuckBackend()
    same = dataclasses.replace(model, backend=stuck)
    service = _service(threads=1)

    async def scenario() -> bool:
        first = asyncio.ensure_future(service.infer(same, [(1, 0, 0, 0), (1, 0, 0, 0)]))
        await asyncio.get_running_loop().run_in_executor(None, stuck.entered.wait, 5)
        second = asyncio.ensure_future(service.infer(same, [(2, 0, 0, 0), (2, 0, 0, 0)]))
        await asyncio.sleep(0.2)
        waited = not second.done()  # queued behind the stuck call
        stuck.release.set()
        await asyncio.gather(first, second)
        return waited

    assert run_scenario(scenario())


def test_an_inline_call_lets_the_event_loop_run_other_work_first(model: LoadedModel) -> None:
    inline = dataclasses.replace(model, backend=EchoBackend(), inline_max_rows=1)
    service = _service()
    order: list[str] = []

    async def other_request() -> None:
        order.append("other")

    async def scenario() -> None:
        asyncio.get_running_loop().call_soon(order.append, "ready callback")
        other = asyncio.ensure_future(other_request())  # ready to run, queued before the call
        (answer,) = await service.infer(inline, [(1, 0, 0, 0)])
        order.append(f"predicted {answer.prediction}")
        await other

    run_scenario(scenario())
    # the prediction waited one step: work that was already queued (other connections) ran
    assert order == ["ready callback", "other", "predicted 10"]
