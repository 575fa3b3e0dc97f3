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
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
