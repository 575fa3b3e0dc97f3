"""Regenerate the sample sheets from the sandbox's default tenant (500 users, seed 1).

    .venv/bin/python samples/make_samples.py

- ``onboarding-wave.csv``: an HR export of a few hundred rows for an onboarding wave, with every kind of problem
  that validation reports: among them service plans the tenant refuses together (a Skype for Business Online
  Plan 1 + Plan 2 conflict), a dependency (Audio Conferencing without Teams) and packs that stack for nothing.
- ``department-assignment.xlsx``: Microsoft Entra ID P1 for the whole Finance department, the header below
  two title rows, as people make them in Excel.
- ``environment-addons.xlsx``: Power Platform add-on allocations for the seeded environments, as one run of two
  sheets: "Add-ons" (one row per environment and add-on, friendly names, a change (+250000), an unassign (0),
  a name that is not an environment, one deliberate over-allocation (Power Automate per process) and a write
  to the environment whose group policy locks the tenant pool, which only the tenant can refuse), and
  "Add-ons (wide)" (one column per add-on).

The output is deterministic; ``tests/test_samples.py`` checks that the committed files still match the seed.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from batch.sandbox import PERSONAS, init_tenant, list_users, tenant_info  # noqa: E402
from batch.sandbox.seed import GUEST_PERSONAS  # noqa: E402

COUNTRY = {"US": "United States", "DE": "Germany", "GB": "United Kingdom", "NL": "Netherlands", "FR": "France",
           "ES": "Spain", "IN": "India", "JP": "Japan", "CA": "Canada", "BR": "Brazil", "AU": "Australia",
           "IT": "Italy", "SE": "Sweden", "PL": "Poland", "MX": "Mexico", "IE": "Ireland"}  # fmt: skip

HEADERS = ["Employee ID", "First Name", "Last Name", "Work Email", "Department", "Job Title", "Country",
           "Start Date", "Action", "License", "From License", "Disabled Plans", "Notes"]  # fmt: skip


def _names(upn: str) -> tuple[str, str]:
    local = upn.split("@")[0].split("_")[0]
    parts = local.split(".")
    return parts[0].rstrip("0123456789").title(), (parts[1] if len(parts) > 1 else "").rstrip("0123456789").title()


def onboarding_rows(users: list[dict[str, Any]], info: dict[str, Any]) -> list[list[str]]:
    rng = random.Random(20261122)
    free = {k: v["enabled"] - v["consumed"] for k, v in info["skus"].items()}
    rows: list[list[str]] = []
    emp = [10400]

    def row(u: dict[str, Any] | None, *, email: str | None = None, action: str = "assign", lic: str = "",
            frm: str = "", plans: str = "", country: str | None = None, notes: str = "",
            first: str = "", last: str = "") -> None:  # fmt: skip
        emp[0] += 1
        upn = email if email is not None else (u["userPrincipalName"] if u else "")
        f, la = _names(upn) if upn and "@" in upn else (first, last)
        if country is None:
            loc = u.get("usageLocation") if u else None
            country = COUNTRY.get(loc or "", loc or "")
        start = f"2026-12-{1 + (emp[0] % 20):02d}"
        rows.append([f"E{emp[0]}", first or f, last or la, upn, (u or {}).get("department") or "",
                     (u or {}).get("jobTitle") or "", country, start, action, lic, frm, plans, notes])  # fmt: skip

    def holds(u: dict[str, Any], sku: str, *, direct: bool | None = None) -> bool:
        sku_id = info["skus"][sku]["skuId"]
        return any(
            s["skuId"] == sku_id and (direct is None or direct == (s["assignedByGroup"] is None))
            for s in u["licenseAssignmentStates"]
        )

    by_upn = {u["userPrincipalName"]: u for u in users}
    # The fixed personas (the first users) are kept for the deliberate problems in section 5.
    members = [u for u in users[len(PERSONAS) + len(GUEST_PERSONAS):]
               if u["userType"] == "Member" and u["accountEnabled"]]  # fmt: skip
    unlicensed = [u for u in members if not u["licenseAssignmentStates"] and u["usageLocation"]]
    budget = {"STANDARDPACK": free["STANDARDPACK"] - 8, "SPE_E5": free["SPE_E5"] - 8,
              "ENTERPRISEPACK": free["ENTERPRISEPACK"] - 4}  # fmt: skip

    # 1. The bulk of the wave: new starters get their first license (some with plans disabled).
    e3_starters, unlicensed = unlicensed[-3:], unlicensed[:-3]
    for u in unlicensed:
        sku = next((s for s in ("STANDARDPACK", "SPE_E5", "ENTERPRISEPACK") if budget[s] > 0 and rng.random() < 0.6),
                   next((s for s in budget if budget[s] > 0), ""))  # fmt: skip
        if not sku:
            break
        budget[sku] -= 1
        plans = "SWAY; YAMMER_ENTERPRISE" if sku != "STANDARDPACK" and rng.random() < 0.3 else ""
        row(u, lic=sku, plans=plans)

    # 2. Security and reporting add-ons for existing staff (several licenses in one cell for some).
    licensed = [u for u in members if u["licenseAssignmentStates"] and u["usageLocation"]]
    p1 = [u for u in licensed if not holds(u, "AAD_PREMIUM")][: min(40, free["AAD_PREMIUM"] - 15)]
    bi = [u for u in licensed if not holds(u, "POWER_BI_PRO") and u not in p1][: min(20, free["POWER_BI_PRO"] - 6)]
    for i, u in enumerate(p1):
        if i % 10 == 0 and not holds(u, "POWER_BI_PRO") and budget_ok(free, "POWER_BI_PRO", len(bi) + i // 10 + 1):
            row(u, lic="AAD_PREMIUM; POWER_BI_PRO", notes="two licenses in one cell")
        else:
            row(u, lic="AAD_PREMIUM")
    for u in bi:
        row(u, lic=info["skus"]["POWER_BI_PRO"]["skuId"], notes="license given by skuId")

    # 3. Promotions: Microsoft 365 E3 -> E5 as one atomic swap (frees E3 seats).
    e3_direct = [u for u in licensed if holds(u, "SPE_E3", direct=True) and not holds(u, "SPE_E3", direct=False)
                 and not holds(u, "SPE_E5") and not holds(u, "STANDARDPACK") and not holds(u, "ENTERPRISEPACK")]
    for u in e3_direct[:4]:
        row(u, action="replace", frm="SPE_E3", lic="SPE_E5", notes="promotion")
    # ... and the freed E3 seats go to new starters who need desktop apps.
    for u in e3_starters:
        row(u, lic="SPE_E3", notes="takes a seat the promotions free")

    # 4. Leavers' add-ons removed.
    audio = [u for u in licensed if holds(u, "MCOMEETADV", direct=True) and not holds(u, "MCOMEETADV", direct=False)]
    for u in audio[:3]:
        row(u, action="remove", lic="MCOMEETADV", notes="left the audio conferencing pilot")

    # 5. Each kind of problem, on purpose.
    def u_(upn: str) -> dict[str, Any]:
        return by_upn[upn]

    dom = info["domain"]
    nowhere = [u for u in members if not u["usageLocation"] and not u["licenseAssignmentStates"]]
    copilot = [u for u in licensed if not holds(u, "Microsoft_365_Copilot")][-3:]
    row(None, email=f"maria.garcia.{dom}", lic="STANDARDPACK", first="Maria", last="Garcia",
        country="Spain", notes="malformed: no @")  # fmt: skip
    row(None, email=f"new.starter@{dom}", lic="STANDARDPACK", first="New", last="Starter", country="Ireland",
        notes="not created in Entra ID yet")
    row(u_(f"jane.doe_fabrikam.com#EXT#@{dom}"), lic="POWER_BI_PRO", notes="guest account")
    row(u_(f"lee.gu@{dom}"), lic="AAD_PREMIUM", notes="disabled account")
    row(u_(f"megan.bowen@{dom}"), lic="STANDARDPACK", country="", notes="no usage location anywhere")
    row(nowhere[1], lic="STANDARDPACK", country="Atlantis", notes="not a country")
    for u, c in zip(nowhere[2:6], ("Germany", "United Kingdom", "Netherlands", "DEU"), strict=False):
        row(u, lic="STANDARDPACK", country=c, notes="usage location set from HR country")
    row(u_(f"pradeep.gupta@{dom}"), lic="SPE_E7", notes="no such product")
    row(u_(f"pradeep.gupta@{dom}"), lic="VISIOCLIENT", notes="real product, not bought")
    row(u_(f"alex.wilber@{dom}"), lic="CDSAICAPACITY", notes="tenant-wide add-on, not for users")
    row(u_(f"joni.sherman@{dom}"), lic="STANDARDPACK", plans="MCOEV", notes="Teams Phone is not in E1")
    row(u_(f"pradeep.gupta@{dom}"), action="replace", frm="SPE_E3", lic="SPE_E5", country="India",
        notes="swap from a license not held")  # fmt: skip
    row(u_(f"nestor.wilke@{dom}"), action="remove", lic="SPE_E3", notes="inherited from a group")
    dup = u_(f"henrietta.mueller@{dom}")
    row(dup, lic="POWER_BI_PRO", notes="first")
    row(dup, lic="POWER_BI_PRO", notes="same row twice")
    used = {r[3] for r in rows}
    con = next(u for u in licensed if u["userPrincipalName"] not in used and not holds(u, "AAD_PREMIUM"))
    row(con, lic="AAD_PREMIUM", notes="conflicts with the next row")
    row(con, action="remove", lic="AAD_PREMIUM", notes="conflicts with the previous row")
    row(u_(f"adele.vance@{dom}"), lic="SPE_E3", notes="already has it")
    row(u_(f"diego.siciliani@{dom}"), lic="STANDARDPACK", notes="E1 on an E3 user: Exchange packs stack, seat wasted")
    row(u_(f"henrietta.mueller@{dom}"), lic="SPE_E3", notes="Teams EEA's MCOIMP and E3's MCOSTANDARD conflict")
    row(u_(f"joni.sherman@{dom}"), lic="MCOMEETADV", notes="Audio Conferencing needs Teams")
    for u in copilot:
        row(u, lic="Microsoft_365_Copilot", notes="no Copilot seats left")
    row(u_(f"patti.fernandez@{dom}"), lic="MCOMEETADV", notes="=HYPERLINK(\"http://example.invalid\",\"click\")")
    return rows


def budget_ok(free: dict[str, int], sku: str, n: int) -> bool:
    return free[sku] - 6 >= n


def department_rows(users: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for u in users:
        if u["department"] == "Finance":
            first, last = _names(u["userPrincipalName"])
            out.append([f"{first} {last}", u["userPrincipalName"], "Finance", u.get("jobTitle") or "", "AAD_PREMIUM"])
    return out


def write_csv(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADERS)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"created": __import__("datetime").datetime(2026, 11, 20)})  # deterministic bytes
    ws = wb.add_worksheet("Entra P1 rollout")
    bold = wb.add_format({"bold": True, "font_size": 14})
    ws.write(0, 0, "Finance department - Microsoft Entra ID P1 rollout", bold)
    ws.write(1, 0, "Prepared by IT, 20 November 2026")
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
    for c, h in enumerate(["Name", "E-mail", "Department", "Job title", "License"]):
        ws.write(3, c, h, head)
    for r, values in enumerate(rows, start=4):
        for c, v in enumerate(values):
            ws.write_string(r, c, v)
    ws.set_column(0, 1, 34)
    ws.set_column(2, 4, 18)
    wb.close()


ADDON_ROWS = [
    # environment, add-on, amount, note
    ("Contoso Production", "AI Builder credits", "+250000", "More for the invoice-processing model"),
    ("Contoso Sales EU", "Power Apps per app", "20", "Field sales app rollout (15 -> 20)"),
    ("Contoso Dev", "Copilot credits", "2000", "Agent prototypes"),
    ("Contoso UAT", "AI Builder credits", "0", "UAT is done: unassign"),
    ("Contoso Trial", "Power Automate per process", "8", "More than is free on purpose: over capacity"),
    ("Contoso Finance", "Copilot credits", "3000", "Its group policy locks the tenant pool"),
    ("Contoso Production", "PAUnattendedRPA", "3", "Currency type written as the API spells it"),
    ("Contoso Marketing", "AI Builder credits", "1000", "No such environment"),
]
ADDON_WIDE = [
    # environment, Power Pages authenticated users, Power Pages anonymous users
    ("Contoso Production", "50", "200"),
    ("Contoso Sales EU", "", "100"),
]


def write_addons(path: Path) -> None:
    import datetime as dt

    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"created": dt.datetime(2026, 12, 1)})  # deterministic bytes
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
    ws = wb.add_worksheet("Add-ons")
    for c, h in enumerate(["Environment", "Add-on", "Amount", "Note"]):
        ws.write(0, c, h, head)
    for r, values in enumerate(ADDON_ROWS, start=1):
        for c, v in enumerate(values):
            ws.write_string(r, c, v)
    ws.set_column(0, 1, 30)
    ws.set_column(3, 3, 48)
    wide = wb.add_worksheet("Add-ons (wide)")
    for c, h in enumerate(["Environment", "Power Pages authenticated users", "Power Pages anonymous users"]):
        wide.write(0, c, h, head)
    for r, values in enumerate(ADDON_WIDE, start=1):
        for c, v in enumerate(values):
            if v:
                wide.write_number(r, c, int(v)) if c else wide.write_string(r, c, v)
    wide.set_column(0, 2, 32)
    wb.close()


def build(out_dir: Path) -> list[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sandbox.db"
        init_tenant(db, users=500, seed=1)
        users, info = list_users(db), tenant_info(db)
    out_dir.mkdir(parents=True, exist_ok=True)
    wave, dept = out_dir / "onboarding-wave.csv", out_dir / "department-assignment.xlsx"
    write_csv(wave, onboarding_rows(users, info))
    write_xlsx(dept, department_rows(users))
    addons = out_dir / "environment-addons.xlsx"
    write_addons(addons)
    return [wave, dept, addons]


if __name__ == "__main__":
    for p in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "batch" / "data" / "samples"):
        print(p)
