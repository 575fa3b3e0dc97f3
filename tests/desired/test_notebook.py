"""The notebook interface: DataFrames in (instead of a file) and out (exports, validation, plan, results, drift)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batch import jobs
from batch.config import load_settings
from batch.desired import notebook as nb
from batch.errors import ColumnError, InputError

from .conftest import upn, xlsx_rows


def test_dataframes_in_and_out(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with jobs.open_session(load_settings(report_dir=str(workdir / "reports"))) as s:
        today = nb.export_users(s, department="Sales")
        assert list(today.columns) == ["userPrincipalName", "skuPartNumber", "Disabled plans", "Usage location",
                                       "Department", "Held", "Groups"]
        assert set(today["Department"]) == {"Sales"}
        addons = nb.export_addons(s)
        assert len(addons) == 10
        # the unedited export, as a DataFrame, validates to nothing to do
        checked = nb.validate(s, today)
        assert set(checked.frame["status"]) == {"unchanged"}
        wanted = pd.concat([today, pd.DataFrame([{"userPrincipalName": upn("adele.vance"),
                                                  "skuPartNumber": "POWER_BI_PRO"}])], ignore_index=True).fillna("")
        planned = nb.plan(s, wanted)
        assert planned.frame[["target", "kind"]].values.tolist() == [[upn("adele.vance"), "assignLicense"]]
        rec = nb.reconcile(s, wanted, scope="department=Sales")
        assert rec.drift.loc[rec.drift["kind"] == "missing", "target"].tolist() == [upn("adele.vance")]
        result = nb.apply(s, wanted)
        frame = nb.results(result)
        assert len(frame) == len(wanted)
        assert frame.loc[frame["userPrincipalName"] == upn("adele.vance"), "status"].tolist() == [
            "unchanged", "applied"]
        assert nb.reconcile(s, wanted, scope="department=Sales").drift_count == 0


def held(workdir: Path, name: str) -> list[tuple[str, str | None]]:
    """(part number, group id or None) of every license the sandbox says the user holds (Active states)."""
    con = sqlite3.connect(workdir / "sandbox.db")
    try:
        parts = dict(con.execute("SELECT sku_id, part_number FROM skus").fetchall())
        (text,) = con.execute("SELECT licenses FROM users WHERE upn_lower = ?", (name.lower(),)).fetchone()
    finally:
        con.close()
    return [(str(parts[st["skuId"]]), st["assignedByGroup"]) for st in json.loads(text)
            if st["state"] in ("Active", "ActiveWithError")]


def _no_file_written_for_the_frame(reports: Path) -> None:
    """A frame is read in memory: nothing under reports/frames, no input CSV in any run folder."""
    assert not (reports / "frames").exists()
    assert not [p for p in reports.rglob("*") if p.name.startswith("input") and p.suffix == ".csv"]


def test_a_frame_is_validated_planned_applied_and_reconciled_in_memory(workdir: Path) -> None:
    reports = workdir / "reports"
    frame = pd.DataFrame({"userPrincipalName": [upn("adele.vance"), upn("nobody")],
                          "skuPartNumber": ["POWER_BI_PRO", "SPE_E3"], "Seats": [1, np.nan]})
    with jobs.open_session(load_settings(report_dir=str(reports))) as s:
        checked = nb.validate(s, frame)
        assert checked.frame[["row", "status", "code"]].values.tolist() == [
            [2, "ready", ""], [3, "error", "user-not-found"]]
        assert checked.run.validation.sheet.rows[1].cells == (upn("nobody"), "SPE_E3", "")  # NaN -> "", 1 -> "1"
        planned = nb.plan(s, frame)
        assert planned.frame[["target", "kind"]].values.tolist() == [[upn("adele.vance"), "assignLicense"]]
        result = nb.apply(s, frame)
        run_dir = reports / result.run_id
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        sha = planned.run.validation.sheet.sha256
        assert run["input"] == {"path": "<DataFrame>", "sha256": sha, "format": "dataframe", "sheet": None, "rows": 2}
        out = nb.results(result)
        assert out[["userPrincipalName", "skuPartNumber", "Seats", "status"]].values.tolist() == [
            [upn("adele.vance"), "POWER_BI_PRO", "1", "applied"], [upn("nobody"), "SPE_E3", "", "skipped"]]
        # the results workbook carries every input column and row
        rows = xlsx_rows(run_dir / "results.xlsx")
        assert [(r["userPrincipalName"], r["skuPartNumber"], r["Seats"], r["Row"]) for r in rows] == [
            (upn("adele.vance"), "POWER_BI_PRO", "1", 2), (upn("nobody"), "SPE_E3", None, 3)]
        rec = nb.reconcile(s, frame.iloc[:1])
        assert str(rec.source) == "<DataFrame>"
        # adele's other licenses, as the sandbox holds them (all direct): extra, nothing else
        others = [(p, g) for p, g in held(workdir, upn("adele.vance")) if p != "POWER_BI_PRO"]
        assert others and all(g is None for _p, g in others)
        a = upn("adele.vance")
        assert rec.drift.values.tolist() == [
            ["extra", a, p, f"{a} holds {p}; the sheet does not ask for it", "run with --apply --prune to remove it",
             "", 0, False] for p, _g in sorted(others)]
        assert rec.drift_count == len(others)
        with pytest.raises(ColumnError) as e:
            nb.reconcile(s, pd.DataFrame({"Name": ["Adele"], "Product": ["E3"]}))
        assert str(e.value) == (
            "<DataFrame>: No column names the user. The headers (row 1) are: 'Name', 'Product'. Head the column "
            'userPrincipalName (or UPN, Email), or map it: --map "user=<header>".')
        with pytest.raises(ColumnError) as e:
            nb.plan(s, pd.DataFrame({"Name": ["Adele"], "Product": ["E3"]}))
        assert str(e.value).startswith("<DataFrame>: No column names the user.")
    _no_file_written_for_the_frame(reports)


def test_a_frame_run_resumes_from_its_journal(workdir: Path) -> None:
    """resume needs no input: the journal holds the plan and every input row."""
    from batch import apply as engine
    from batch.apply.journal import Journal

    reports = workdir / "reports"
    frame = pd.DataFrame({"userPrincipalName": [upn("adele.vance"), upn("lidia.holloway")],
                          "skuPartNumber": ["POWER_BI_PRO", "POWER_BI_PRO"]})
    with jobs.open_session(load_settings(report_dir=str(reports))) as s:
        prepared = jobs.plan_file(s, frame)
        journal = engine.start(prepared.plan, run_dir=prepared.run_dir, run_id=prepared.run_id,
                               source=prepared.source, argv=["notebook"], tenant_name=s.target.name)
        journal.close()  # planned and journalled, nothing sent: as a run killed before its first batch
        with Journal.open(prepared.run_dir / engine.JOURNAL_NAME) as j:
            info = j.run_info()
        assert (info.input_path, info.input_sha256) == ("<DataFrame>", prepared.validation.sheet.sha256)
        del frame  # the frame is gone, as after a notebook restart
        result = jobs.resume_run(s, prepared.run_id)
    assert [(r.row_number, r.status.value) for r in result.rows] == [(2, "applied"), (3, "applied")]
    rows = xlsx_rows(prepared.run_dir / "results.xlsx")
    assert [(r["userPrincipalName"], r["Status"]) for r in rows] == [
        (upn("adele.vance"), "applied"), (upn("lidia.holloway"), "applied")]
    _no_file_written_for_the_frame(reports)


def test_an_approved_plan_of_a_frame_needs_the_same_frame(workdir: Path) -> None:
    from batch.desired.approved import StalePlanError, apply_approved, check_plan, write_plan_file

    reports = workdir / "reports"
    frame = pd.DataFrame({"userPrincipalName": [upn("adele.vance")], "skuPartNumber": ["POWER_BI_PRO"]})
    with jobs.open_session(load_settings(report_dir=str(reports))) as s:
        plan_path, _ = write_plan_file(jobs.plan_file(s, frame), s.target.name, workdir / "plan.json")
        assert json.loads(plan_path.read_text(encoding="utf-8"))["input"]["path"] == "<DataFrame>"
        with pytest.raises(InputError) as e:
            check_plan(s, plan_path)
        assert str(e.value) == (
            f"{plan_path}: The plan was made from a DataFrame, not a file: there is nothing to read it again from. "
            "Check it from Python with the same DataFrame: check_plan(session, PLAN, frame=df), then "
            "apply_approved(...).")
        with pytest.raises(StalePlanError) as stale:
            check_plan(s, plan_path, frame=frame.assign(skuPartNumber=["SPE_E5"]))
        assert "the input DataFrame changed since the plan was made (the sha256 of its cells differs)" in (
            stale.value.differences)
        fresh, doc = check_plan(s, plan_path, frame=frame)
        result = apply_approved(s, fresh, doc, plan_path, approved_by="Pat", argv=[])
    assert [r.status.value for r in result.rows] == ["applied"]
    _no_file_written_for_the_frame(reports)
