"""Add-on allocations in a reconcile: the sheet's environment-to-add-on rows are the desired allocations.

The add-ons kind's own checks (``batch.kinds.addons``) resolve environments and add-ons and compute each row's
allocation before and after (absolute); every READY one is drift. Raising an allocation is fixed by --apply;
lowering one (and, with ``--scope all``, an allocation the sheet leaves out, which should be 0) only with
--prune. One allocation request per environment, like the add-ons kind's plan.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import RowFinding, Severity
from ..kinds import KINDS
from ..models import (
    AddonRequest,
    CheckedAddon,
    InputRow,
    Kind,
    RequestStatus,
    Role,
    Sheet,
    ShortfallPolicy,
)

if TYPE_CHECKING:
    from .reconcile import _Builder

FIX = "--apply (lowering: --prune)"
DRIFT_COLUMN = "Drift"  # as batch.desired.reconcile


def addon_drift(b: _Builder, sheet: Sheet, *, all_environments: bool) -> None:
    """Add-on allocations that differ from the sheet (and, with --scope all, allocations it leaves out) ->
    the builder's drift lines, checked requests and one allocation request per environment."""
    from ..kinds.addons.names import addon_label
    from ..kinds.addons.plan import allocation_operation

    kind = KINDS[Kind.ADDONS]
    requests = kind.parse(sheet, catalog=None)
    base = b._next_row
    offset = base - min((r.index for r in sheet.rows), default=0)
    if offset:
        requests = [replace(r, row=r.row + offset) for r in requests]
        sheet = replace(sheet, rows=[InputRow(r.index + offset, r.number, r.cells) for r in sheet.rows])
    checked, lines = kind.validate(sheet, requests, b.snap, catalog=None, policy=ShortfallPolicy.STOP,
                                   reserve_of=lambda _n: 0)
    listed = {(c.environment_id, c.currency_type) for c in checked if isinstance(c, CheckedAddon)}
    texts: dict[int, str] = {}
    extra: list[InputRow] = []
    number = max((r.number for r in sheet.rows), default=sheet.header_row)
    nxt = max((r.index for r in sheet.rows), default=base - 1) + 1
    ei, ai, mi = (sheet.columns.get(x) for x in (Role.ENVIRONMENT, Role.ADDON, Role.AMOUNT))
    if all_environments:
        for env_id, alloc in sorted(b.snap.allocations.items()):
            for ct, n in sorted(alloc.items()):
                if n and (env_id, ct) not in listed:
                    env = b.snap.environments.get(env_id)
                    name = env.display_name if env else env_id
                    number += 1
                    cells = [""] * len(sheet.headers)
                    for i, v in ((ei, name), (ai, ct), (mi, "0")):
                        if i is not None:
                            cells[i] = v
                    extra.append(InputRow(nxt, number, (*cells, "")))
                    checked.append(CheckedAddon(AddonRequest(nxt, number, name, ct, 0, amount_text="0"),
                                                RequestStatus.READY, [], environment_id=env_id, currency_type=ct,
                                                before=n, after=0))
                    nxt += 1
    per_env: dict[str, dict[str, int]] = {}
    before: dict[str, dict[str, int]] = {}
    rows: dict[str, set[int]] = {}
    for c in checked:
        if not isinstance(c, CheckedAddon) or c.status is not RequestStatus.READY:
            continue
        assert c.environment_id and c.currency_type and c.before is not None and c.after is not None
        env = b.snap.environments.get(c.environment_id)
        label = f"{addon_label(c.currency_type)} {c.before} -> {c.after}"
        lower = c.after < c.before
        sent = b.prune or not lower
        texts[c.request.row] = f"allocation: {label}"
        b.lines.append({"kind": "allocation", "target": env.display_name if env else c.environment_id,
                           "license": c.currency_type, "detail": label,
                           "fix": FIX if sent else "run with --apply --prune to lower it",
                           "row": c.request.row_number if c.request.row < nxt - len(extra) else 0,
                           "applied": sent})
        if not sent:
            c.status = RequestStatus.UNCHANGED
            c.findings.append(RowFinding("drift-allocation", Severity.WARNING, f"{label}: lowering needs --prune",
                                         "run with --apply --prune", c.request.row_number, None))
            continue
        b.changed_units[c.currency_type] = b.changed_units.get(c.currency_type, 0) + c.after - c.before
        per_env.setdefault(c.environment_id, {})[c.currency_type] = c.after
        before.setdefault(c.environment_id, {})[c.currency_type] = c.before
        rows.setdefault(c.environment_id, set()).add(c.request.row)
    for env_id, alloc in per_env.items():
        env = b.snap.environments.get(env_id)
        b._addon_ops.append(allocation_operation(env_id, env.display_name if env else env_id, before[env_id], alloc,
                                                 tuple(sorted(rows[env_id])), b.allocations_api))
    out_rows = [InputRow(r.index, r.number, (*r.cells, texts.get(r.index, ""))) for r in sheet.rows]
    extra = [InputRow(r.index, r.number, (*r.cells[:-1], texts.get(r.index, ""))) for r in extra]
    b.capacity.extend(lines)

    def finish() -> None:
        b.sheets.append(replace(sheet, headers=(*sheet.headers, DRIFT_COLUMN), rows=out_rows + extra))
        b.checked.extend(checked)

    b._finish.append(finish)
    b._next_row = nxt
