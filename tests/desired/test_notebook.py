"""The notebook interface: DataFrames in (instead of a file) and out (exports, validation, plan, results, drift)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from batch import jobs
from batch.config import load_settings
from batch.desired import notebook as nb

from .conftest import upn


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
