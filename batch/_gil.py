"""The interpreter's thread switch interval, shortened while a reader thread works beside busy Python code."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: While shortened (seconds). CPython's default is 0.005.
SHORT_SWITCH_INTERVAL = 0.001

_lock = threading.Lock()
_users = 0
_saved = 0.0


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """Let a thread waiting on the network get the GIL back sooner.

    A page reader thread needs the GIL briefly after every ``recv`` (a 500 kB users page is a dozen of them).
    With Python code busy on another thread (parsing the previous page, reading the sheet), each of those waits
    up to the switch interval, 5 ms by default: the reader falls behind the server. Measured on the
    500,000-user sandbox (bench/export.py's reconcile): the directory was read in 25.7 s with 5 ms, 18.5 s
    with 1 ms. Nested and concurrent uses share one setting; the last one out restores the previous value.
    """
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SHORT_SWITCH_INTERVAL))
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setswitchinterval(_saved)
