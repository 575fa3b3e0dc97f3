"""One helper shared by the bulk passes (snapshot parsing, validation, planning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around a bulk pass that allocates many small, acyclic objects.

    With ~10^5 records being built (or a 100,000-user snapshot on the heap), generation-2 collections triggered
    by the allocations cost about as much as the work itself (measured: snapshot parse 1.3 s -> 0.68 s CPU,
    validate 1.7 s -> 1.1 s). Reference counting still frees everything; the previous state is restored,
    also on error.

    On the way out, what the pass built and kept goes straight to the oldest generation (``gc.freeze`` then
    ``gc.unfreeze``, which moves objects without examining them). Otherwise the first young collection after the
    pause walks all of it at once: 1.2 s after a 500,000-user reconcile (bench/export.py), for nothing, since
    what survived the pass is long-lived. (The young objects of the caller go with it: a cycle among them waits
    for a full collection.) Not when the host has frozen objects of its own (``gc.freeze`` before forking
    workers): ``gc.unfreeze`` would release those too.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
