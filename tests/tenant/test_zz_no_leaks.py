"""Runs last in tests/tenant: a full collection here turns any socket or transport the tests above left
open into a ResourceWarning (an error under filterwarnings=error), instead of a silent leak."""

from __future__ import annotations

import gc


def test_nothing_left_open() -> None:
    gc.collect()
