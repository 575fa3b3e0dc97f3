"""``license-batch export users|addons``: today's state in the layout apply and reconcile read (``layout``).

Streaming: users are read a page (999) at a time and each page's rows are written before the next page is
parsed, so memory does not grow with the tenant (CSV with the csv module; xlsx with xlsxwriter's
constant-memory mode). ``user_rows`` is the one place that turns a Graph user into rows; the DataFrame
variants (``users_frame``, ``addons_frame``) collect the same rows for a notebook.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, OutputError
from ..models import Sku
from ..report._text import neutralise
from ..tenant.user_filters import Condition, attribute, condition, make
from . import layout
from .read import all_group_names, find_group, group_member_ids, iter_user_pages

if TYPE_CHECKING:
    import pandas as pd

    from ..tenant import Tenant


@dataclass(slots=True)
class ExportResult:
    path: Path | None
    users: int = 0  # users read
    rows: int = 0  # rows written
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Which users and licenses an export writes: every condition holds (ANDed), among the members of ``group``
    at any depth of nesting, only the license ``sku``."""

    department: str | None = None
    sku: str | None = None  # part number or skuId
    group: str | None = None  # group display name
    where: tuple[Condition, ...] = ()  # attribute conditions (jobTitle=..., companyName=...), ANDed

    @classmethod
    def parse(cls, filters: Sequence[str] = (), *, department: str | None = None, sku: str | None = None,
              group: str | None = None) -> UserFilter:
        """From ``--filter ATTRIBUTE=VALUE`` texts (repeatable, ANDed) and the other options."""
        return cls(department=department, sku=sku, group=group,
                   where=tuple(condition(f, option="--filter") for f in filters))

    def conditions(self) -> tuple[Condition, ...]:
        dept = (make(attribute("department", option="--filter"), self.department, option="--filter"),) \
            if self.department is not None else ()
        return dept + self.where


def _sku_ids(skus: Mapping[str, Sku], wanted: str | None) -> set[str] | None:
    if not wanted:
        return None
    w = wanted.strip().lower()
    hit = {sid for sid, s in skus.items() if w in (sid, s.part_number.lower(), (s.product_name or "").lower())}
    if not hit:
        raise ConfigError(f"The tenant has no license '{wanted}'.", fix="Give its part number, e.g. SPE_E3.")
    return hit


def user_rows(tenant: Tenant, flt: UserFilter = UserFilter(), stats: ExportResult | None = None
              ) -> Iterator[tuple[str, ...]]:
    """Rows in ``layout.USER_HEADERS`` order, a user at a time, every user the filter keeps."""
    skus = tenant.skus()
    graph = tenant.graph
    parts = {sid: s.part_number for sid, s in skus.items()}
    plan_names = {p.id: p.name for s in skus.values() for p in s.service_plans}
    only = _sku_ids(skus, flt.sku)
    members = group_member_ids(graph, find_group(graph, flt.group)[0]) if flt.group else None
    groups = all_group_names(graph)
    plans_text: dict[tuple[str, ...], str] = {(): ""}
    for page in iter_user_pages(graph, where=flt.conditions(), members=members):
        if stats is not None:
            stats.users += len(page)
        for u in page:
            yield from _rows_of(u, parts, plan_names, groups, plans_text, only)


def _rows_of(u: Mapping[str, Any], parts: Mapping[str, str], plan_names: Mapping[str, str],
             groups: Mapping[str, str], plans_text: dict[tuple[str, ...], str], only: set[str] | None
             ) -> Iterator[tuple[str, ...]]:
    upn = str(u.get("userPrincipalName") or u.get("id"))
    loc = str(u.get("usageLocation") or "")
    dept = str(u.get("department") or "")
    direct: dict[str, tuple[str, ...]] = {}
    via: dict[str, list[tuple[str, str, str, tuple[str, ...]]]] = {}
    order: list[str] = []
    for st in u.get("licenseAssignmentStates") or ():
        sid = str(st.get("skuId") or "").lower()
        if not sid:
            continue
        if sid not in direct and sid not in via:
            order.append(sid)
        plans = tuple(str(p).lower() for p in st.get("disabledPlans") or ())
        gid = st.get("assignedByGroup")
        if gid:
            via.setdefault(sid, []).append((str(gid).lower(), str(st.get("state") or "Active"),
                                            str(st.get("error") or "None"), plans))
        elif str(st.get("state") or "Active") != "Error":
            direct[sid] = plans
    for lic in u.get("assignedLicenses") or ():
        sid = str(lic.get("skuId") or "").lower()
        if sid and sid not in direct and sid not in via:
            direct[sid] = tuple(str(p).lower() for p in lic.get("disabledPlans") or ())
            order.append(sid)
    for sid in order:
        if only is not None and sid not in only:
            continue
        gl = via.get(sid, [])
        if sid not in direct and not gl:
            continue
        plans = direct[sid] if sid in direct else gl[0][3]
        key = tuple(sorted(plans))
        text = plans_text.get(key)
        if text is None:
            text = plans_text[key] = "; ".join(sorted(plan_names.get(p, p) for p in plans))
        yield (upn, parts.get(sid, sid), text, loc, dept, layout.held_text(sid in direct, bool(gl)),
               "; ".join(layout.group_text(groups.get(g, g), s, e) for g, s, e, _ in gl))


def addon_rows(tenant: Tenant) -> Iterator[tuple[str, str, str, int]]:
    """Rows in ``layout.ADDON_HEADERS`` order: every environment's non-zero allocation per add-on."""
    envs = tenant.powerplatform.environments()
    alloc = tenant.read_allocations(list(envs))
    for eid, env in sorted(envs.items(), key=lambda kv: kv[1].display_name.lower()):
        for ct, n in sorted(alloc.get(eid, {}).items()):
            if n:
                yield env.display_name, eid, ct, int(n)


def write_rows(path: str | os.PathLike[str], headers: Sequence[str], rows: Iterable[Sequence[Any]],
               *, sheet: str, stats: ExportResult) -> ExportResult:
    """CSV (by the suffix) or xlsx, streamed; every cell a spreadsheet would run is neutralised."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ConfigError(f"-o must end in .csv or .xlsx, not '{p.name}'.")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".part")
        if suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8-sig") as f:
                w = csv.writer(f)
                w.writerow(headers)
                for r in rows:
                    w.writerow([v if isinstance(v, int) else neutralise(v) for v in r])
                    stats.rows += 1
        else:
            import xlsxwriter

            wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_formulas": False,
                                                "strings_to_numbers": False, "strings_to_urls": False})
            ws = wb.add_worksheet(sheet)
            bold = wb.add_format({"bold": True})
            ws.write_row(0, 0, list(headers), bold)
            n = 0
            for r in rows:
                n += 1
                ws.write_row(n, 0, [v if isinstance(v, int) else neutralise(v) for v in r])
            stats.rows = n
            ws.autofilter(0, 0, max(n, 1), len(headers) - 1)
            wb.close()
        os.replace(tmp, p)
    except OSError as e:
        raise OutputError(f"{e} Choose another file, or close it in Excel.") from e
    stats.path = p
    return stats


def export_users(tenant: Tenant, out: str | os.PathLike[str], flt: UserFilter = UserFilter()) -> ExportResult:
    stats = ExportResult(path=None)
    return write_rows(out, layout.USER_HEADERS, user_rows(tenant, flt, stats), sheet="Licenses", stats=stats)


def export_addons(tenant: Tenant, out: str | os.PathLike[str]) -> ExportResult:
    stats = ExportResult(path=None)
    return write_rows(out, layout.ADDON_HEADERS, addon_rows(tenant), sheet="Add-ons", stats=stats)


def users_frame(tenant: Tenant, flt: UserFilter = UserFilter()) -> pd.DataFrame:
    """The export as a DataFrame (the notebook interface)."""
    import pandas as pd

    return pd.DataFrame.from_records(list(user_rows(tenant, flt)), columns=list(layout.USER_HEADERS))


def addons_frame(tenant: Tenant) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame.from_records(list(addon_rows(tenant)), columns=list(layout.ADDON_HEADERS))
