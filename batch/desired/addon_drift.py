"""Add-on allocations in a reconcile: the sheet's environment-to-add-on rows are the desired allocations.

The add-ons kind's own checks (``batch.kinds.addons``) resolve environments and add-ons and compute each row's
allocation before and after (absolute); every READY one is drift. Raising an allocation is fixed by --apply;
lowering one (and, with ``--scope all``, an allocation the sheet leaves out, which should be 0) only with
--prune. One allocation request per environment, like the add-ons kind's plan.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from .where import SheetsOf

if TYPE_CHECKING:
    from .reconcile import Builder

FIX = "--apply (lowering: --prune)"


def addon_drift(b: Builder, sheets: Sequence[Sheet], *, all_environments: bool) -> None:
    """Add-on allocations that differ from the sheets (and, with --scope all, allocations they leave out) ->
    the builder's drift lines, checked requests and one allocation request per environment. Several add-ons
    sheets are one desired state: checked together (an environment and add-on on two sheets is a duplicate or a
    conflict, and capacity is counted once); each input row keeps its result on its own sheet."""
    from ..kinds.addons.checks import validate_addons
    from ..kinds.addons.names import addon_label
    from ..kinds.addons.plan import allocation_operation

    kind = KINDS[Kind.ADDONS]
    placed: list[Sheet] = []
    requests: list[AddonRequest] = []
    for sheet in sheets:  # each sheet's rows follow what the builder holds so far (row indexes stay unique)
        sheet = b.place_sheet(sheet)
        placed.append(sheet)
        requests.extend(kind.parse(sheet, catalog=None))
    where = SheetsOf(placed)
    checked, lines = validate_addons(requests, b.snap, env_column=placed[0].header_for(Role.ENVIRONMENT),
                                     policy=ShortfallPolicy.STOP, reserve_of=lambda _n: 0, places=where)
    listed = {(c.environment_id, c.currency_type) for c in checked if isinstance(c, CheckedAddon)}
    home_of: dict[str, Sheet] = {}  # environment id -> the sheet whose row names it first
    for c in checked:
        if isinstance(c, CheckedAddon) and c.environment_id and c.environment_id not in home_of:
            home_of[c.environment_id] = where.of(c.request.row)
    texts: dict[int, list[str]] = {}
    extra: dict[int, list[InputRow]] = {}  # id(sheet) -> rows below it
    extra_rows: set[int] = set()
    if all_environments:
        for env_id, alloc in sorted(b.snap.allocations.items()):
            for ct, n in sorted(alloc.items()):
                if n and (env_id, ct) not in listed:
                    env = b.snap.environments.get(env_id)
                    name = env.display_name if env else env_id
                    home = home_of.get(env_id, placed[0])
                    cells = [""] * len(home.headers)
                    for i, v in ((home.columns.get(x), y) for x, y in ((Role.ENVIRONMENT, name), (Role.ADDON, ct),
                                                                       (Role.AMOUNT, "0"))):
                        if i is not None:
                            cells[i] = v
                    below = b.extra_row(home, cells)
                    extra.setdefault(id(home), []).append(below)
                    extra_rows.add(below.index)
                    checked.append(CheckedAddon(AddonRequest(below.index, below.number, name, ct, 0,
                                                             amount_text="0"),
                                                RequestStatus.READY, [], environment_id=env_id, currency_type=ct,
                                                before=n, after=0))
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
        texts[c.request.row] = [f"allocation: {label}"]
        b.lines.append({"kind": "allocation", "target": env.display_name if env else c.environment_id,
                        "license": c.currency_type, "detail": label,
                        "fix": FIX if sent else "run with --apply --prune to lower it",
                        "row": c.request.row_number if c.request.row not in extra_rows else 0,
                        "applied": sent, "_at": c.request.row})
        if not sent:
            c.status = RequestStatus.UNCHANGED
            c.findings.append(RowFinding("drift-allocation", Severity.WARNING, f"{label}: lowering needs --prune",
                                         "run with --apply --prune", c.request.row_number, None))
            continue
        b.changed_units[c.currency_type] = b.changed_units.get(c.currency_type, 0) + c.after - c.before
        per_env.setdefault(c.environment_id, {})[c.currency_type] = c.after
        before.setdefault(c.environment_id, {})[c.currency_type] = c.before
        rows.setdefault(c.environment_id, set()).add(c.request.row)
    ops = []
    for env_id, alloc in per_env.items():
        env = b.snap.environments.get(env_id)
        ops.append(allocation_operation(env_id, env.display_name if env else env_id, before[env_id], alloc,
                                        tuple(sorted(rows[env_id])), b.allocations_api))
    b.add_operations(ops)
    out = [b.drift_sheet(sh, extra.get(id(sh), []), texts) for sh in placed]
    b.capacity.extend(lines)

    def finish() -> None:
        b.sheets.extend(out)
        b.checked.extend(checked)

    b.on_finish(finish)
