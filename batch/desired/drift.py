"""Desired versus actual for users' licenses: the joins of reconcile, in pandas.

Two frames keyed by (user id, skuId):

- **desired** (``desired_frame``): one line per sheet row and license, resolved once per distinct text (a
  500,000-row sheet repeats a handful of licenses, plan lists and countries);
- **actual** (``actual_frame``): one line per user in scope and SKU they hold or are assigned, with how
  (direct, the direct assignment's disabled plans, held through a group, a group assignment in error).

An outer merge classifies every pair (``classify``) into one kind of drift:

=================  ==========================================================  =============================
drift              when                                                        fixed by
=================  ==========================================================  =============================
missing            the sheet asks for it, the user does not hold it             --apply: assign
extra              held directly, the sheet does not ask for it                 --apply --prune: remove
                   (held through a group as well: also ``group-unexpected``)
plans              held directly with other disabled plans                      --apply: disable the new ones;
                                                                                --prune: re-enable the others
location           the user's usage location differs from the sheet's          --apply: set it
group-missing      the sheet expects it through a group that does not give it   --apply: add to the group
group-unexpected   a group gives it, the sheet does not ask for it              --apply --prune: take out of
                                                                                the group (``group_drift``)
redundant          a pack that adds nothing next to another (E3 next to E5)     advice: the seats it frees
=================  ==========================================================  =============================

Group-held licenses are never removed or assigned directly to fix drift: that is done through membership
(``batch.desired.group_drift``; membership sheets: ``membership_drift``, kinds ``member-missing``/``member-extra``).

``redundant`` is validation's rule (:func:`batch.kinds.licenses.rules.redundant_holdings`: enabled service plans,
Exchange/SharePoint and suite tiers) applied to what each user holds, judged once per distinct holding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import RowFinding, Severity
from ..kinds.licenses import rules
from ..models import HELD_STATES, Role, Sheet, Sku, TenantSnapshot, User
from ..sheets.cells import clean_user, split_licenses
from ..sheets.resolve import SkuResolver, resolve_plans, resolve_usage_location
from ..sheets.rows import split_plans
from . import layout
from .where import SheetsOf

if TYPE_CHECKING:
    import pandas as pd

    from ..sheets.catalog import ProductCatalog

_PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%+'#-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")

#: Every kind of drift, in the order the drift report lists them (advice last).
DRIFT_KINDS = ("missing", "extra", "plans", "location", "allocation", "group-missing", "group-unexpected",
               "member-missing", "member-extra", "redundant")


def _pd() -> Any:
    import pandas as pd

    return pd


@dataclass(slots=True)
class Desired:
    frame: pd.DataFrame  # row, uid, sku_id, plans, via_group, direct_required, location
    errors: dict[int, list[RowFinding]] = field(default_factory=dict)  # row index -> why it cannot be used
    locations: dict[str, str] = field(default_factory=dict)  # uid -> usage location the sheet gives
    #: users with a row in error: what that row wants is unknown, so none of their licenses is called extra
    error_users: set[str] = field(default_factory=set)


def _finding(code: str, message: str, fix: str, row: int, column: str | None) -> RowFinding:
    return RowFinding(code, Severity.ERROR, message, fix, row, column)


def sheet_frame(sheet: Sheet) -> pd.DataFrame:
    """The sheet's cells that matter, as text (no tenant needed: reconcile builds it while the tenant is read)."""
    pd = _pd()
    cols = sheet.columns
    ui, si = cols.get(Role.USER), cols.get(Role.SKU, cols.get(Role.TO_SKU))
    pi, li = cols.get(Role.DISABLED_PLANS), cols.get(Role.USAGE_LOCATION)
    hi = layout.held_column(sheet.headers)
    rows = sheet.rows
    cells = [r.cells for r in rows]
    width = min((len(c) for c in cells), default=0)

    def column(i: int | None) -> list[str]:
        if i is None:
            return [""] * len(cells)
        if i < width:
            return [c[i] for c in cells]
        return [c[i] if i < len(c) else "" for c in cells]

    users = column(ui)
    # users: clean each distinct cell once (copy-paste debris, display names around the address); a plain
    # address needs no cleaning
    plain = _PLAIN_ADDRESS.match
    keys = {u: (u.lower() if plain(u) else clean_user(u).lower()) for u in set(users)}
    return pd.DataFrame({
        "row": [r.index for r in rows],
        "number": [r.number for r in rows],
        "user": users,
        "sku_text": column(si),
        "plans_text": column(pi),
        "loc_text": column(li),
        "held": column(hi),
        "user_key": [keys[u] for u in users],
    })


def sheets_frame(sheets: Sequence[Sheet]) -> pd.DataFrame:
    """``sheet_frame`` of every licenses sheet, one after the other (one desired state)."""
    frames = [sheet_frame(s) for s in sheets]
    return frames[0] if len(frames) == 1 else _pd().concat(frames, ignore_index=True)


def _codes(*columns: Any) -> tuple[list[Any], Any]:
    """Integer codes of several columns' values in one code space (-1 where missing), and the distinct values.

    The joins below run on these (or on ``user code * SKUs + SKU code``), never on the id strings: a join, a
    duplicate check or a scope test on 500,000 GUID strings costs seconds, on int64 keys tens of ms."""
    import numpy as np

    arrays = [np.asarray(c, dtype=object) for c in columns]
    codes, uniques = _pd().factorize(np.concatenate(arrays) if len(arrays) > 1 else arrays[0])
    return np.split(codes, np.cumsum([len(a) for a in arrays])[:-1]), np.asarray(uniques, dtype=object)


def _expand(codes: Any, lists: Sequence[Sequence[Any]]) -> tuple[Any, Any]:
    """For element ``i`` of ``codes`` (an index into ``lists``), one entry per item of ``lists[codes[i]]``:
    ``(positions, flat)`` where ``positions[k]`` is ``i`` and ``flat[k]`` the item's index in the concatenation
    of ``lists``. (Explode without a Python loop over the elements.)"""
    import numpy as np

    lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    starts = np.cumsum(lens) - lens
    per = lens[codes]
    positions = np.repeat(np.arange(len(codes)), per)
    ends = np.cumsum(per)
    flat = np.repeat(starts[codes] - (ends - per), per) + np.arange(int(ends[-1]) if len(ends) else 0)
    return positions, flat


def _in(values: Any, wanted: set[str] | frozenset[str]) -> Any:
    """Which of ``values`` (distinct: a ``_codes`` uniques array) are in ``wanted``."""
    import numpy as np

    return np.fromiter((v in wanted for v in values), dtype=bool, count=len(values))


def desired_frame(sheets: Sheet | Sequence[Sheet], snapshot: TenantSnapshot, catalog: ProductCatalog | None,
                  frame: pd.DataFrame | None = None) -> Desired:
    """The sheets' rows resolved against the tenant: users to ids, licenses to skuIds, plans to plan ids. Several
    licenses sheets are one desired state: a user and license on two of them is a duplicate, usage locations
    that differ across them a conflict, as within one sheet (the messages name the other row's sheet).

    A 500,000-row sheet repeats a handful of licenses, plan lists, countries and "how held" texts: each is
    resolved once per distinct text (``_codes``), and every row-wide step is a numpy operation on codes."""
    import numpy as np

    pd = _pd()
    sheets = [sheets] if isinstance(sheets, Sheet) else list(sheets)
    where = SheetsOf(sheets)
    df = sheets_frame(sheets) if frame is None else frame
    df = df.fillna({c: "" for c in ("user", "sku_text", "plans_text", "loc_text", "held", "user_key")})  # text
    errors: dict[int, list[RowFinding]] = {}
    rows, numbers = df["row"].to_numpy(), df["number"].to_numpy()

    def err(i: int, code: str, message: str, fix: str, column: str | None) -> None:
        """A row naming several licenses meets a check once per license: each finding is said once per row."""
        found = errors.setdefault(int(rows[i]), [])
        if not any(f.code == code and f.message == message for f in found):
            found.append(_finding(code, message, fix, int(numbers[i]), column))

    def col_sku(r: int) -> str | None:
        return where.header(r, Role.SKU) or where.header(r, Role.TO_SKU)

    index = snapshot._index
    uids = np.array([index.get(k) for k in df["user_key"].tolist()], dtype=object)
    users = df["user"].tolist()
    for i in np.flatnonzero(pd.isna(uids)).tolist():
        u = users[i]
        if not u.strip():
            err(i, "user-missing", "The row names no user.", "Check the UPN.", where.header(int(rows[i]), Role.USER))
        else:
            err(i, "user-not-found", f"No user '{u}' in the tenant.", "Check the UPN.",
                where.header(int(rows[i]), Role.USER))
    # licenses: one cell may list several; each distinct text resolved once
    resolver = SkuResolver(snapshot.skus, catalog)
    (text_codes,), texts = _codes(df["sku_text"])
    ids_of: list[list[str]] = []
    bad: dict[int, RowFinding] = {}
    for c, t in enumerate(texts.tolist()):
        ids: list[str] = []
        for x in split_licenses(t, catalog) if t.strip() else []:
            got = resolver.resolve(x)
            if isinstance(got, RowFinding):
                bad[c] = got
            else:
                ids.append(got.sku.sku_id)
        if not t.strip():
            bad[c] = RowFinding("license-missing", Severity.ERROR, "The row names no license.", "", None, None)
        ids_of.append(ids)
    for i in np.flatnonzero(np.isin(text_codes, list(bad))).tolist():
        f = bad[int(text_codes[i])]
        err(i, f.code, f.message, f.fix, col_sku(int(rows[i])))
    # one line per row and license it names (a row in error so far has none)
    usable = pd.notna(uids) & ~np.isin(rows, list(errors))
    at, flat = _expand(np.where(usable, text_codes, len(ids_of)), [*ids_of, []])
    sku_ids = np.array([x for ids in ids_of for x in ids], dtype=object)[flat]
    (sku_codes,), distinct_skus = _codes(sku_ids)
    # disabled plans: per distinct (SKU, text)
    (plan_text_codes,), plan_texts = _codes(df["plans_text"])
    pairs, pair_of = np.unique(sku_codes.astype(np.int64) * max(len(plan_texts), 1) + plan_text_codes[at],
                               return_inverse=True)
    resolved: list[str] = []
    for pair in pairs.tolist():
        sid, t = distinct_skus[pair // max(len(plan_texts), 1)], plan_texts[pair % max(len(plan_texts), 1)]
        if not t.strip():
            resolved.append("")
            continue
        plan_ids, problems = resolve_plans(split_plans(t), snapshot.skus[sid], catalog)
        resolved.append(",".join(sorted(plan_ids)) if not problems else "!" + problems[0].message)
    plans = np.array(resolved, dtype=object)[pair_of] if resolved else np.array([], dtype=object)
    for k in np.flatnonzero(np.array([p.startswith("!") for p in resolved], dtype=bool)[pair_of]).tolist():
        i = int(at[k])
        err(i, "plan-not-in-sku", plans[k][1:], "Check the disabled plans.",
            where.header(int(rows[i]), Role.DISABLED_PLANS))
    # locations: per distinct text; a user's first location stands, a later different one is an error
    (loc_codes,), loc_texts = _codes(df["loc_text"])
    locs: list[str] = []
    for t in loc_texts.tolist():
        loc = resolve_usage_location(t) if t.strip() else ""
        locs.append("!" + loc.message if isinstance(loc, RowFinding) else loc)
    loc_bad = np.array([x.startswith("!") for x in locs], dtype=bool)
    has_line = np.zeros(len(rows), dtype=bool)
    has_line[at] = True
    for i in np.flatnonzero(loc_bad[loc_codes] & has_line).tolist():
        err(i, "usage-location-invalid", locs[loc_codes[i]][1:], "Give an ISO code.",
            where.header(int(rows[i]), Role.USAGE_LOCATION))
    keep = ~np.isin(rows[at], list(errors))
    at, sku_ids, sku_codes, plans = at[keep], sku_ids[keep], sku_codes[keep], plans[keep]
    (user_codes,), _ = _codes(uids[at])
    key = user_codes.astype(np.int64) * max(len(distinct_skus), 1) + sku_codes
    dup = pd.Series(key).duplicated(keep="first").to_numpy()
    if dup.any():
        first_at = dict(zip(key[~dup].tolist(), at[~dup].tolist(), strict=True))
        for k, a in zip(key[dup].tolist(), at[dup].tolist(), strict=True):
            r, n, a1 = int(rows[a]), int(numbers[a]), first_at[k]
            r1, n1 = int(rows[a1]), int(numbers[a1])
            msg = ("This row names the same license twice." if r == r1 else
                   f"R{where.row_name(r1, n1, seen_from=r)[1:]} already names this user and license.")
            err(a, "duplicate-row", msg, "Keep one row per user and license.", col_sku(r))
        at, sku_ids, plans, user_codes = at[~dup], sku_ids[~dup], plans[~dup], user_codes[~dup]
    # a user's rows that give different usage locations contradict each other: every row but the first is an error
    line_loc = loc_codes[at]
    given = np.array([x != "" for x in locs], dtype=bool)[line_loc] if locs else np.zeros(len(at), dtype=bool)
    lu, lpos = user_codes[given], np.flatnonzero(given)
    if len(lu):
        _, first_of_user, inverse = np.unique(lu, return_index=True, return_inverse=True)
        first_line = lpos[first_of_user][inverse]  # per located line: the user's first located line
        clash = np.flatnonzero(line_loc[lpos] != line_loc[first_line])
        for k in clash.tolist():
            a, a1 = int(at[lpos[k]]), int(at[first_line[k]])
            r, n, r1, n1 = int(rows[a]), int(numbers[a]), int(rows[a1]), int(numbers[a1])
            loc, loc1 = locs[loc_codes[a]], locs[loc_codes[a1]]
            them, me = where.row_name(r1, n1, seen_from=r), where.row_name(r, n, seen_from=r1)
            both = f"rows {n1} and {n}" if them == f"row {n1}" else f"{them} and {me}"
            err(a, "conflicting-rows", f"This row gives usage location {loc}; {them} gives {loc1} for the same user.",
                f"Give one usage location for this user ({both}).", where.header(r, Role.USAGE_LOCATION))
    keep = ~np.isin(rows[at], list(errors))
    at, sku_ids, plans, user_codes = at[keep], sku_ids[keep], plans[keep], user_codes[keep]
    location = np.array(locs, dtype=object)[loc_codes[at]] if locs else np.array([], dtype=object)
    (held_codes,), held_texts = _codes(df["held"])
    folded = [h.casefold() for h in held_texts.tolist()]
    via = np.array([("group" in h and "direct" not in h) for h in folded], dtype=bool)
    direct_only = np.array([h.strip() == layout.HELD_DIRECT for h in folded], dtype=bool)
    line_uids = uids[at]
    out = pd.DataFrame({
        "row": rows[at], "number": numbers[at], "uid": line_uids, "sku_id": sku_ids, "plans": plans,
        "via_group": via[held_codes[at]] if len(via) else np.zeros(len(at), dtype=bool),
        "direct_required": direct_only[held_codes[at]] if len(via) else np.zeros(len(at), dtype=bool),
        "location": location,
    })
    located = location != ""
    firsts = np.sort(np.unique(user_codes[located], return_index=True)[1])  # in the sheets' order
    locations = dict(zip(line_uids[located][firsts].tolist(), location[located][firsts].tolist(), strict=True))
    erred = np.isin(rows, list(errors)) & pd.notna(uids)
    return Desired(out, errors, locations, set(uids[erred].tolist()))


def actual_frame(users: Sequence[User]) -> pd.DataFrame:
    """One line per user and SKU they hold or are assigned: direct, direct plans, group-held, groups, in error,
    and ``held_plans``: the plans disabled in EVERY assignment that holds it (a direct one not in Error, a group's
    in Active/ActiveWithError), which is what the user really gets (``plan_checks.result_licenses``' rule).

    Users with the same assignments share their lines' shape (a tenant has few distinct ones; the snapshot
    shares the tuples, ``graph.StateCache``): each shape is worked out once, then repeated per user."""
    import numpy as np

    pd = _pd()
    shapes: dict[tuple[int, int], int] = {}
    lines_of: list[list[tuple[Any, ...]]] = []
    plan_key: dict[frozenset[str], str] = {frozenset(): ""}
    shape_of = np.empty(len(users), dtype=np.int64)
    for n, u in enumerate(users):
        k = (id(u.states), id(u.assigned))  # the users hold the tuples: ids stay unique for this call
        c = shapes.get(k)
        if c is None:
            c = shapes[k] = len(lines_of)
            lines_of.append(_holding_lines(u, plan_key))
        shape_of[n] = c
    at, flat = _expand(shape_of, lines_of)
    cols = ["sku_id", "direct", "actual_plans", "grouped", "groups", "failed_groups", "held_plans"]
    lines = [line for shape in lines_of for line in shape]
    uid = np.array([u.id for u in users], dtype=object)[at]
    data: dict[str, Any] = {"uid": uid}
    for j, name in enumerate(cols):
        kind = bool if name in ("direct", "grouped") else object
        data[name] = np.array([line[j] for line in lines], dtype=kind)[flat]
    frame = pd.DataFrame(data)
    return frame[["uid", "sku_id", "direct", "actual_plans", "grouped", "groups", "failed_groups", "held_plans"]]


def _holding_lines(u: User, plan_key: dict[frozenset[str], str]) -> list[tuple[Any, ...]]:
    """(skuId, direct, direct's plans, grouped, groups, groups in error, held plans) per SKU of one user:
    ``User.holding`` and ``User.direct`` for every SKU at once (one pass over the states; the same rule)."""
    info: dict[str, list[Any]] = {}  # skuId -> [direct, direct's plans, groups held, groups in error, held's]
    for st in u.states:
        e = info.get(st.sku_id)
        if e is None:
            e = info[st.sku_id] = [False, None, [], [], None]
        if st.assigned_by_group is None:
            if st.state != "Error":
                e[0] = True
                e[4] = st.disabled_plans if e[4] is None else e[4] & st.disabled_plans
            if e[1] is None:
                e[1] = st.disabled_plans
        elif st.state in HELD_STATES:
            e[2].append(st.assigned_by_group)
            e[4] = st.disabled_plans if e[4] is None else e[4] & st.disabled_plans
        else:
            e[3].append(st.assigned_by_group)
    for a in u.assigned:
        if a not in info:
            info[a] = [True, None, [], [], None]
    out = []
    for s, (d, dp, g, f, hp) in info.items():
        keys = []
        for x in (dp or frozenset(), hp or frozenset()):
            k = plan_key.get(x)
            if k is None:
                k = plan_key[x] = ",".join(sorted(x))
            keys.append(k)
        out.append((s, d, keys[0], bool(g), ",".join(g), ",".join(f), keys[1]))
    return out


def classify(desired: pd.DataFrame, actual: pd.DataFrame, scope: set[str] | None, *, prune: bool) -> pd.DataFrame:
    """The drift, one line per (user, SKU) that differs: ``drift``, ``row`` (-1 when not in the sheet),
    ``add``/``remove``/``disable``/``enable`` (what --apply sends for it), ``takes``/``frees`` (seats).

    The outer join is on ``user code * SKUs + SKU code`` (``_codes``); the ids come back for the few lines that
    differ. Lines are in (user id, skuId) order, then the group side of pairs held both ways (below)."""
    import numpy as np

    pd = _pd()
    (du, au), uids = _codes(desired["uid"], actual["uid"])
    (ds, as_), skus = _codes(desired["sku_id"], actual["sku_id"])
    named = np.zeros(len(uids), dtype=bool)
    named[du] = True
    in_scope_user = named if scope is None else _in(uids, scope)
    mine = (in_scope_user | named)[au] if len(au) else np.zeros(0, dtype=bool)
    width = max(len(skus), 1)
    left = desired.drop(columns=["uid", "sku_id"]).assign(_key=du.astype(np.int64) * width + ds)
    right = actual.drop(columns=["uid", "sku_id"])[mine].assign(_key=au[mine].astype(np.int64) * width + as_[mine])
    m = left.merge(right, on="_key", how="outer", indicator=True)
    in_sheet = (m["_merge"] != "right_only").to_numpy()
    in_tenant = (m["_merge"] != "left_only").to_numpy()
    direct = m["direct"].eq(True).to_numpy() & in_tenant
    grouped = m["grouped"].eq(True).to_numpy() & in_tenant
    via = m["via_group"].eq(True).to_numpy() & in_sheet
    want_direct = m["direct_required"].eq(True).to_numpy() & in_sheet
    held = direct | grouped
    ucode = m["_key"].to_numpy() // width
    in_scope = in_scope_user[ucode]
    kind = np.full(len(m), "", dtype=object)
    kind[in_sheet & via & ~grouped] = "group-missing"
    kind[in_sheet & ~via & ~held] = "missing"
    kind[in_sheet & want_direct & ~direct & grouped] = "missing"
    maybe_plans = np.flatnonzero(in_sheet & ~via & direct)
    dp, ap = m["plans"].to_numpy(dtype=object), m["actual_plans"].to_numpy(dtype=object)
    differ = np.array([a != b for a, b in zip(dp[maybe_plans].tolist(), ap[maybe_plans].tolist(), strict=True)],
                      dtype=bool)
    kind[maybe_plans[differ]] = "plans"
    kind[~in_sheet & direct & in_scope] = "extra"
    kind[~in_sheet & ~direct & grouped & in_scope] = "group-unexpected"
    lines = np.flatnonzero(kind != "")
    m = m.iloc[lines].copy()
    m["drift"], m["direct"] = kind[lines], direct[lines]
    key = m["_key"].to_numpy()
    m["uid"], m["sku_id"] = uids[key // width], skus[key % width]
    m = m.sort_values(["uid", "sku_id"], kind="stable")
    # held directly AND through a group, not asked for: removing the direct assignment alone frees nothing (the
    # group still gives it), so the pair is also group drift (taken out of the group with --prune, group_drift)
    both = m[(m["drift"] == "extra") & m["grouped"].eq(True)].assign(drift="group-unexpected")
    m = pd.concat([m, both], ignore_index=True) if len(both) else m.reset_index(drop=True)
    m["row"] = m["row"].fillna(-1).astype(int)
    m["number"] = m["number"].fillna(0).astype(int)
    d_sets = [_ids(x) for x in m["plans"].fillna("").tolist()]
    a_sets = [_ids(x) for x in m["actual_plans"].fillna("").tolist()]
    m["disable"] = [",".join(sorted(d - a)) for d, a in zip(d_sets, a_sets, strict=True)]
    m["enable"] = [",".join(sorted(a - d)) for d, a in zip(d_sets, a_sets, strict=True)]
    is_missing, is_plans, is_extra = m["drift"] == "missing", m["drift"] == "plans", m["drift"] == "extra"
    m["add"] = is_missing | (is_plans & ((m["disable"] != "") | (prune & (m["enable"] != ""))))
    m["remove"] = is_extra & prune
    m["plans_after"] = [
        ",".join(sorted(d if (prune or miss) else d | a))
        for d, a, miss in zip(d_sets, a_sets, is_missing.tolist(), strict=True)
    ]
    m["takes"] = is_missing & ~m["grouped"].eq(True)
    m["frees"] = is_extra & ~m["grouped"].eq(True)  # held through a group too: freed by leaving it (memberships)
    keep = ["row", "number", "uid", "sku_id", "drift", "plans", "actual_plans", "disable", "enable", "add", "remove",
            "plans_after", "takes", "frees", "groups", "failed_groups", "direct"]
    return m[keep].fillna({"plans": "", "actual_plans": "", "groups": "", "failed_groups": ""}).reset_index(drop=True)


def _ids(text: str) -> frozenset[str]:
    return frozenset(x for x in text.split(",") if x)


def redundant(actual: pd.DataFrame, skus: Mapping[str, Sku], scope: set[str] | None) -> pd.DataFrame:
    """Users in scope holding a pack that adds nothing next to the others they hold: ``uid, sku_id, next_to,
    direct, groups`` (``next_to``: the skuIds, comma-separated, of the fewest packs they keep that give it all; ""
    when every plan of the pack is disabled; ``direct``/``groups``: how the pack is held, as in ``actual``).
    Direct and group-held packs alike (each takes a seat); judged by
    :func:`rules.redundant_holdings` on the enabled plans (the SKU's plans minus ``held_plans``), once per
    distinct holding (the set of (skuId, disabled plans) of a user): a tenant has few, whatever its size.

    A holding is found without a Python loop over users: each distinct (skuId, disabled plans) gets a bit, a
    user's holding is the sum of their bits (62 to an int64 word, as many words as needed)."""
    import numpy as np

    pd = _pd()
    held = actual[actual["direct"] | actual["grouped"]]
    (users,), uids = _codes(held["uid"])
    mine = np.ones(len(held), dtype=bool) if scope is None else _in(uids, scope)[users]
    mine &= pd.Series(users).duplicated(keep=False).to_numpy()  # one pack alone is never redundant
    held, users = held[mine], users[mine]
    if held.empty:
        return pd.DataFrame({"uid": [], "sku_id": [], "next_to": [], "direct": [], "groups": []}, dtype=object)
    (sku_codes,), sku_ids = _codes(held["sku_id"])
    (plan_codes,), plan_texts = _codes(held["held_plans"])
    codes, pairs = pd.factorize(sku_codes.astype(np.int64) * len(plan_texts) + plan_codes)
    items = [(str(sku_ids[p // len(plan_texts)]), str(plan_texts[p % len(plan_texts)])) for p in pairs.tolist()]
    words = [f"w{w}" for w in range((len(items) + 61) // 62)]
    bits = pd.DataFrame({w: np.where(codes // 62 == k, np.left_shift(np.int64(1), codes % 62), 0).astype(np.int64)
                         for k, w in enumerate(words)})  # fmt: skip
    per_user = bits.groupby(users, sort=False).sum().rename_axis("user").reset_index()
    packs: dict[tuple[str, str], rules.Pack | None] = {}
    found: list[list[Any]] = []
    for sig in per_user[words].drop_duplicates().itertuples(index=False):
        holding = [items[k * 62 + b] for k, word in enumerate(sig) for b in range(62) if int(word) >> b & 1]
        found.extend([*sig, sku_id, nxt] for sku_id, nxt in _judge(sorted(holding), skus, packs))
    verdicts = pd.DataFrame(found, columns=[*words, "sku_id", "next_to"])
    out = per_user.merge(verdicts, on=words)[["user", "sku_id", "next_to"]]
    # how each redundant pack is held: its line in ``held`` (one per user and SKU)
    width = len(sku_ids)
    where = pd.Index(users.astype(np.int64) * width + sku_codes)
    code_of = {str(x): k for k, x in enumerate(sku_ids.tolist())}
    line = where.get_indexer(out["user"].to_numpy(dtype=np.int64) * width
                             + np.array([code_of[x] for x in out["sku_id"].tolist()], dtype=np.int64))
    return pd.DataFrame({"uid": uids[out["user"].to_numpy()], "sku_id": out["sku_id"].to_numpy(dtype=object),
                         "next_to": out["next_to"].to_numpy(dtype=object), "direct": held["direct"].to_numpy()[line],
                         "groups": held["groups"].to_numpy(dtype=object)[line]})


def _judge(holding: Sequence[tuple[str, ...]], skus: Mapping[str, Sku],
           packs: dict[tuple[str, str], rules.Pack | None]) -> list[tuple[str, str]]:
    """(redundant skuId, covering skuIds) of one holding. A SKU the snapshot does not know, or that lists no
    service plans, is left out: what it gives is unknown, so it is neither judged nor counted as giving."""
    result: list[rules.Pack] = []
    for sku_id, disabled in holding:
        if (sku_id, disabled) not in packs:
            sku = skus.get(sku_id)
            off = _ids(disabled)
            packs[(sku_id, disabled)] = None if sku is None or not sku.service_plans else rules.Pack(
                sku_id, sku.part_number, tuple(p.name for p in sku.service_plans if p.id not in off))  # fmt: skip
        pack = packs[(sku_id, disabled)]
        if pack is not None:
            result.append(pack)
    return [(r.pack.sku_id, ",".join(o.sku_id for o in r.covered_by)) for r in rules.redundant_holdings(result)]


def location_drift(desired: Desired, users: Mapping[str, User]) -> dict[str, tuple[str | None, str]]:
    """uid -> (usage location now, the sheet's) where they differ."""
    out: dict[str, tuple[str | None, str]] = {}
    get = users.get
    for uid, loc in desired.locations.items():
        u = get(uid)
        if u is not None and u.usage_location != loc and (u.usage_location or "").upper() != loc.upper():
            out[uid] = (u.usage_location, loc)
    return out
