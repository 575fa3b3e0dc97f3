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

DRIFT_KINDS = ("missing", "extra", "plans", "location", "group-missing", "group-unexpected", "redundant",
               "allocation", "member-missing", "member-extra")

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


def desired_frame(sheets: Sheet | Sequence[Sheet], snapshot: TenantSnapshot, catalog: ProductCatalog | None,
                  frame: pd.DataFrame | None = None) -> Desired:
    """The sheets' rows resolved against the tenant: users to ids, licenses to skuIds, plans to plan ids. Several
    licenses sheets are one desired state: a user and license on two of them is a duplicate, usage locations
    that differ across them a conflict, as within one sheet (the messages name the other row's sheet)."""
    sheets = [sheets] if isinstance(sheets, Sheet) else list(sheets)
    where = SheetsOf(sheets)
    df = sheets_frame(sheets) if frame is None else frame
    errors: dict[int, list[RowFinding]] = {}

    def col_user(r: int) -> str | None:
        return where.header(r, Role.USER)

    def col_sku(r: int) -> str | None:
        return where.header(r, Role.SKU) or where.header(r, Role.TO_SKU)

    df["uid"] = df["user_key"].map(snapshot._index)
    row_users = df[["row", "uid"]].copy()
    for r, n, u in df.loc[df["uid"].isna(), ["row", "number", "user"]].itertuples(index=False):
        msg = ("The row names no user." if not u.strip() else f"No user '{u}' in the tenant.")
        errors.setdefault(r, []).append(_finding("user-missing" if not u.strip() else "user-not-found", msg,
                                                 "Check the UPN.", n, col_user(r)))
    # licenses: one cell may list several; each distinct text resolved once
    resolver = SkuResolver(snapshot.skus, catalog)
    texts: dict[str, list[str]] = {}
    bad: dict[str, RowFinding] = {}
    for t in df["sku_text"].unique():
        ids: list[str] = []
        for x in split_licenses(t, catalog) if t.strip() else []:
            got = resolver.resolve(x)
            if isinstance(got, RowFinding):
                bad[t] = got
            else:
                ids.append(got.sku.sku_id)
        if not t.strip():
            bad[t] = RowFinding("license-missing", Severity.ERROR, "The row names no license.", "", None, None)
        texts[t] = ids
    for r, n, t in df.loc[df["sku_text"].isin(list(bad)), ["row", "number", "sku_text"]].itertuples(index=False):
        f = bad[t]
        errors.setdefault(r, []).append(_finding(f.code, f.message, f.fix, n, col_sku(r)))
    df["sku_id"] = df["sku_text"].map(texts)
    df = df.explode("sku_id")
    df = df[df["uid"].notna() & df["sku_id"].notna() & ~df["row"].isin(list(errors))]
    # disabled plans: per distinct (SKU, text)
    plan_keys: dict[tuple[str, str], str] = {}
    for sid, t in df[["sku_id", "plans_text"]].drop_duplicates().itertuples(index=False):
        if not t.strip():
            plan_keys[(sid, t)] = ""
            continue
        plan_ids, problems = resolve_plans(split_plans(t), snapshot.skus[sid], catalog)
        plan_keys[(sid, t)] = ",".join(sorted(plan_ids)) if not problems else "!" + problems[0].message
    keys = [plan_keys[(s, t)] for s, t in zip(df["sku_id"].tolist(), df["plans_text"].tolist(), strict=True)]
    df["plans"] = keys
    for r, n, k in df.loc[df["plans"].str.startswith("!"), ["row", "number", "plans"]].itertuples(index=False):
        errors.setdefault(r, []).append(_finding("plan-not-in-sku", k[1:], "Check the disabled plans.", n,
                                                 where.header(r, Role.DISABLED_PLANS)))
    # locations: per distinct text; a user's first location stands, a later different one is an error
    locs: dict[str, str] = {}
    for t in df["loc_text"].unique():
        loc = resolve_usage_location(t) if t.strip() else ""
        locs[t] = "!" + loc.message if isinstance(loc, RowFinding) else loc
    df["location"] = df["loc_text"].map(locs)
    for r, n, k in df.loc[df["location"].str.startswith("!"), ["row", "number", "location"]].itertuples(index=False):
        errors.setdefault(r, []).append(_finding("usage-location-invalid", k[1:], "Give an ISO code.", n,
                                                 where.header(r, Role.USAGE_LOCATION)))
    df = df[~df["row"].isin(list(errors))]
    dup = df.duplicated(["uid", "sku_id"], keep="first")
    if dup.any():
        firsts = df[~dup].drop_duplicates(["uid", "sku_id"])[["uid", "sku_id", "row", "number"]]
        twice = df.loc[dup, ["uid", "sku_id", "row", "number"]].merge(firsts, on=["uid", "sku_id"],
                                                                      suffixes=("", "_first"))
        for r, n, r1, n1 in twice[["row", "number", "row_first", "number_first"]].itertuples(index=False):
            msg = ("This row names the same license twice." if r == r1 else
                   f"R{where.row_name(r1, n1, seen_from=r)[1:]} already names this user and license.")
            errors.setdefault(r, []).append(_finding("duplicate-row", msg, "Keep one row per user and license.", n,
                                                     col_sku(r)))
    df = df[~dup]
    # a user's rows that give different usage locations contradict each other: every row but the first is an error
    with_loc = df[df["location"] != ""]
    first = with_loc.drop_duplicates("uid").set_index("uid")[["location", "row", "number"]]
    other = with_loc.merge(first, left_on="uid", right_index=True, suffixes=("", "_first"))
    clash = other[other["location"] != other["location_first"]]
    for r, n, loc, loc1, r1, n1 in clash[["row", "number", "location", "location_first", "row_first",
                                          "number_first"]].itertuples(index=False):
        them, me = where.row_name(r1, n1, seen_from=r), where.row_name(r, n, seen_from=r1)
        both = f"rows {n1} and {n}" if them == f"row {n1}" else f"{them} and {me}"
        errors.setdefault(r, []).append(_finding(
            "conflicting-rows", f"This row gives usage location {loc}; {them} gives {loc1} for the same user.",
            f"Give one usage location for this user ({both}).", n, where.header(r, Role.USAGE_LOCATION)))
    df = df[~df["row"].isin(list(errors))]
    located = df[df["location"] != ""].drop_duplicates("uid")
    held = df["held"].str.casefold()
    df = df.assign(via_group=held.str.contains("group") & ~held.str.contains("direct"),
                   direct_required=held.str.strip() == layout.HELD_DIRECT)
    out = df[["row", "number", "uid", "sku_id", "plans", "via_group", "direct_required", "location"]]
    locations = dict(zip(located["uid"].tolist(), located["location"].tolist(), strict=True))
    erred = row_users[row_users["row"].isin(list(errors)) & row_users["uid"].notna()]
    return Desired(out.reset_index(drop=True), errors, locations, set(erred["uid"].tolist()))


def actual_frame(users: Sequence[User]) -> pd.DataFrame:
    """One line per user and SKU they hold or are assigned: direct, direct plans, group-held, groups, in error,
    and ``held_plans``: the plans disabled in EVERY assignment that holds it (a direct one not in Error, a group's
    in Active/ActiveWithError), which is what the user really gets (``plan_checks.result_licenses``' rule)."""
    pd = _pd()
    uid: list[str] = []
    sku: list[str] = []
    direct: list[bool] = []
    plans: list[str] = []
    held_plans: list[str] = []
    grouped: list[bool] = []
    groups: list[str] = []
    failed: list[str] = []
    plan_key: dict[frozenset[str], str] = {frozenset(): ""}
    held_states = HELD_STATES
    for u in users:
        # User.holding and User.direct for every SKU at once (one pass over the states; the same rule)
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
            elif st.state in held_states:
                e[2].append(st.assigned_by_group)
                e[4] = st.disabled_plans if e[4] is None else e[4] & st.disabled_plans
            else:
                e[3].append(st.assigned_by_group)
        for a in u.assigned:
            if a not in info:
                info[a] = [True, None, [], [], None]
        for s, (d, dp, g, f, hp) in info.items():
            keys = []
            for x in (dp or frozenset(), hp or frozenset()):
                k = plan_key.get(x)
                if k is None:
                    k = plan_key[x] = ",".join(sorted(x))
                keys.append(k)
            uid.append(u.id)
            sku.append(s)
            direct.append(d)
            plans.append(keys[0])
            held_plans.append(keys[1])
            grouped.append(bool(g))
            groups.append(",".join(g))
            failed.append(",".join(f))
    cols = {"uid": uid, "sku_id": sku, "direct": direct, "actual_plans": plans, "grouped": grouped, "groups": groups,
            "failed_groups": failed, "held_plans": held_plans}
    if not uid:  # no user holds anything: typed columns all the same (an empty list would make them float)
        return pd.DataFrame({k: pd.Series([], dtype=bool if k in ("direct", "grouped") else object) for k in cols})
    return pd.DataFrame(cols)


def classify(desired: pd.DataFrame, actual: pd.DataFrame, scope: set[str] | None, *, prune: bool) -> pd.DataFrame:
    """The drift, one line per (user, SKU) that differs: ``drift``, ``row`` (-1 when not in the sheet),
    ``add``/``remove``/``disable``/``enable`` (what --apply sends for it), ``takes``/``frees`` (seats)."""
    pd = _pd()
    if scope is not None:
        actual = actual[actual["uid"].isin(scope) | actual["uid"].isin(desired["uid"].unique())]
    m = desired.merge(actual, on=["uid", "sku_id"], how="outer", indicator=True)
    in_sheet = m["_merge"] != "right_only"
    in_tenant = m["_merge"] != "left_only"
    direct = m["direct"].eq(True) & in_tenant
    grouped = m["grouped"].eq(True) & in_tenant
    via = m["via_group"].eq(True) & in_sheet
    want_direct = m["direct_required"].eq(True) & in_sheet
    dplans = m["plans"].fillna("")
    aplans = m["actual_plans"].fillna("")
    held = direct | grouped
    in_scope = m["uid"].isin(scope) if scope is not None else m["uid"].isin(desired["uid"].unique())
    kind = pd.Series("", index=m.index, dtype=object)
    kind[in_sheet & via & ~grouped] = "group-missing"
    kind[in_sheet & ~via & ~held] = "missing"
    kind[in_sheet & want_direct & ~direct & grouped] = "missing"
    kind[in_sheet & ~via & direct & (dplans != aplans)] = "plans"
    kind[~in_sheet & direct & in_scope] = "extra"
    kind[~in_sheet & ~direct & grouped & in_scope] = "group-unexpected"
    m["drift"] = kind
    m["direct"] = direct
    # held directly AND through a group, not asked for: removing the direct assignment alone frees nothing (the
    # group still gives it), so the pair is also group drift (taken out of the group with --prune, group_drift)
    both = m[(kind == "extra") & grouped].assign(drift="group-unexpected")
    m = pd.concat([m[kind != ""], both], ignore_index=True) if len(both) else m[kind != ""].copy()
    m["row"] = m["row"].fillna(-1).astype(int)
    m["number"] = m["number"].fillna(0).astype(int)
    d_sets = m["plans"].fillna("").map(_ids)
    a_sets = m["actual_plans"].fillna("").map(_ids)
    m["disable"] = [",".join(sorted(d - a)) for d, a in zip(d_sets, a_sets, strict=True)]
    m["enable"] = [",".join(sorted(a - d)) for d, a in zip(d_sets, a_sets, strict=True)]
    is_missing, is_plans, is_extra = m["drift"] == "missing", m["drift"] == "plans", m["drift"] == "extra"
    m["add"] = is_missing | (is_plans & ((m["disable"] != "") | (prune & (m["enable"] != ""))))
    m["remove"] = is_extra & prune
    m["plans_after"] = [
        ",".join(sorted(d if (prune or miss) else d | a))
        for d, a, miss in zip(d_sets, a_sets, is_missing, strict=True)
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
    if scope is not None:
        held = held[held["uid"].isin(scope)]
    held = held[held["uid"].duplicated(keep=False)]  # one pack alone is never redundant
    if held.empty:
        return pd.DataFrame({"uid": [], "sku_id": [], "next_to": [], "direct": [], "groups": []}, dtype=object)
    codes, items = pd.factorize(held["sku_id"].astype(str) + "|" + held["held_plans"].astype(str))
    words = [f"w{w}" for w in range((len(items) + 61) // 62)]
    bits = pd.DataFrame({w: np.where(codes // 62 == k, np.left_shift(np.int64(1), codes % 62), 0).astype(np.int64)
                         for k, w in enumerate(words)})  # fmt: skip
    per_user = bits.groupby(held["uid"].to_numpy(), sort=False).sum().rename_axis("uid").reset_index()
    packs: dict[tuple[str, str], rules.Pack | None] = {}
    found: list[list[Any]] = []
    for sig in per_user[words].drop_duplicates().itertuples(index=False):
        holding = [tuple(str(items[k * 62 + b]).split("|", 1)) for k, word in enumerate(sig)
                   for b in range(62) if int(word) >> b & 1]  # fmt: skip
        found.extend([*sig, sku_id, nxt] for sku_id, nxt in _judge(sorted(holding), skus, packs))
    verdicts = pd.DataFrame(found, columns=[*words, "sku_id", "next_to"])
    out = per_user.merge(verdicts, on=words)[["uid", "sku_id", "next_to"]]
    out = out.merge(held[["uid", "sku_id", "direct", "groups"]], on=["uid", "sku_id"], how="left")
    return out.reset_index(drop=True)


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
    for uid, loc in desired.locations.items():
        u = users.get(uid)
        if u is not None and (u.usage_location or "").upper() != loc.upper():
            out[uid] = (u.usage_location, loc)
    return out
