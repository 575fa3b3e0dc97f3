"""export --group / reconcile --scope group= reach nested groups' users; export --filter and reconcile --scope take
the user attributes administrators scope by (ANDed; advanced-query attributes sent as Graph requires)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from batch.sandbox import add_member

from .conftest import read_csv, run, run_json, write_csv, xlsx_rows


def q(workdir: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    con = sqlite3.connect(workdir / "sandbox.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def licensed_upns(workdir: Path, where: str, args: tuple[object, ...] = ()) -> set[str]:
    """UPNs of the users matching ``where`` who hold at least one license (an export writes no other user)."""
    return {str(r[0]) for r in q(workdir, f"SELECT upn FROM users WHERE licenses LIKE '%\"state\":\"Active%' AND "
                                          f"({where})", args)}


def group_upns(workdir: Path, name: str) -> set[str]:
    return {str(r[0]) for r in q(workdir, "SELECT u.upn FROM members m JOIN users u ON u.id = m.user_id JOIN groups g "
                                          "ON g.id = m.group_id WHERE g.display_name = ?", (name,))}


def exported(workdir: Path, path: str) -> set[str]:
    return {r["userPrincipalName"] for r in read_csv(workdir / path)}


Line = tuple[str, str, str, str, str]  # kind, target, license, detail, fix


def unasked_drift(workdir: Path, upns: set[str]) -> set[Line]:
    """The drift reconcile must report for users in scope whom the sheet gives nothing, computed from the sandbox's
    state: every license they hold is extra (held directly), group-unexpected (through a group), or both."""
    parts = {str(k): str(v) for k, v in q(workdir, "SELECT sku_id, part_number FROM skus")}
    groups = {str(k): (str(n), rule)
              for k, n, rule in q(workdir, "SELECT id, display_name, membership_rule FROM groups")}
    out: set[Line] = set()
    for u, lic in q(workdir, "SELECT upn, licenses FROM users"):
        if u not in upns:
            continue
        how: dict[str, tuple[bool, list[str]]] = {}
        for st in json.loads(str(lic)):
            if st["state"] in ("Active", "ActiveWithError"):
                direct, via = how.get(parts[st["skuId"]], (False, []))
                g = st["assignedByGroup"]
                how[parts[st["skuId"]]] = (direct or g is None, via + ([g] if g else []))
        for p, (direct, via) in how.items():
            assert all(groups[g][1] is None for g in via)  # rule-based groups would be advice of another kind
            names = ", ".join(f"'{groups[g][0]}'" for g in via)
            if direct and via:
                detail = f"{u} holds {p} directly and through group {names}; the sheet does not ask for it"
                out.add(("extra", str(u), p, detail, "run with --apply --prune to remove the direct assignment"))
            elif direct:
                out.add(("extra", str(u), p, f"{u} holds {p}; the sheet does not ask for it",
                         "run with --apply --prune to remove it"))
            else:
                detail = f"{u} holds {p} through group {names}; the sheet does not ask for it"
            if via:
                out.add(("group-unexpected", str(u), p, detail, f"run with --apply --prune to remove the user from "
                                                                 f"{names}"))
    return out


def report_lines(workdir: Path, summary: dict[str, object], kinds: tuple[str, ...]) -> list[Line]:
    return [(str(r["kind"]), str(r["target"]), str(r["license"]), str(r["detail"]), str(r["fix"]))
            for r in xlsx_rows(workdir / str(summary["report"])) if r["kind"] in kinds]


@pytest.fixture
def seeded(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The workdir's sandbox, seeded by a first command."""
    assert run(capsys, "export", "addons", "-o", "seed.csv")[0] == 0
    return workdir


def test_export_group_reaches_the_users_of_nested_groups(seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sales, marketing = group_upns(seeded, "Sales Team"), group_upns(seeded, "Marketing Team")
    assert run(capsys, "export", "users", "-o", "before.csv", "--group", "Sales Team")[0] == 0
    add_member(seeded / "sandbox.db", "Sales Team", "Marketing Team")
    code, _out, err = run(capsys, "export", "users", "-o", "after.csv", "--group", "Sales Team")
    assert code == 0, err
    licensed = licensed_upns(seeded, "1")
    assert exported(seeded, "before.csv") == sales & licensed
    assert exported(seeded, "after.csv") == (sales | marketing) & licensed
    assert marketing & licensed - sales


def test_reconcile_scope_group_counts_nested_users_the_sheet_leaves_out(
    seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sheet is the Sales Team's export; once Marketing Team is nested in Sales Team, every license of every
    Marketing user is drift: they are in the scope and the sheet gives them nothing."""
    assert run(capsys, "export", "users", "-o", "sales.csv", "--group", "Sales Team")[0] == 0
    code, summary, err = run_json(capsys, "reconcile", "sales.csv", "--scope", "group=Sales Team")
    assert code == 0 and summary["drift"] == 0, err
    add_member(seeded / "sandbox.db", "Sales Team", "Marketing Team")
    code, summary, err = run_json(capsys, "reconcile", "sales.csv", "--scope", "group=Sales Team")
    assert code == 1, err
    marketing = group_upns(seeded, "Marketing Team") - group_upns(seeded, "Sales Team")
    want = unasked_drift(seeded, marketing)
    assert {k for k, *_ in want} == {"extra", "group-unexpected"}  # the seed has both kinds for them
    got = report_lines(seeded, summary, ("extra", "group-unexpected"))
    assert sorted(got) == sorted(want) and len(got) == len(want)
    redundant = report_lines(seeded, summary, ("redundant",))  # advice, about users the sheet names
    assert summary["kinds"] == {"extra": sum(k == "extra" for k, *_ in want),
                                "group-unexpected": sum(k == "group-unexpected" for k, *_ in want),
                                **({"redundant": len(redundant)} if redundant else {})}
    assert not {t for _k, t, *_ in redundant} & marketing
    for kind, _t, _p, detail, fix in want:  # the console says each, as the report does
        assert f"  {kind:<18}{detail}  [{fix}]" in err.splitlines(), err


def test_export_filter_on_attributes_anded(seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "export", "users", "-o", "mgr.csv", "--filter", "JobTitle=sales manager")
    assert code == 0, err
    managers = licensed_upns(seeded, "job_title = 'Sales Manager'")
    assert exported(seeded, "mgr.csv") == managers and managers
    code, _out, err = run(capsys, "export", "users", "-o", "both.csv", "--filter", "department=Sales",
                          "--filter", "usage_location=us")
    assert code == 0, err
    both = licensed_upns(seeded, "department = 'Sales' AND usage_location = 'US'")
    assert exported(seeded, "both.csv") == both
    assert both and both < licensed_upns(seeded, "department = 'Sales'")
    code, _out, err = run(capsys, "export", "users", "-o", "off.csv", "--filter", "accountEnabled=false")
    assert code == 0, err
    assert exported(seeded, "off.csv") == licensed_upns(seeded, "account_enabled = 0") != set()


def test_advanced_query_attributes_are_sent_as_advanced_queries(
    seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """companyName, officeLocation and employeeType take eq only with ConsistencyLevel: eventual and $count=true:
    the sandbox refuses them otherwise (as Graph does), so these exports only succeed if the client sends both."""
    con = sqlite3.connect(seeded / "sandbox.db")
    with con:
        con.execute("UPDATE users SET company_name = 'Fabrikam', employee_type = 'Contractor' "
                    "WHERE department = 'Legal'")
    con.close()
    office = str(q(seeded, "SELECT office_location FROM users WHERE department = 'Sales' AND licenses LIKE "
                           "'%Active%' ORDER BY n LIMIT 1")[0][0])
    code, _out, err = run(capsys, "export", "users", "-o", "o.csv", "--filter", f"officeLocation={office}")
    assert code == 0, err
    assert exported(seeded, "o.csv") == licensed_upns(seeded, "office_location = ?", (office,)) != set()
    code, _out, err = run(capsys, "export", "users", "-o", "c.csv", "--filter", "companyname=FABRIKAM",
                          "--filter", "employeeType=Contractor", "--filter", "department=Legal")
    assert code == 0, err
    assert exported(seeded, "c.csv") == licensed_upns(seeded, "department = 'Legal'") != set()
    # reconcile --scope on an advanced attribute: the Legal export against companyName=Fabrikam matches
    assert run(capsys, "export", "users", "-o", "legal.csv", "--filter", "department=Legal")[0] == 0
    code, summary, err = run_json(capsys, "reconcile", "legal.csv", "--scope", "companyName=Fabrikam")
    assert (code, summary["drift"]) == (0, 0), err
    assert "No drift: the tenant matches the sheet (scope companyName=Fabrikam)." in err


def test_scope_attribute_reaches_users_the_sheet_leaves_out(seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "export", "users", "-o", "mgr.csv", "--filter", "jobTitle=Sales Manager")[0] == 0
    code, summary, err = run_json(capsys, "reconcile", "mgr.csv", "--scope", "jobtitle=Sales Manager")
    assert (code, summary["drift"]) == (0, 0), err
    assert "No drift: the tenant matches the sheet (scope jobTitle=Sales Manager)." in err
    rows = read_csv(seeded / "mgr.csv")
    left_out = rows[0]["userPrincipalName"]
    write_csv(seeded / "fewer.csv", [r for r in rows if r["userPrincipalName"] != left_out])
    code, summary, err = run_json(capsys, "reconcile", "fewer.csv", "--scope", "jobTitle=Sales Manager")
    assert code == 1, err
    want = unasked_drift(seeded, {left_out})
    assert want and sorted(report_lines(seeded, summary, ("extra", "group-unexpected"))) == sorted(want)
    assert summary["kinds"] == {k: sum(w[0] == k for w in want) for k in {w[0] for w in want}}
    for kind, _t, _p, detail, fix in want:
        assert f"  {kind:<18}{detail}  [{fix}]" in err.splitlines(), err


def test_unknown_attribute_and_bad_values_are_refused_with_the_nearest_name(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ("department, jobTitle, companyName, officeLocation, country, city, state, usageLocation, employeeType, "
             "userType, accountEnabled")
    code, _out, err = run(capsys, "export", "users", "-o", "x.csv", "--filter", "departmnt=Sales")
    assert code == 2
    assert err == (f"error: --filter: 'departmnt' is not a user attribute that can be filtered on. Did you mean "
                   f"'department'? Use one of: {names}.\nNothing was applied.\n")
    code, _out, err = run(capsys, "reconcile", "x.csv", "--scope", "jobtitel=Engineer")
    assert code == 2
    assert err.startswith("error: --scope: 'jobtitel' is not a user attribute that can be filtered on. Did you mean "
                          "'jobTitle'?")
    code, _out, err = run(capsys, "export", "users", "-o", "x.csv", "--filter", "accountEnabled=maybe")
    assert code == 2 and err.startswith("error: --filter: accountEnabled takes true or false, not 'maybe'.")
    code, _out, err = run(capsys, "export", "users", "-o", "x.csv", "--filter", "Sales")
    assert code == 2 and err.startswith("error: --filter takes ATTRIBUTE=VALUE (e.g. department=Sales), not 'Sales'.")
    assert not (workdir / "x.csv").exists()


def test_help_lists_the_attributes_the_library_takes() -> None:
    from batch.desired.commands import ATTRIBUTE_NAMES
    from batch.tenant.user_filters import NAMES

    assert ATTRIBUTE_NAMES == NAMES
