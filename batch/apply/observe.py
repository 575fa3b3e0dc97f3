"""After the writes: changes that complete asynchronously, looked at per row until done or a timeout.

A group membership write succeeds at once, but Entra gives the group's licenses to the new member later
(cloud-facts, "group-based licensing"), and only then says whether it worked (``Active``) or not
(``CountViolation``, ``MutuallyExclusiveViolation``, ...). For the operation kinds whose kind has an
``observe`` function (``batch.kinds.groups.ops.observe``), this step reads the rows' targets again every
``poll_s`` seconds until every row is ``done``/``failed`` or ``wait_s`` has passed, records each row's
:class:`~batch.journal.Observation` in the journal and reports progress. Rows still ``pending`` at the
timeout say so in the results; ``license-batch status RUN_ID`` (or ``resume``) looks again later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TenantError
from ..models import OpKind
from .engine import ProgressEvent, ProgressNote
from .journal import Journal, Observation, OpRecord, OpState

#: Default bound on the wait for group processing (Entra usually takes seconds to a few minutes).
DEFAULT_PROCESSING_WAIT_S = 300.0

#: Operation kinds whose effect completes asynchronously, and the function that observes them.
_OBSERVED = (OpKind.ADD_MEMBERS, OpKind.REMOVE_MEMBER)


def _observer() -> Callable[..., list[Observation]]:
    from ..kinds.groups.ops import observe

    return observe


def needs_observing(records: Sequence[OpRecord], journal: Journal) -> list[OpRecord]:
    """Succeeded operations of observed kinds with a row not yet done or failed."""
    seen = journal.observations()
    out = []
    for r in records:
        if r.state is OpState.SUCCEEDED and r.op.kind in _OBSERVED and any(
            row not in seen or seen[row].state == "pending" for row in r.op.rows
        ):
            out.append(r)
    return out


def observe_rows(
    journal: Journal,
    tenant: Any,
    records: Sequence[OpRecord],
    *,
    wait_s: float = DEFAULT_PROCESSING_WAIT_S,
    poll_s: float = 1.0,
    progress: Callable[[ProgressEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, int]:
    """Look at the rows of asynchronous changes until settled or ``wait_s``. Returns (settled rows, pending)."""
    todo = needs_observing(records, journal)
    if not todo:
        return 0, 0
    targets = {c.row: c.target_id for c in journal.row_checks() if c.target_id}
    names = {s.sku_id: s.part_number for s in journal.skus()}
    run_id = journal.run_info().run_id
    observe = _observer()
    t0 = time.monotonic()
    total = len({r for rec in todo for r in rec.op.rows})
    pending = total
    while True:
        try:
            obs = observe(tenant, todo, targets, names, run_id)
        except TenantError as e:
            if progress is not None:
                progress(ProgressNote(f"group processing: could not read the members' licenses ({e}); "
                                      f"'license-batch status {run_id}' looks again later"))
            return total - pending, pending
        journal.record_observations(obs)
        pending = sum(1 for o in obs if o.state == "pending")
        elapsed = time.monotonic() - t0
        if progress is not None:
            progress(ProgressNote(f"group processing: {total - pending}/{total} members processed by Entra, "
                                  f"{elapsed:,.0f} s (waiting up to {wait_s:,.0f} s)"))
        if not pending or elapsed + poll_s > wait_s:
            return total - pending, pending
        todo = needs_observing(todo, journal)
        sleep(poll_s)


__all__ = ["DEFAULT_PROCESSING_WAIT_S", "needs_observing", "observe_rows"]
