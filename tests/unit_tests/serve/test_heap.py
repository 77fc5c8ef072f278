"""The heap freeze after each model load (GC_FREEZE) and the hot swap it touches: the new
model serves, the replaced one is freed at that load, the setting off leaves the collector
alone."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.serve.app import create_app
from src.serve.heap import settle_heap
from tests.artifact_factory import BuiltArtifact, build_iris_artifact
from tests.unit_tests.serve.helpers import ADMIN, AUTH, IRIS_ROW, AppClient, make_settings

pytestmark = [
    pytest.mark.usefixtures("clean_env"),
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]


@pytest.fixture
def unfreeze_after() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process as it was


@pytest.mark.usefixtures("unfreeze_after")
def test_settle_heap_collects_cycles_then_freezes_the_rest() -> None:
    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    gc.freeze()  # the cycle is frozen, out of the collector's reach
    del cycle
    gc.collect()
    assert gone() is not None
    frozen = settle_heap()  # unfreeze, collect, freeze
    assert gone() is None
    assert frozen > 0
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("unfreeze_after")
def test_each_model_load_freezes_the_heap_and_frees_the_previous_model(
    artifacts: Path, iris: BuiltArtifact
) -> None:
    app = create_app(make_settings(artifacts, gc_freeze=True))
    with AppClient(app) as client:
        first = app.state.serve.store.current
        assert gc.get_freeze_count() > 10_000  # the loaded heap is out of the collector's reach
        old_backend = weakref.ref(first.backend)
        old_schemas = weakref.ref(first.schemas.request)  # a class: always in a cycle
        del first
        newer = build_iris_artifact(artifacts, C=0.5)
        reload = client.post("/admin/reload", headers=ADMIN).json()
        assert (reload["status"], reload["model_version"]) == ("loaded", newer.model_version)
        answer = client.post("/predict", json=IRIS_ROW, headers=AUTH)
        assert answer.status_code == 200
        assert answer.json()["model_version"] == newer.model_version  # load new, then swap
        assert old_backend() is None  # the replaced model was freed...
        assert old_schemas() is None  # ...its reference cycles too, at this same load


def test_gc_freeze_false_leaves_the_collector_alone(artifacts: Path, iris: BuiltArtifact) -> None:
    before = gc.get_freeze_count()
    with AppClient(create_app(make_settings(artifacts, gc_freeze=False))) as client:
        build_iris_artifact(artifacts, C=0.5)
        assert client.post("/admin/reload", headers=ADMIN).json()["status"] == "loaded"
        assert gc.get_freeze_count() == before
