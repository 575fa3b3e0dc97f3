"""Every row finding code, end to end over real HTTP.

One CSV written here has a row (or a pair of rows) for each finding code that ``batch.validate`` and the
sheet reader (``batch/sheets/rows.py``) can give. It goes through the real path
``read_sheet -> parse_requests -> Tenant.snapshot (sandbox on 127.0.0.1) -> validate``, once with
``ShortfallPolicy.STOP`` and once with ``PARTIAL`` (capacity-shortfall vs over-capacity), against a fresh
tenant seeded with ``init_tenant(db, users=500, seed=1)``.

Each row's exact codes and status are asserted; then the codes seen must equal every code the product
defines (``FINDING_CODES`` plus the codes the reader and the resolver emit, found by reading their source),
so a new code without a row here fails.
"""

from __future__ import annotations

import ast
import csv
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

import batch.sheets.resolve
import batch.sheets.rows
import batch.validate
from batch.config import Limits, Target
from batch.errors import Severity
from batch.kinds import capacity as kinds_capacity
from batch.kinds.capacity import CAPACITY_FINDINGS
from batch.kinds.licenses import checks as licenses_checks
from batch.kinds.licenses import cross as licenses_cross
from batch.kinds.licenses import plan_checks as licenses_plan_checks
from batch.kinds.licenses.findings import FINDINGS as LICENSE_FINDINGS
from batch.kinds.licenses.rules import Refusal, load_remembered, remember_refusal
from batch.models import (
    CheckedRequest,
    LicenseRequest,
    RequestStatus,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
    Validation,
)
from batch.sandbox import SandboxConfig, SandboxServer, init_tenant, list_users
from batch.sheets import ProductCatalog, parse_requests, read_sheet
from batch.tenant import Tenant
from batch.validate import FINDING_CODES, validate

D = "contoso.onmicrosoft.com"
PRODUCT_LIST = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / "Product names and service plan identifiers for licensing.csv"
)
NO_CATALOG = f"Microsoft's product list is not at {PRODUCT_LIST} (reference data, not in the repository)"
#: Codes only Microsoft's product list can give (a real product the tenant lacks; a product name shared by
#: several products). Without the list these rows resolve to sku-unknown.
CATALOG_ONLY = frozenset({"sku-not-in-tenant", "sku-ambiguous"})

READY, UNCHANGED, ERROR, OVER = (
    RequestStatus.READY,
    RequestStatus.UNCHANGED,
    RequestStatus.ERROR,
    RequestStatus.OVER_CAPACITY,
)
HEADER = ("User", "Action", "License", "From License", "Disabled plans", "Usage location", "Priority")


# ------------------------------------------------------------------------------- codes in the source


def _codes_in(module: ModuleType) -> set[str]:
    """First-argument string constants of ``RowFinding(...)`` and ``_finding(...)`` calls in a module."""
    tree = ast.parse(inspect.getsource(module))
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        fn = node.func
        name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
        first = node.args[0]
        if name in ("RowFinding", "_finding") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            out.add(first.value)
    return out


READER_CODES = frozenset(_codes_in(batch.sheets.rows))
RESOLVER_CODES = frozenset(_codes_in(batch.sheets.resolve))
VALIDATE_CODES = frozenset().union(
    *(_codes_in(m) for m in (licenses_checks, licenses_cross, licenses_plan_checks, kinds_capacity))
)
#: This file covers the licenses kind (add-on codes: tests/kinds/test_addons_sandbox.py).
LICENSE_CODES = frozenset(LICENSE_FINDINGS) | frozenset(CAPACITY_FINDINGS)
ALL_CODES = LICENSE_CODES | READER_CODES


def test_the_source_scan_finds_the_known_codes() -> None:
    """Guards the AST scan itself (if it found nothing, the completeness check below would be hollow)."""
    assert {
        "user-missing",
        "action-unknown",
        "replace-incomplete",
        "replace-multiple",
        "license-missing",
        "priority-invalid",
        "from-sku-ignored",
    } <= READER_CODES
    assert {"sku-unknown", "sku-not-in-tenant", "plan-not-in-sku", "usage-location-invalid"} <= RESOLVER_CODES
    # the resolver's and validation's own codes are all documented with a severity
    assert LICENSE_CODES >= RESOLVER_CODES | VALIDATE_CODES
    assert set(FINDING_CODES) >= LICENSE_CODES


# ------------------------------------------------------------------------------------------ the rows

@dataclass(frozen=True)
class Case:
    """One sheet row and what validation must say about it.

    ``who`` names the user cell: ``""`` (empty), ``"=text"`` (written as is), a persona (``"adele.vance"``)
    or ``"pool#i"``, the i-th ordinary user of a pool (see ``_pools``), so each row has a user of its own
    and the rows of a pair share one. ``stop`` / ``partial``: (status, sorted codes) under each shortfall
    policy (``partial`` defaults to ``stop``). ``mentions``: texts the row's messages must contain
    (``{case id}`` -> that case's row number).
    """

    id: str
    who: str
    license: str = ""
    action: str = "assign"
    frm: str = ""
    plans: str = ""
    location: str = ""
    priority: str = ""
    stop: tuple[RequestStatus, tuple[str, ...]] = (READY, ())
    partial: tuple[RequestStatus, tuple[str, ...]] | None = None
    needs_catalog: bool = False
    mentions: tuple[str, ...] = ()


PBI = "POWER_BI_PRO"  # 30 seats free: plain adds that stay clear of capacity
COPILOT = "Microsoft_365_Copilot"  # 0 seats free

# fmt: off
CASES: tuple[Case, ...] = (
    # --- the reader (batch/sheets/rows.py)
    Case("user-missing", "", PBI, stop=(ERROR, ("user-missing",))),
    Case("action-unknown", "free#0", PBI, action="frobnicate", stop=(ERROR, ("action-unknown",))),
    Case("replace-incomplete", "free#1", "", action="replace", frm="SPE_E3", stop=(ERROR, ("replace-incomplete",))),
    Case("replace-multiple", "free#2", "SPE_E5; POWER_BI_PRO", action="replace", frm="SPE_E3",
         stop=(ERROR, ("replace-multiple",))),
    Case("license-missing", "free#3", "", stop=(ERROR, ("license-missing",))),
    Case("priority-invalid", "free#4", PBI, priority="soon", stop=(READY, ("priority-invalid",))),
    Case("from-sku-ignored", "free#5", PBI, frm="SPE_E3", stop=(READY, ("from-sku-ignored",))),
    # --- the user
    Case("user-malformed", "=not an email", PBI, stop=(ERROR, ("user-malformed",))),
    Case("user-not-found", f"=ghost.user@{D}", PBI, stop=(ERROR, ("user-not-found",))),
    Case("user-guest", "jane.doe_fabrikam.com#EXT#", PBI, stop=(READY, ("user-guest",))),
    Case("user-disabled", "lee.gu", PBI, stop=(READY, ("user-disabled",))),
    # --- the license
    Case("sku-unknown", "free#6", "NOT_A_REAL_SKU", stop=(ERROR, ("sku-unknown",))),
    # SPE_F1 is Microsoft 365 F3: a real product (in Microsoft's list) this tenant has not bought
    Case("sku-not-in-tenant", "free#7", "SPE_F1", stop=(ERROR, ("sku-not-in-tenant",)), needs_catalog=True),
    # "Visio Plan 2" is the product name of both VISIO_PLAN2_DEPT and VISIOCLIENT
    Case("sku-ambiguous", "free#8", "Visio Plan 2", stop=(ERROR, ("sku-ambiguous",)), needs_catalog=True,
         mentions=("VISIOCLIENT", "VISIO_PLAN2_DEPT")),
    # AI Builder capacity applies to the company (appliesTo Company)
    Case("sku-not-assignable", "free#9", "CDSAICAPACITY", stop=(ERROR, ("sku-not-assignable",))),
    Case("plan-not-in-sku", "free#10", "SPE_E5", plans="NOT_A_PLAN", stop=(ERROR, ("plan-not-in-sku",)),
         mentions=("NOT_A_PLAN",)),
    Case("plans-ignored", "joni.sherman", PBI, action="remove", plans="SWAY", stop=(READY, ("plans-ignored",))),
    # --- usage location
    Case("usage-location-missing", "megan.bowen", PBI, stop=(ERROR, ("usage-location-missing",))),
    Case("usage-location-invalid", "free#11", PBI, location="Atlantis", stop=(ERROR, ("usage-location-invalid",)),
         mentions=("Atlantis",)),
    Case("usage-location-change", "henrietta.mueller", PBI, location="FR", stop=(READY, ("usage-location-change",)),
         mentions=("from DE to FR",)),
    Case("usage-location-set", "no-location#0", PBI, location="Germany", stop=(READY, ("usage-location-set",)),
         mentions=("set to DE",)),
    # --- what the row asks vs what the user holds
    Case("unchanged", "adele.vance", "SPE_E3", stop=(UNCHANGED, ("unchanged",))),
    Case("assign-inherited", "nestor.wilke", "SPE_E3", stop=(READY, ("assign-inherited",)),
         mentions=("Licensing - Microsoft 365 E3",)),
    Case("remove-not-held", "pradeep.gupta", PBI, action="remove", stop=(UNCHANGED, ("remove-not-held",))),
    Case("remove-inherited", "johanna.lorenz", "POWERAPPS_PER_USER", action="remove",
         stop=(ERROR, ("remove-inherited",)), mentions=("Licensing - Power Apps Premium",)),
    Case("remove-still-inherited", "isaiah.langer", "SPE_E3", action="remove",
         stop=(READY, ("remove-still-inherited",)), mentions=("Licensing - Microsoft 365 E3",)),
    Case("replace-from-not-held", "miriam.graham", PBI, action="replace", frm="STANDARDPACK",
         stop=(ERROR, ("replace-from-not-held",))),
    # (grady.archie's Copilot group assignment is in Error, CountViolation: he does not hold it, see
    # test_group_assignment_in_error_is_not_held)
    Case("replace-from-inherited", "audio-group#0", PBI, action="replace", frm="MCOMEETADV",
         stop=(ERROR, ("replace-from-inherited",)), mentions=("Licensing - Audio Conferencing",)),
    Case("replace-same-sku", "lidia.holloway", "SPE_E3", action="replace", frm="SPE_E3",
         stop=(ERROR, ("replace-same-sku",))),
    # diego.siciliani has SWAY and YAMMER_ENTERPRISE disabled in Office 365 E3; Microsoft 365 E5 has both
    Case("replace-reenables-plans", "diego.siciliani", "SPE_E5", action="replace", frm="ENTERPRISEPACK",
         stop=(READY, ("replace-reenables-plans",)), mentions=("SWAY", "YAMMER_ENTERPRISE")),
    # --- rows against each other
    Case("duplicate-first", "alex.wilber", PBI),
    Case("duplicate-row", "alex.wilber", PBI, stop=(ERROR, ("duplicate-row",)),
         mentions=("Row {duplicate-first} already",)),
    Case("conflict-remove", "e1#0", "STANDARDPACK", action="remove", stop=(ERROR, ("conflicting-rows",)),
         mentions=("contradicts row {conflicting-rows}",)),
    Case("conflicting-rows", "e1#0", "STANDARDPACK", stop=(ERROR, ("conflicting-rows",)),
         mentions=("contradicts row {conflict-remove}",)),
    # --- service plans on the user's result (batch.kinds.licenses): Microsoft Teams EEA brings MCOIMP, every
    # Office 365 / Microsoft 365 suite MCOSTANDARD (one Skype for Business family); Audio Conferencing needs Teams
    Case("plan-conflict", "eea#0", "STANDARDPACK", stop=(ERROR, ("plan-conflict",)),
         mentions=("Microsoft_Teams_EEA_New and STANDARDPACK", "Skype for Business plans MCOIMP and MCOSTANDARD")),
    Case("plan-dependency", "free#14", "MCOMEETADV", stop=(ERROR, ("plan-dependency",)),
         mentions=("Audio Conferencing (MCOMEETADV) from MCOMEETADV without Teams",)),
    # patti.fernandez holds Microsoft 365 E5: Office 365 E1 adds nothing (Exchange and SharePoint packs stack)
    Case("redundant-license", "patti.fernandez", "STANDARDPACK", stop=(READY, ("redundant-license",)),
         mentions=("STANDARDPACK adds nothing", "from SPE_E5", "one STANDARDPACK seat")),
    # the tenant refused Power BI Pro + Power Automate Premium in an earlier run (see REMEMBERED)
    Case("refused-before-first", "free#15", "POWERAUTOMATE_ATTENDED_RPA", stop=(ERROR, ("refused-before",))),
    Case("refused-before", "free#15", PBI, stop=(ERROR, ("refused-before",)),
         mentions=("The tenant refused these licenses for someone.else@contoso.onmicrosoft.com on 2026-11-30",)),
    # --- capacity: Copilot has 0 free; one removal frees 1 and two users ask: short by 1
    Case("copilot freed", "lynne.robbins", COPILOT, action="remove"),
    Case("over-capacity", "free#12", COPILOT, priority="2", stop=(OVER, ("capacity-shortfall",)),
         partial=(OVER, ("over-capacity",)), mentions=(COPILOT,)),
    Case("capacity-shortfall", "free#13", COPILOT, priority="1",  # served first under partial
         stop=(OVER, ("capacity-shortfall",)), partial=(READY, ()), mentions=(COPILOT, "short by 1")),
)
# fmt: on
ROW_OF = {c.id: n for n, c in enumerate(CASES, start=2)}  # the row number Excel shows (header = 1)
HEADER = ("User", "Action", "License", "From License", "Disabled plans", "Usage location", "Priority")

#: Findings about one cell rather than the user or the license: their message names the cell's value
#: (the finding carries the row and column); empty cells have nothing to name. usage-location-invalid is
#: one although validation adds it on a row whose user and license are known (its text comes from
#: resolve_usage_location, memoised per location text, so it cannot name the user).
CELL_LEVEL: dict[str, str | None] = {
    "user-missing": None,
    "license-missing": None,
    "replace-incomplete": None,
    "replace-multiple": None,
    "action-unknown": "action",
    "priority-invalid": "priority",
    "usage-location-invalid": "location",
}


def _pools(users: list[dict[str, object]]) -> dict[str, list[str]]:
    """Ordinary (non-persona) enabled members of the seeded tenant, by situation."""
    pools: dict[str, list[str]] = {"free": [], "no-location": [], "e1": [], "eea": [], "audio-group": []}
    for u in users[18:]:  # the first 18 are the fixed personas
        if u["userType"] != "Member" or not u["accountEnabled"]:
            continue
        states = u["licenseAssignmentStates"]
        assert isinstance(states, list)
        upn = str(u["userPrincipalName"])
        if not states:
            pools["free" if u.get("usageLocation") else "no-location"].append(upn)
        elif u.get("usageLocation") and [(s["skuId"], s["assignedByGroup"]) for s in states] == [
            ("18181a46-0d4e-45cd-891e-60aabd171b4e", None)  # Office 365 E1 (STANDARDPACK), direct only
        ]:
            pools["e1"].append(upn)
        elif u.get("usageLocation") and [(s["skuId"], s["assignedByGroup"]) for s in states] == [
            ("7e74bd05-2c47-404e-829a-ba95c66fe8e5", None)  # Microsoft Teams EEA, direct only
        ]:
            pools["eea"].append(upn)
        if any(s["skuId"] == "0c266dff-15dd-4b49-8397-2bb16070ed52" and s["assignedByGroup"] and s["state"] == "Active"
               and not any(d["skuId"] == s["skuId"] and not d["assignedByGroup"] for d in states)
               for s in states):  # Audio Conferencing (MCOMEETADV) from its licensing group only, Active
            pools["audio-group"].append(upn)
    return pools


def _user_cells(users: list[dict[str, object]]) -> dict[str, str]:
    """Case id -> the user cell."""
    pools = _pools(users)
    personas = {str(u["userPrincipalName"]).split("@")[0]: str(u["userPrincipalName"]) for u in users[:18]}
    out: dict[str, str] = {}
    for c in CASES:
        if not c.who or c.who.startswith("="):
            out[c.id] = c.who[1:]
        elif "#" in c.who and c.who.split("#")[0] in pools:
            pool, i = c.who.split("#")
            out[c.id] = pools[pool][int(i)]
        else:
            out[c.id] = personas[c.who]
    return out


# ------------------------------------------------------------------------------------------ fixtures


@dataclass
class Run:
    upn: dict[str, str]  # case id -> user cell
    sheet: Sheet
    requests: list[LicenseRequest]
    snapshot: TenantSnapshot
    stop: Validation
    partial: Validation
    catalog: ProductCatalog | None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    db = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    init_tenant(db, users=500, seed=1)
    upn = _user_cells(list_users(db))
    path = tmp_path_factory.mktemp("sheet") / "every-code.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows((upn[c.id], c.action, c.license, c.frm, c.plans, c.location, c.priority) for c in CASES)
    catalog = ProductCatalog.load(PRODUCT_LIST) if PRODUCT_LIST.is_file() else None
    with SandboxServer(db, SandboxConfig(latency=0.0)) as sb:
        sheet = read_sheet(path)
        requests = parse_requests(sheet, catalog=catalog)
        target = Target(name="sandbox", graph_url=sb.graph_url, powerplatform_url=sb.powerplatform_url)
        with Tenant(target, Limits()) as tenant:
            snapshot = tenant.snapshot([r.user for r in requests])
        snapshot.plan_refusals = tuple(_remember(tmp_path_factory.mktemp("cache"), snapshot))
        stop = validate(sheet, requests, snapshot, catalog=catalog, policy=ShortfallPolicy.STOP)
        partial = validate(sheet, requests, snapshot, catalog=catalog, policy=ShortfallPolicy.PARTIAL)
        yield Run(upn, sheet, requests, snapshot, stop, partial, catalog)


def _remember(cache: Path, snapshot: TenantSnapshot) -> list[Refusal]:
    """The tenant refused Power BI Pro + Power Automate Premium for another user in an earlier apply."""
    pbi, pa = (snapshot.sku_by_part_number(p) for p in (PBI, "POWERAUTOMATE_ATTENDED_RPA"))
    assert pbi is not None and pa is not None
    stored = remember_refusal(
        cache, snapshot.tenant_id, result=[(pbi.sku_id, ()), (pa.sku_id, ())], add=[(pa.sku_id, ())], remove=[],
        status=400, code="Request_BadRequest", user=f"someone.else@{D}",
        message="License assignment failed because service plans BI_AZURE_P2, POWER_AUTOMATE_ATTENDED_RPA are "
                "mutually exclusive.",
        when=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
    )  # fmt: skip
    assert stored is not None
    return load_remembered(cache, snapshot.tenant_id)


@pytest.fixture(scope="module")
def direct(run: Run) -> Validation:
    """``action-missing`` cannot come through the reader: ``parse_requests`` gives ``action=None`` only for
    an unknown action word, and then always with its own ``action-unknown`` error, after which
    ``validate`` stops before its action check (``_check_row``: "the reader already said what is wrong
    with the license part of this row"). The smallest real path: a request the reader made for a sandbox
    user, with the action cleared and no reader findings, validated against the real snapshot."""
    req = next(r for r in run.requests if r.row_number == ROW_OF["priority-invalid"])
    return validate(run.sheet, [dc_replace(req, action=None, findings=())], run.snapshot, catalog=run.catalog)


def _row(v: Validation, number: int) -> CheckedRequest:
    (got,) = [c for c in v.requests if c.request.row_number == number]
    return got


def _outcome(c: CheckedRequest) -> tuple[RequestStatus, tuple[str, ...]]:
    return c.status, tuple(sorted(f.code for f in c.findings))


def _severity(code: str) -> Severity:
    return FINDING_CODES[code][0]


# --------------------------------------------------------------------------------------------- tests


def test_one_request_per_row(run: Run) -> None:
    assert [r.row_number for r in run.requests] == sorted(ROW_OF.values())
    assert run.snapshot.requests > 0  # really fetched over HTTP


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_row_gives_exactly_its_codes(run: Run, case: Case) -> None:
    if case.needs_catalog and run.catalog is None:
        pytest.skip(NO_CATALOG)
    n = ROW_OF[case.id]
    for v, want in ((run.stop, case.stop), (run.partial, case.partial or case.stop)):
        got = _row(v, n)
        assert _outcome(got) == want, (v.policy, case.id, [f.message for f in got.findings])
        for f in got.findings:
            assert f.severity is _severity(f.code), f.code
            assert f.row == n, f.code
    messages = " | ".join(f.message for f in _row(run.stop, n).findings + _row(run.partial, n).findings)
    for text in (m.format_map(ROW_OF) for m in case.mentions):
        assert text in messages, (case.id, text)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_messages_name_the_user_or_the_license_and_errors_say_how_to_fix(run: Run, case: Case) -> None:
    if case.needs_catalog and run.catalog is None:
        pytest.skip(NO_CATALOG)
    n = ROW_OF[case.id]
    cells = {"action": case.action, "priority": case.priority, "location": case.location}
    for v in (run.stop, run.partial):
        got = _row(v, n)
        sku = v.snapshot.skus.get(got.sku_id or "")
        names = [run.upn[case.id], case.license, case.frm, *(case.license.replace(";", " ").split())]
        names += [s.part_number for s in v.snapshot.skus.values() if s.sku_id in (got.sku_id, got.from_sku_id)]
        names += [sku.part_number] if sku else []
        for f in got.findings:
            if f.severity is Severity.ERROR:
                assert f.fix.strip(), (case.id, f.code)
            if f.code in CELL_LEVEL:
                role = CELL_LEVEL[f.code]
                if role is not None:
                    assert cells[role] in f.message, (f.code, f.message)
                assert f.column, (f.code, "a cell-level finding names its column")
                continue
            assert any(x and x in f.message for x in names), (case.id, f.code, f.message)


def test_capacity_stop_refuses_and_partial_serves_by_priority(run: Run) -> None:
    skus = {s.sku_id: s.part_number for s in run.snapshot.skus.values()}
    for v in (run.stop, run.partial):
        lines = {c.part_number: c for c in v.capacity}
        assert (lines[COPILOT].available, lines[COPILOT].needed, lines[COPILOT].freed) == (0, 2, 1)
        assert lines[COPILOT].short == 1
        assert [c.part_number for c in v.capacity if c.short] == [COPILOT]  # no other SKU is disturbed
    assert run.stop.wave_refused and not run.partial.wave_refused
    assert {skus[c.sku_id or ""] for c in run.stop.requests if c.status is OVER} == {COPILOT}


def test_action_missing_through_the_smallest_real_path(run: Run, direct: Validation) -> None:
    (got,) = direct.requests
    assert _outcome(got) == (ERROR, ("action-missing",))
    (f,) = got.findings
    assert f.severity is Severity.ERROR and f.fix.strip()
    assert run.upn["priority-invalid"] in f.message


def test_every_code_is_seen(run: Run, direct: Validation) -> None:
    """Adding a finding code (to FINDING_CODES or to the reader) without a row above fails here."""
    seen = {f.code for v in (run.stop, run.partial, direct) for c in v.requests for f in c.findings}
    assert seen <= ALL_CODES, seen - ALL_CODES
    if run.catalog is None:
        assert seen == ALL_CODES - CATALOG_ONLY, sorted(ALL_CODES - CATALOG_ONLY - seen)
        pytest.skip(f"{sorted(CATALOG_ONLY)} not checked: {NO_CATALOG}")
    assert seen == ALL_CODES, sorted(ALL_CODES - seen)


def test_every_code_seen_is_documented_in_finding_codes(run: Run) -> None:
    seen = {f.code for v in (run.stop, run.partial) for c in v.requests for f in c.findings}
    assert seen <= set(FINDING_CODES), sorted(seen - set(FINDING_CODES))
