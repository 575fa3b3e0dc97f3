"""batch.kinds.licenses.rules: the dated service-plan rules, pure; the remembered-refusals store on disk."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batch.kinds.licenses import rules
from batch.kinds.licenses.rules import Pack, combination
from batch.sandbox import catalogue as C

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
PRODUCT_LIST = REFERENCE / "Product names and service plan identifiers for licensing.csv"


def pack(sku: str, *, added: bool = False, disabled: tuple[str, ...] = ()) -> Pack:
    """A pack from the sandbox catalogue's real plans (skuId -> part number and plan names)."""
    d = C.SKU_BY_ID[sku]
    return Pack(d.sku_id, d.part_number, tuple(n for pid, n in d.plans if pid not in disabled and n not in disabled),
                added)  # fmt: skip


def test_the_sandbox_enforces_exactly_the_rules_the_client_predicts() -> None:
    assert rules.REFUSED_FAMILIES == C.EXCLUSIVE_FAMILIES
    assert rules.DEPENDENCIES == C.PLAN_DEPENDENCIES
    assert rules.RULES_AS_OF.isoformat() == "2025-10-29"
    # Exchange and SharePoint are not refused families any more: they stack
    refused = set().union(*rules.REFUSED_FAMILIES.values())
    assert not {p for p in refused if p.startswith(("EXCHANGE", "SHAREPOINT", "ONEDRIVE"))}


@pytest.mark.skipif(not PRODUCT_LIST.is_file(), reason=f"reference data not at {PRODUCT_LIST}")
def test_catalogue_plans_are_microsofts() -> None:
    """Every (skuId, part number, servicePlanId, servicePlanName) of the sandbox catalogue is in Microsoft's list."""
    with PRODUCT_LIST.open(encoding="utf-8-sig", newline="") as f:
        real = {(r["GUID"], r["String_Id"], r["Service_Plan_Id"], r["Service_Plan_Name"]) for r in csv.DictReader(f)}
    missing = [(s.part_number, name) for s in C.SKUS for pid, name in s.plans
               if (s.sku_id, s.part_number, pid, name) not in real]  # fmt: skip
    assert not missing


# ----------------------------------------------------------------------------------------- conflicts


def test_conflict_names_the_family_and_the_fix() -> None:
    (c,) = rules.conflicts([pack(C.TEAMS_EEA), pack(C.SPE_E3, added=True)])
    assert (c.family, c.held.name, c.held_plan, c.other.name, c.other_plan) == (
        "Skype for Business", "Microsoft_Teams_EEA_New", "MCOIMP", "SPE_E3", "MCOSTANDARD")  # fmt: skip
    assert c.audit_text == "License assignment failed because service plans MCOIMP, MCOSTANDARD are mutually exclusive."
    assert c.fix == ("Disable MCOSTANDARD in SPE_E3 (disabled plans column), or replace Microsoft_Teams_EEA_New with "
                     "SPE_E3 instead of adding it.")  # fmt: skip


def test_conflict_of_two_new_packs_and_the_ways_out() -> None:
    (c,) = rules.conflicts([pack(C.TEAMS_EEA, added=True), pack(C.O365_E1, added=True)])
    assert c.fix == ("Disable MCOSTANDARD in STANDARDPACK or MCOIMP in Microsoft_Teams_EEA_New (disabled plans "
                     "column), or give only one of them.")  # fmt: skip
    # disabling one of the two plans, or not holding the other pack, makes it legal
    assert rules.conflicts([pack(C.TEAMS_EEA), pack(C.SPE_E3, added=True, disabled=("MCOSTANDARD",))]) == []
    assert rules.conflicts([pack(C.SPE_E3, added=True)]) == []


def test_the_same_plan_from_two_packs_stacks() -> None:
    # INTUNE_A and RMS_S_ENTERPRISE in both Microsoft 365 E3 and EMS E3; YAMMER_ENTERPRISE in E1 and E3
    assert rules.conflicts([pack(C.SPE_E3), pack(C.EMS_E3, added=True)]) == []
    assert rules.conflicts([pack(C.O365_E1), pack(C.O365_E3, added=True)]) == []


@pytest.mark.parametrize("family", sorted(rules.REFUSED_FAMILIES))
def test_every_refused_family_is_refused(family: str) -> None:
    a, b = sorted(rules.REFUSED_FAMILIES[family])[:2]
    (c,) = rules.conflicts([Pack("1", "ONE", (a,)), Pack("2", "TWO", (b,), added=True)])
    assert (c.family, c.held_plan, c.other_plan) == (family, a, b)


# -------------------------------------------------------------------------------------- dependencies


def test_audio_conferencing_and_teams_phone_need_teams_or_skype() -> None:
    teams_phone = Pack("e43b5b99-8dfb-405f-9987-dc307f34bcbd", "MCOEV", ("MCOEV",), added=True)
    (m,) = rules.missing_dependencies([pack(C.POWER_BI_PRO), teams_phone])
    assert (m.pack.name, m.plan, m.needs) == ("MCOEV", "MCOEV", rules.TEAMS_OR_SKYPE)
    assert m.audit_text == ("License assignment failed because service plan MCOEV depends on the service plan(s) "
                            "TEAMS1, MCOSTANDARD, MCOIMP, MCOSTANDARD_MIDMARKET, MCOLITE.")  # fmt: skip
    assert m.fix == ("Give the user a license with Teams (TEAMS1) or Skype for Business Online in the same sheet "
                     "(e.g. Microsoft 365 E3), or drop MCOEV.")  # fmt: skip
    (m,) = rules.missing_dependencies([pack(C.AUDIO_CONF, added=True)])
    assert m.plan == "MCOMEETADV"
    assert rules.missing_dependencies([pack(C.TEAMS_EEA), pack(C.AUDIO_CONF, added=True), teams_phone]) == []
    # Teams disabled in the only pack that has it breaks it again
    assert len(rules.missing_dependencies([pack(C.TEAMS_EEA, disabled=("TEAMS1", "MCOIMP")), teams_phone])) == 1


# ----------------------------------------------------------------------------------------- redundant


def test_e1_on_an_e5_user_is_redundant() -> None:
    (r,) = rules.redundant([pack(C.SPE_E5), pack(C.O365_E1, added=True)])
    assert (r.pack.name, [p.name for p in r.covered_by]) == ("STANDARDPACK", ["SPE_E5"])
    assert r.fix == "Drop this license from the row if it is not needed: it takes one STANDARDPACK seat for nothing."


def test_e3_and_e5_together_name_the_lower_one() -> None:
    (r,) = rules.redundant([pack(C.SPE_E3), pack(C.SPE_E5, added=True)])  # E5 added to an E3 user
    assert (r.pack.name, r.pack.added, [p.name for p in r.covered_by]) == ("SPE_E3", False, ["SPE_E5"])
    assert r.fix == ("Remove SPE_E3 from the user in the same sheet (a remove row) to free its seat, unless it is "
                     "kept on purpose.")  # fmt: skip
    (r,) = rules.redundant([pack(C.SPE_E5), pack(C.SPE_E3, added=True)])  # E3 added to an E5 user
    assert r.pack.name == "SPE_E3" and r.pack.added


def test_exchange_and_sharepoint_tiers_stack_as_covered() -> None:
    # Office 365 E1 on an Office 365 E3 user: Exchange Plan 1 < Plan 2, SharePoint Plan 1 < Plan 2, ...
    (r,) = rules.redundant([pack(C.O365_E3), pack(C.O365_E1, added=True)])
    assert r.pack.name == "STANDARDPACK"
    # a pack that brings something new is not redundant (E3 on an E1 user adds Office apps)
    assert rules.redundant([pack(C.O365_E1), pack(C.O365_E3, added=True)]) == [
        rules.Redundancy(pack(C.O365_E1), (pack(C.O365_E3, added=True),),
                         "Remove STANDARDPACK from the user in the same sheet (a remove row) to free its seat, "
                         "unless it is kept on purpose."),
    ]  # fmt: skip
    assert rules.redundant([pack(C.SPE_E3), pack(C.POWER_BI_PRO, added=True)]) == []


def test_redundancy_that_the_change_does_not_touch_is_not_reported() -> None:
    # E1 and E5 held together already; adding Power Apps Premium does not make it this row's business
    assert rules.redundant([pack(C.SPE_E5), pack(C.O365_E1), pack(C.POWERAPPS_PREMIUM, added=True)]) == []
    # ... while Power BI Pro on an E5 user is itself redundant (Microsoft 365 E5 includes BI_AZURE_P2)
    assert [r.pack.name for r in rules.redundant([pack(C.SPE_E5), pack(C.POWER_BI_PRO, added=True)])] == [
        "POWER_BI_PRO"
    ]


# ------------------------------------------------------------------------------------ remembered refusals


@pytest.mark.parametrize(
    ("status", "code", "message", "kind"),
    [
        (400, "Request_BadRequest", "License assignment failed because service plans A, B are mutually exclusive.",
         "conflict"),
        (400, "Request_BadRequest", "License assignment failed because service plan A depends on the service "
         "plan(s) B.", "dependency"),
        (400, "MutuallyExclusiveViolation", "", "conflict"),
        (400, "DependencyViolation", "whatever", "dependency"),
        (400, "Request_BadRequest", "Subscription with SKU x does not have any available licenses.", None),
        (403, "Authorization_RequestDenied", "service plans A, B are mutually exclusive.", None),
        (429, "TooManyRequests", "Please retry again later.", None),
        (None, "RetriesExhausted", "mutually exclusive", None),
        (400, "Request_ResourceNotFound", "mutually exclusive", None),
    ],
)  # fmt: skip
def test_refusal_kind(status: int | None, code: str, message: str, kind: str | None) -> None:
    assert rules.refusal_kind(status, code, message) == kind


def test_remember_and_load_per_tenant(tmp_path: Path) -> None:
    msg = "License assignment failed because service plans MCOIMP, MCOSTANDARD are mutually exclusive."
    when = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    got = rules.remember_refusal(tmp_path, "TENANT-A", result=[(C.TEAMS_EEA, ()), (C.SPE_E3, ())],
                                 add=[(C.SPE_E3, ())], remove=[], status=400, code="Request_BadRequest",
                                 message=msg, user="h@contoso.com", when=when)  # fmt: skip
    assert got is not None and got.kind == "conflict"
    # the same combination again is stored once; another tenant knows nothing of it
    rules.remember_refusal(tmp_path, "tenant-a", result=[(C.SPE_E3, ()), (C.TEAMS_EEA, ())], add=[], remove=[],
                           status=400, code="Request_BadRequest", message=msg)  # fmt: skip
    (ref,) = rules.load_remembered(tmp_path, "tenant-a")
    assert ref == got and ref.when == "2026-12-01T08:30:00Z" and ref.user == "h@contoso.com"
    assert rules.load_remembered(tmp_path, "tenant-b") == []
    on_disk = json.loads((tmp_path / rules.REMEMBERED_FILE).read_text(encoding="utf-8"))
    assert list(on_disk) == ["tenant-a"]
    # a conflict is met again whatever else the user holds; a different combination is not
    more = combination([(C.TEAMS_EEA, ()), (C.SPE_E3, ()), (C.POWER_BI_PRO, ())])
    assert rules.refused_before([ref], more) == ref
    assert rules.refused_before([ref], combination([(C.TEAMS_EEA, ()), (C.SPE_E3, (C.MCOSTANDARD,))])) is None


def test_only_plan_refusals_are_remembered_and_a_damaged_store_is_not_fatal(tmp_path: Path) -> None:
    assert rules.remember_refusal(tmp_path, "t", result=[(C.SPE_E3, ())], add=[(C.SPE_E3, ())], remove=[],
                                  status=400, code="Request_BadRequest",
                                  message=f"Subscription with SKU {C.SPE_E3} does not have any available licenses.",
                                  ) is None  # fmt: skip
    assert not (tmp_path / rules.REMEMBERED_FILE).exists()
    (tmp_path / rules.REMEMBERED_FILE).write_text("{not json", encoding="utf-8")
    assert rules.load_remembered(tmp_path, "t") == []
    (tmp_path / rules.REMEMBERED_FILE).write_text('{"t": [{"kind": "conflict", "result": 5}]}', encoding="utf-8")
    assert rules.load_remembered(tmp_path, "t") == []
    # a dependency is only met again for the very same licenses (another license may bring what was missing)
    dep = rules.remember_refusal(tmp_path, "t", result=[(C.AUDIO_CONF, ())], add=[(C.AUDIO_CONF, ())], remove=[],
                                 status=400, code="DependencyViolation", message="")  # fmt: skip
    assert dep is not None and rules.load_remembered(tmp_path, "t") == [dep]
    assert rules.refused_before([dep], combination([(C.AUDIO_CONF, ())])) == dep
    assert rules.refused_before([dep], combination([(C.AUDIO_CONF, ()), (C.TEAMS_EEA, ())])) is None
