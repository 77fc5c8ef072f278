"""Keep Python's cyclic garbage collector off the long-lived heap.

A loaded service holds ~150,000 long-lived objects (scikit-learn, pandas, onnxruntime,
pydantic, the model). Requests allocate many short-lived ones (a 1,000-row batch: ~10,000
dicts and tuples), and those in flight when a young collection runs survive into the old
generation; every few requests CPython then runs a *full* collection, which walks the whole
long-lived heap again (docs/performance.md has the measured cost). Freezing moves every object
alive at that moment into a permanent generation the collector never scans; reference
counting still frees them.

:func:`settle_heap` runs after each model swap (``GC_FREEZE``, default on), in the thread that
loaded the model, once the store no longer references the model it replaced: unfreeze (a
replaced model's frozen objects become collectable again), one full collection (the replaced
model's reference cycles go now, unless a request still in flight holds it), then the freeze.
The pause is one full collection per load (tens of milliseconds), never per request.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()  # several stores (models) may finish loading at the same time


def settle_heap() -> int:
    """Collect everything collectable, then freeze the survivors; returns the number of
    objects now frozen (see the module docstring)."""
    with _lock:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return gc.get_freeze_count()
