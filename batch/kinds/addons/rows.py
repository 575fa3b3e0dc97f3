"""Reading environment-to-add-on rows: ``Sheet`` -> ``AddonRequest`` (one per environment and add-on).

Two layouts, told apart by the columns:

- **long**: an environment column, an add-on column and an amount column (one row per environment and
  add-on);
- **wide**: an environment column and one column per add-on, headed by its name ("AI Builder credits",
  "AppPass", ...); each non-empty cell is one request, and the cell's header is its column in messages.

Amounts: ``500`` sets the allocation to 500 (allocations are absolute); ``+500`` / ``-200`` change the current
allocation; ``0`` unassigns. Thousands separators (``1,000``) and Excel's ``500.0`` are accepted; anything
that is not a whole number is a finding. Every input row gives at least one request, so no row is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...errors import RowFinding, Severity
from ...models import AddonRequest, InputRow, Role, Sheet
from .names import resolve_addon

_AMOUNT = re.compile(r"^([+-])?\s*(\d{1,3}(?:[,\u202f\u00a0 ]\d{3})+|\d+)(?:\.0+)?$")

#: Findings of reading add-on rows (validation's are in ``checks``); code -> (severity, meaning).
READ_FINDINGS: dict[str, tuple[Severity, str]] = {
    "environment-missing": (Severity.ERROR, "The row names no environment."),
    "addon-missing": (Severity.ERROR, "The row names no add-on."),
    "amount-missing": (Severity.ERROR, "The row gives no amount."),
    "amount-not-whole": (Severity.ERROR, "The amount is not a whole number (500, +500 or -200)."),
    "priority-invalid": (Severity.WARNING, "The priority cell is not a whole number; the row has no priority."),
}


def wide_columns(sheet: Sheet) -> list[tuple[int, str]]:
    """(column index, currencyType) of every column headed by an add-on's name (the wide layout)."""
    roles = set(sheet.columns.values())
    out: list[tuple[int, str]] = []
    for i, h in enumerate(sheet.headers):
        if i in roles:
            continue
        a = resolve_addon(h)
        if a is not None:
            out.append((i, a.currency_type))
    return out


def is_wide(headers: Sequence[str], columns: dict[Role, int]) -> bool:
    taken = set(columns.values())
    return Role.ADDON not in columns and any(resolve_addon(h) for i, h in enumerate(headers) if i not in taken)


def parse_amount(text: str) -> tuple[int | None, bool]:
    """(amount, relative): ``"+500"`` -> (500, True), ``"-200"`` -> (-200, True), ``"1,000"`` -> (1000, False);
    (None, False) when the text is not a whole number."""
    m = _AMOUNT.match(text.strip())
    if not m:
        return None, False
    sign, digits = m.group(1), re.sub(r"\D", "", m.group(2))
    n = int(digits)
    return (-n if sign == "-" else n), sign is not None


def _finding(code: str, message: str, fix: str, row: int, column: str | None) -> RowFinding:
    return RowFinding(code, READ_FINDINGS[code][0], message, fix, row, column)


def parse_addon_requests(sheet: Sheet) -> list[AddonRequest]:
    """Every row of an add-on sheet as requests, in input order."""
    env_col = sheet.columns.get(Role.ENVIRONMENT)
    addon_col = sheet.columns.get(Role.ADDON)
    amount_col = sheet.columns.get(Role.AMOUNT)
    prio_col = sheet.columns.get(Role.PRIORITY)
    wide = wide_columns(sheet) if addon_col is None else []
    out: list[AddonRequest] = []
    for row in sheet.rows:
        out.extend(_row(sheet, row, env_col, addon_col, amount_col, prio_col, wide))
    return out


def _cell(row: InputRow, i: int | None) -> str:
    return row.cells[i].strip() if i is not None and i < len(row.cells) else ""


def _row(
    sheet: Sheet,
    row: InputRow,
    env_col: int | None,
    addon_col: int | None,
    amount_col: int | None,
    prio_col: int | None,
    wide: list[tuple[int, str]],
) -> list[AddonRequest]:
    n = row.number
    head = sheet.headers
    common: list[RowFinding] = []
    env = _cell(row, env_col)
    if not env:
        common.append(_finding("environment-missing", "The row names no environment.",
                               "Fill in the environment's name or id.", n, head[env_col] if env_col is not None
                               else None))
    priority: int | None = None
    ptext = _cell(row, prio_col)
    if ptext:
        p, rel = parse_amount(ptext)
        if p is None or rel:
            common.append(_finding("priority-invalid", f"Priority '{ptext[:40]}' is not a whole number; ignored.",
                                   "Write a whole number (1 = served first) or leave it empty.", n,
                                   head[prio_col] if prio_col is not None else None))
        else:
            priority = p

    def one(addon: str, text: str, column: str | None, amount_column: str | None) -> AddonRequest:
        findings = list(common)
        amount: int | None = None
        relative = False
        if not addon:
            findings.append(_finding("addon-missing", "The row names no add-on.",
                                     "Fill in the add-on (e.g. AI Builder credits, or its type AI).", n, column))
        if not text:
            findings.append(_finding("amount-missing", f"The row gives no amount for {addon or 'the add-on'}.",
                                     "Write the allocation (500), a change (+500 or -200), or 0 to unassign.", n,
                                     amount_column))
        else:
            amount, relative = parse_amount(text)
            if amount is None:
                findings.append(_finding("amount-not-whole", f"The amount '{text[:40]}' is not a whole number.",
                                         "Write a whole number: 500 to set it, +500 or -200 to change it, 0 to "
                                         "unassign.", n, amount_column))
        return AddonRequest(row=row.index, row_number=n, environment=env, addon=addon, amount=amount,
                            relative=relative, amount_text=text, column=column, priority=priority,
                            findings=tuple(findings))

    if addon_col is not None or not wide:
        amount_header = head[amount_col] if amount_col is not None else None
        return [one(_cell(row, addon_col), _cell(row, amount_col), head[addon_col] if addon_col is not None
                    else None, amount_header)]
    asked = [(i, ct) for i, ct in wide if _cell(row, i)]
    if not asked:
        f = [*common, _finding("amount-missing", "The row gives no amount for any add-on column.",
                               "Fill in at least one add-on column, or delete the row.", n, None)]
        return [AddonRequest(row=row.index, row_number=n, environment=env, addon="", amount=None,
                             priority=priority, findings=tuple(f))]
    return [one(head[i], _cell(row, i), head[i], head[i]) for i, _ct in asked]


__all__ = ["READ_FINDINGS", "is_wide", "parse_addon_requests", "parse_amount", "wide_columns"]
