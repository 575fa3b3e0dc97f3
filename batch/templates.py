"""Ready-to-fill Excel templates (and CSV equivalents) for each kind of sheet, built with openpyxl.

Each workbook has the data sheet first (so the reader picks it), with one header per column the reader recognises
without any mapping, a note (cell comment) on each header, drop-down lists (data validation) fed from a hidden
``Lists`` sheet, and an ``Instructions`` sheet. ``write_template(kind, path, lists=...)`` writes one;
``lists_from_tenant(session)`` fills the drop-downs from the tenant (its SKUs by product name, service plans,
environments). ``python -m batch.templates DIR`` (or ``templates/make_templates.py``) regenerates ``templates/``.

openpyxl, not xlsxwriter, because the templates need what only it does here (and it reads them back in tests);
the volume is nil.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError

ACTIONS = ("assign", "remove", "replace")
MEMBER_ACTIONS = ("add", "remove")


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    note: str
    width: int = 22
    choices: str | None = None  # the Lists column that feeds its drop-down
    strict: bool = False  # refuse a value not in the list (else warn and allow: several plans, ISO codes...)


@dataclass(frozen=True, slots=True)
class Template:
    kind: str
    sheet: str
    title: str
    columns: tuple[Column, ...]
    instructions: tuple[str, ...]


USER_COL = Column("User", "The user's sign-in name (userPrincipalName, e.g. adele.vance@contoso.com), "
                  "work email or object id.", 38)  # fmt: skip
LICENSE_COL = Column("License", "The license: Microsoft's product name (\"Microsoft 365 E3\"), its string id "
                     "(SPE_E3) or its skuId. Several in one cell: separate with ;.", 30, "licenses")  # fmt: skip
PLANS_COL = Column("Disabled plans", "Service plans to turn off in this license (service plan names such as "
                   "YAMMER_ENTERPRISE, or ids), separated with ;. They are added to what the user already has "
                   "disabled: nothing is re-enabled.", 30, "plans")  # fmt: skip
LOCATION_COL = Column("Usage location", "Where the user uses the service: a country from the list or its "
                      "two-letter ISO code (DE). Required before a first license; set before the license is "
                      "assigned.", 24, "countries")  # fmt: skip

TEMPLATES: dict[str, Template] = {
    "users": Template(
        "users", "Users", "Users to license",
        (
            USER_COL,
            LICENSE_COL,
            Column("Action", "assign (default when empty), remove, or replace (take From license away and give "
                   "To license in one atomic change).", 12, "actions", strict=True),
            Column("From license", "replace only: the license the user holds now.", 26, "licenses"),
            Column("To license", "replace only: the license the user gets instead (or use License).", 26,
                   "licenses"),
            PLANS_COL,
            LOCATION_COL,
            Column("Priority", "Optional whole number: with --on-shortfall partial, lower numbers are served first "
                   "when seats run short.", 10),
        ),
        (
            "One row per user and change. Fill the Users sheet; keep the header row as it is.",
            "Action: assign (or empty), remove, replace. For replace fill From license and To license.",
            "Check first: license-batch validate FILE.xlsx (nothing changes; a validation.xlsx says what each row "
            "will do and why a row cannot).",
            "Then: license-batch plan FILE.xlsx, and license-batch apply FILE.xlsx.",
        ),
    ),
    "addons": Template(
        "addons", "Add-ons", "Environment add-on allocations",
        (
            Column("Environment", "The Power Platform environment: its display name, its id, or Default-{tenantId}.",
                   36, "environments"),
            Column("Add-on", "The add-on: a name from the list (\"AI Builder credits\") or the API's currencyType "
                   "(AI).", 34, "addons"),
            Column("Amount", "How much this environment gets, in the add-on's units. Absolute (500) or a change "
                   "(+500, -200); 0 takes it all back.", 12),
        ),
        (
            "One row per environment and add-on. Fill the Add-ons sheet; keep the header row as it is.",
            "Amounts are absolute unless written with a sign: 500 sets 500, +100 adds 100, 0 unassigns.",
            "Check first: license-batch validate FILE.xlsx; then plan and apply.",
            "The signed-in app must be registered as a Power Platform management app "
            "(pac admin application register).",
        ),
    ),
    "groups": Template(
        "groups", "Memberships", "Group memberships (group-based licensing)",
        (
            Column("User", "The user's sign-in name, work email or object id; or a rule that names many users: "
                   "Department=Sales, Country=DE, JobTitle=..., group=All Engineers.", 38),
            Column("Group", "The group: its display name (from the list) or its object id. Licensing groups give "
                   "their licenses to every member; dynamic groups cannot take members.", 34, "groups"),
            Column("Action", "add (default when empty) or remove.", 12, "member_actions", strict=True),
            Column("License", "Optional: the license the group should give, as a check (a group that gives another "
                   "one is refused).", 30, "licenses"),
        ),
        (
            "One row per user (or rule) and group. Fill the Memberships sheet; keep the header row as it is.",
            "Members are added 20 per request; Entra ID then licenses them, and the results say how each ended "
            "(Active, or CountViolation, MutuallyExclusiveViolation, ...).",
            "Check first: license-batch validate FILE.xlsx; then plan and apply. license-batch status RUN_ID picks "
            "up members still being processed.",
        ),
    ),
    "rules": Template(
        "rules", "Rules", "Department-wide licenses (rule rows)",
        (
            Column("User", "A rule naming the users: Department=Sales, Country=DE, JobTitle=Engineer, "
                   "CompanyName=..., OfficeLocation=..., EmployeeType=..., or group=All Engineers. Every user it "
                   "reaches gets the change (plan shows how many).", 38),
            LICENSE_COL,
            Column("Action", "assign (default when empty) or remove.", 12, "actions", strict=True),
            PLANS_COL,
            LOCATION_COL,
        ),
        (
            "One row per set of users and license. A user reached by two rows is reported, as duplicates are.",
            "Check first: license-batch plan FILE.xlsx shows how many users each rule reached; then apply.",
        ),
    ),
    "reconcile": Template(
        "reconcile", "Desired state", "Desired licenses (reconcile)",
        (USER_COL, LICENSE_COL, PLANS_COL, LOCATION_COL),
        (
            "One row per user and license the user SHOULD have: the sheet is the desired state.",
            "Disabled plans and usage location say how each license should look.",
            "Check first: license-batch validate FILE.xlsx; then plan and apply.",
        ),
    ),
}


@dataclass
class Lists:
    """The values behind the drop-downs."""

    actions: list[str] = field(default_factory=lambda: list(ACTIONS))
    member_actions: list[str] = field(default_factory=lambda: list(MEMBER_ACTIONS))
    groups: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    addons: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)

    @classmethod
    def offline(cls) -> Lists:
        from .kinds.addons.names import ADDONS
        from .sheets.countries import COUNTRIES

        return cls(countries=sorted(COUNTRIES.values()),
                   addons=[a.name for a in ADDONS])  # fmt: skip


def lists_from_tenant(session: Any) -> Lists:
    """Drop-down values from the tenant: SKUs (by product name where the product list resolves it back, else the
    string id), their service plans, the Power Platform environments (display name when unique, else id)."""
    from .sheets.resolve import ResolvedSku, SkuResolver
    from .tenant.powerplatform import PowerPlatform

    lists = Lists.offline()
    skus = session.tenant.skus()
    resolver = SkuResolver(skus, session.catalog)
    labels: list[str] = []
    plans: set[str] = set()
    for sku in sorted(skus.values(), key=lambda s: s.part_number):
        if sku.applies_to.lower() != "user":
            continue
        label = sku.part_number
        name = sku.product_name
        if not name and session.catalog is not None:
            p = session.catalog.by_guid(sku.sku_id)
            name = p.name if p else None
        if name:
            r = resolver.resolve(name)
            if isinstance(r, ResolvedSku) and r.sku_id == sku.sku_id.lower():
                label = name
        labels.append(label)
        plans.update(p.name for p in sku.service_plans if p.applies_to.lower() == "user")
    lists.licenses, lists.plans = labels, sorted(plans)
    lists.groups = _licensing_groups(session)
    target = session.tenant.target
    if target.powerplatform_url:
        with PowerPlatform(target, session.settings.limits, tokens=session.tenant.tokens) as pp:
            envs = list(pp.environments().values())
        names = [e.display_name for e in envs]
        lists.environments = sorted(e.display_name if names.count(e.display_name) == 1 else e.id for e in envs)
    return lists


def _licensing_groups(session: Any) -> list[str]:
    """Display names of the tenant's assigned (not dynamic) groups that carry licenses."""
    from .errors import TenantError
    from .kinds.groups.read import licensing_groups

    try:
        groups = licensing_groups(session.tenant.graph)
    except TenantError:
        return []  # not permitted (GroupMember.Read.All): the drop-down stays empty, names can still be typed
    return sorted({g.display_name for g in groups if not g.dynamic}, key=str.casefold)


def write_template(kind: str, path: str | Path, *, lists: Lists | None = None) -> Path:
    """Write the ``kind`` template to ``path`` (.xlsx, or .csv for the header row alone)."""
    t = TEMPLATES.get(kind)
    if t is None:
        raise ConfigError(f"Unknown template '{kind}'.", fix=f"Use one of: {', '.join(TEMPLATES)}.")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".csv":
        with p.open("w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerow([c.header for c in t.columns])
        return p
    if p.suffix.lower() not in (".xlsx", ".xlsm"):
        raise ConfigError(f"A template is written as .xlsx or .csv, not '{p.suffix}'.", path=str(p))
    _workbook(t, lists or Lists.offline()).save(p)
    return p


def _workbook(t: Template, lists: Lists) -> Any:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    wb.properties.creator = "license-batch"
    wb.properties.created = wb.properties.modified = datetime(2026, 1, 1)  # stable files when regenerated
    ws = wb.active
    ws.title = t.sheet
    head_font, head_fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="305496")
    for i, col in enumerate(t.columns, start=1):
        cell = ws.cell(row=1, column=i, value=col.header)
        cell.font, cell.fill = head_font, head_fill
        cell.comment = Comment(col.note, "license-batch", width=320, height=110)
        ws.column_dimensions[get_column_letter(i)].width = col.width
    ws.freeze_panes = "A2"

    lw = wb.create_sheet("Lists")
    used = [name for name in ("actions", "member_actions", "countries", "addons", "licenses", "plans",
                              "environments", "groups")
            if getattr(lists, name) and any(c.choices == name for c in t.columns)]  # fmt: skip
    where: dict[str, str] = {}
    for j, name in enumerate(used, start=1):
        values: Sequence[str] = getattr(lists, name)
        lw.cell(row=1, column=j, value=name)
        for r, v in enumerate(values, start=2):
            lw.cell(row=r, column=j, value=v)
        letter = get_column_letter(j)
        where[name] = f"{quote_sheetname('Lists')}!${letter}$2:${letter}${len(values) + 1}"
    lw.sheet_state = "hidden"
    for i, col in enumerate(t.columns, start=1):
        if col.choices not in where:
            continue
        assert col.choices is not None
        dv = DataValidation(type="list", formula1=where[col.choices], allow_blank=True, showDropDown=False,
                            showErrorMessage=True, errorStyle="stop" if col.strict else "warning",
                            error=f"Pick a value from the list ({col.choices}).", errorTitle=col.header,
                            prompt=col.note[:255], promptTitle=col.header[:32], showInputMessage=True)  # fmt: skip
        letter = get_column_letter(i)
        dv.add(f"{letter}2:{letter}5000")
        ws.add_data_validation(dv)

    iw = wb.create_sheet("Instructions")
    iw.column_dimensions["A"].width = 28
    iw.column_dimensions["B"].width = 110
    iw.cell(row=1, column=1, value=t.title).font = Font(bold=True, size=14)
    r = 3
    for line in t.instructions:
        iw.cell(row=r, column=1, value="•")
        iw.cell(row=r, column=2, value=line)
        r += 1
    r += 1
    iw.cell(row=r, column=1, value="Column").font = Font(bold=True)
    iw.cell(row=r, column=2, value="What to write").font = Font(bold=True)
    for col in t.columns:
        r += 1
        iw.cell(row=r, column=1, value=col.header)
        iw.cell(row=r, column=2, value=col.note + (" Drop-down list." if col.choices in where else ""))
    return wb


def write_all(directory: str | Path) -> list[Path]:
    """Every template as .xlsx and .csv into ``directory`` (the repository's ``templates/``)."""
    d = Path(directory)
    out = []
    for kind in TEMPLATES:
        out.append(write_template(kind, d / f"{kind}.xlsx"))
        out.append(write_template(kind, d / f"{kind}.csv"))
    return out


if __name__ == "__main__":  # pragma: no cover - python -m batch.templates DIR
    for written in write_all(sys.argv[1] if len(sys.argv) > 1 else "templates"):
        print(written)
