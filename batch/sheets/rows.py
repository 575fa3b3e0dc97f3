"""``parse_requests``: the rows of a Sheet -> LicenseRequests, in input order, none dropped.

Per row: the user key (``cells.clean_user``: the cell without invisible characters, ``mailto:``, a
display-name form...; the cell itself stays as written), the action word (empty = assign, or replace when
the row has a from-license), the licenses (several per cell, ``cells.split_licenses``: ``;`` ``|`` line
breaks, ``,`` and ``+``), disabled plans, usage location and priority, all still as the user wrote them;
resolving them against the tenant is validation's job.

A row that cannot become a request (no user, unknown action word, a replace without a from or a to,
no license) gives exactly ONE request carrying the error finding(s). Warnings (a bad priority, a
from-license on an assign row) ride on every request of the row; they compare equal, so a report can
de-duplicate them per row with a set.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import RowFinding, Severity, shorten
from ..models import Action, InputRow, LicenseRequest, Role, Sheet
from .cells import clean_user, split_licenses

if TYPE_CHECKING:
    from .catalog import ProductCatalog

#: Action words (compared lower-case, trimmed). Keep in one place.
ACTION_WORDS: dict[str, Action] = {
    **dict.fromkeys(("assign", "add", "grant", "+", "give", "assign license"), Action.ASSIGN),
    **dict.fromkeys(("remove", "revoke", "unassign", "delete", "-", "take away", "remove license"), Action.REMOVE),
    **dict.fromkeys(("replace", "swap", "change", "move", "switch", "replace license"), Action.REPLACE),
}

_PLAN_SPLIT = re.compile(r"\s*(?:;|\||,|\r\n|\r|\n)\s*")


def split_plans(cell: str) -> tuple[str, ...]:
    return tuple(x for x in _PLAN_SPLIT.split(cell.strip()) if x)


def parse_action(word: str) -> Action | None:
    return ACTION_WORDS.get(" ".join(word.casefold().split()))


def parse_requests(sheet: Sheet, *, catalog: ProductCatalog | None = None) -> list[LicenseRequest]:
    """One or more LicenseRequests per data row, in input order.

    ``catalog`` (optional) only helps to split cells that list several product names with commas.
    """
    cols = sheet.columns
    headers = sheet.headers
    get = cols.get
    user_i, sku_i, to_i, from_i = get(Role.USER), get(Role.SKU), get(Role.TO_SKU), get(Role.FROM_SKU)
    action_i, plans_i = get(Role.ACTION), get(Role.DISABLED_PLANS)
    loc_i, prio_i = get(Role.USAGE_LOCATION), get(Role.PRIORITY)
    has_target_column = sku_i is not None or to_i is not None
    idx = (user_i, sku_i, to_i, from_i, action_i, prio_i)

    # Cells repeat a lot in real sheets (the same license, action, plans on thousands of rows):
    # parse each distinct text once.
    lic_cache: dict[str, list[str]] = {}
    plan_cache: dict[str, tuple[str, ...]] = {"": ()}
    prio_cache: dict[str, int | None] = {"": None}
    act_cache: dict[str, Action | None] = {"": Action.ASSIGN}
    user_cache: dict[str, str] = {"": ""}
    assign, remove = Action.ASSIGN, Action.REMOVE

    out: list[LicenseRequest] = []
    append = out.append
    for row in sheet.rows:
        c = row.cells
        user = c[user_i] if user_i is not None else ""
        if user in user_cache:
            user = user_cache[user]
        else:
            user = user_cache[user] = clean_user(user)
        sku = c[sku_i] if sku_i is not None else ""
        to = c[to_i] if to_i is not None else ""
        frm = c[from_i] if from_i is not None else ""
        word = c[action_i] if action_i is not None else ""
        plans = c[plans_i] if plans_i is not None else ""
        prio = c[prio_i] if prio_i is not None else ""
        loc = (c[loc_i] if loc_i is not None else "") or None

        # Fast path: a user, assign/remove (or no action word), no from-license, a valid priority.
        if user and not frm:
            if word in act_cache:
                action = act_cache[word]
            else:
                action = act_cache[word] = parse_action(word)
            if prio in prio_cache:
                priority = prio_cache[prio]
            else:
                priority = prio_cache[prio] = _parse_int(prio)
            target = sku or to
            if (action is assign or action is remove) and (priority is not None or not prio) and target:
                licenses = lic_cache.get(target)
                if licenses is None:
                    licenses = lic_cache[target] = split_licenses(target, catalog)
                disabled = plan_cache.get(plans)
                if disabled is None:
                    disabled = plan_cache[plans] = split_plans(plans)
                if licenses:
                    for x in licenses:
                        append(
                            LicenseRequest(
                                row.index,
                                row.number,
                                user,
                                action,
                                x,
                                None,
                                disabled,
                                loc,
                                priority,
                                (),
                            )
                        )
                    continue
        out.extend(
            _row_requests(
                row,
                user=user,
                sku=sku,
                to=to,
                frm=frm,
                action_word=word,
                plans=plans,
                location=loc or "",
                prio=prio,
                headers=headers,
                idx=idx,
                has_target_column=has_target_column,
                catalog=catalog,
            )
        )
    return out


def _row_requests(
    row: InputRow,
    *,
    user: str,
    sku: str,
    to: str,
    frm: str,
    action_word: str,
    plans: str,
    location: str,
    prio: str,
    headers: tuple[str, ...],
    idx: tuple[int | None, ...],
    has_target_column: bool,
    catalog: ProductCatalog | None,
) -> list[LicenseRequest]:
    user_i, sku_i, to_i, from_i, action_i, prio_i = idx
    n = row.number

    def header(i: int | None) -> str | None:
        return None if i is None else headers[i]

    errors: list[RowFinding] = []
    warnings: list[RowFinding] = []
    if not user:
        errors.append(
            RowFinding(
                "user-missing",
                Severity.ERROR,
                "The user cell is empty.",
                "Fill in the user's userPrincipalName (or mail or object id), or delete the row.",
                n,
                header(user_i),
            )
        )

    action: Action | None
    if action_word:
        action = parse_action(action_word)
        if action is None:
            errors.append(
                RowFinding(
                    "action-unknown",
                    Severity.ERROR,
                    f"'{shorten(action_word)}' is not an action this tool knows.",
                    "Write assign, remove or replace (or add / revoke / swap), or leave it empty to assign.",
                    n,
                    header(action_i),
                )
            )
    elif frm and (to or sku or not has_target_column):
        action = Action.REPLACE if (to or sku) else Action.REMOVE
    elif frm and has_target_column:
        action = Action.REPLACE
    else:
        action = Action.ASSIGN

    priority: int | None = None
    if prio:
        priority = _parse_int(prio)
        if priority is None:
            warnings.append(
                RowFinding(
                    "priority-invalid",
                    Severity.WARNING,
                    f"Priority '{prio}' is not a whole number, so the row has no priority.",
                    "Write a whole number (1 = served first) or leave the cell empty.",
                    n,
                    header(prio_i),
                )
            )

    disabled = split_plans(plans) if plans else ()
    loc = location or None

    def one(sku_text: str, from_text: str | None, act: Action | None, findings: list[RowFinding]) -> LicenseRequest:
        return LicenseRequest(
            row=row.index,
            row_number=n,
            user=user,
            action=act,
            sku=sku_text,
            from_sku=from_text,
            disabled_plans=disabled,
            usage_location=loc,
            priority=priority,
            findings=tuple(findings),
        )

    if action is Action.REPLACE and not errors:
        to_text = to or sku
        froms = split_licenses(frm, catalog) if frm else []
        tos = split_licenses(to_text, catalog) if to_text else []
        if not froms or not tos:
            missing = "from" if not froms else "to"
            col = from_i if not froms else (to_i if to_i is not None else sku_i)
            errors.append(
                RowFinding(
                    "replace-incomplete",
                    Severity.ERROR,
                    f"A replace needs the license to take away and the license to give; the {missing}-license "
                    "is empty.",
                    "Fill in both the from-license and the to-license columns.",
                    n,
                    header(col),
                )
            )
        elif len(froms) > 1 or len(tos) > 1:
            errors.append(
                RowFinding(
                    "replace-multiple",
                    Severity.ERROR,
                    f"A replace swaps one license for one other; this row names {len(froms)} to take away "
                    f"and {len(tos)} to give.",
                    "Write one license in each of the from and to cells (one row per swap).",
                    n,
                    header(from_i if len(froms) > 1 else (to_i if to_i is not None else sku_i)),
                )
            )
        else:
            return [one(tos[0], froms[0], action, warnings)]
        return [one(to_text, frm or None, action, errors + warnings)]

    if action is Action.REPLACE:  # with errors already
        return [one(to or sku, frm or None, action, errors + warnings)]

    if action is Action.REMOVE:
        target, col = (sku, sku_i) if sku else ((frm, from_i) if frm else (to, to_i))
    else:
        target, col = (sku, sku_i) if sku else (to, to_i)
    if action is Action.ASSIGN and frm:
        warnings.append(
            RowFinding(
                "from-sku-ignored",
                Severity.WARNING,
                f"The row assigns a license, so its from-license '{frm}' is not removed.",
                "Write replace in the action column to swap licenses, or clear the from-license cell.",
                n,
                header(from_i),
            )
        )
    licenses = split_licenses(target, catalog) if target else []
    if not licenses and not errors:
        errors.append(
            RowFinding(
                "license-missing",
                Severity.ERROR,
                "The license cell is empty.",
                "Fill in the license (skuPartNumber such as SPE_E3, its skuId, or the product name).",
                n,
                header(col if col is not None else (sku_i if sku_i is not None else to_i)),
            )
        )
    if errors:
        return [one(target, None, action, errors + warnings)]
    return [one(x, None, action, warnings) for x in licenses]


def _parse_int(text: str) -> int | None:
    t = text.strip().replace("\u00a0", "").replace(" ", "")
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None
