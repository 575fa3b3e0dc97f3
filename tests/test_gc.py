"""``batch._gc.paused_gc``: the collector paused around a bulk pass, and what the pass kept promoted on the way out."""

from __future__ import annotations

import gc

from batch._gc import paused_gc


def test_what_the_pass_kept_goes_to_the_oldest_generation_and_the_collector_is_back() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        kept = [[n] for n in range(1000)]
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert id(kept) in oldest and id(kept[0]) in oldest  # the first young collection will not walk them


def test_what_the_host_froze_stays_frozen() -> None:
    """A host that froze its objects (before forking workers) keeps them frozen: no promotion then."""
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            kept = [[n] for n in range(1000)]
        assert gc.get_freeze_count() == frozen and gc.isenabled()
        assert id(kept) not in {id(o) for o in gc.get_objects(generation=2)}
    finally:
        gc.unfreeze()


def test_a_paused_collector_stays_paused() -> None:
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
