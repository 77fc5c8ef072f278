"""Keep Python's cyclic garbage collector off the long-lived heap.

A loaded service holds ~150,000 long-lived objects (scikit-learn, pandas, onnxruntime,
pydantic, the model). Requests allocate many short-lived ones (a 1,000-row batch: ~10,000
dicts and tuples); enough of them survive a young collection (they are in flight) that every
few requests CPython runs a *full* collection, which walks the whole long-lived heap again.
Measured on a 1,000-row ``/predict/batch``: 5.7 ms of CPU per request, 2.8 ms after
``gc.freeze()`` (docs/performance.md). Freezing moves every object alive at that moment into
a permanent generation the collector never scans; reference counting still frees them.

:class:`HeapSettler` does it whenever a model has been swapped in: first a full collection
(garbage cycles go now), then the freeze. That pause (tens of milliseconds) happens once per
load, in the thread that loads the model. The model just replaced is still referenced by the
reload at that moment: reference counting frees most of it when the reload returns, and its
reference cycles (e.g. its request schema classes) are collected at the next load, so at most
one old model's cyclic remains are kept meanwhile.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from src.serve.model_store import LoadedModel
    from src.serve.predictor import Prediction, Row


def settle_heap() -> None:
    """Collect everything collectable, then freeze the survivors (see the module docstring)."""
    gc.unfreeze()  # previously frozen objects become collectable again (an old model)
    gc.collect()
    gc.freeze()


class HeapSettler:
    """A :class:`~src.serve.hooks.ServeHook` that settles the heap after each model swap."""

    def on_model_loaded(self, model: LoadedModel, previous: LoadedModel | None) -> None:
        """The new model is in place: collect the old one's garbage and freeze the rest."""
        settle_heap()

    def on_predictions(
        self, model: LoadedModel, rows: Sequence[Row], predictions: Sequence[Prediction]
    ) -> None:
        """Nothing per prediction."""
