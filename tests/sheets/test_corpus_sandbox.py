"""A Microsoft 365 admin center export with pasted, messy UPN cells, validated and applied against the
built-in sandbox tenant with no map: the cleaned key is what is looked up and licensed, and the results keep
every cell as it was written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from batch.cli import main

HEADER = ["Display name", "User principal name", "Licenses", "Usage location", "Country/Region", "Object Id"]
ROWS = [
    [
        "Patricia Robinson",
        "Patricia Robinson <patricia.robinson@contoso.onmicrosoft.com>",
        "SPE_E5+POWER_BI_PRO",
        "GB",
        "United Kingdom",
        "",
    ],
    ["Sarah Perez", "mailto:\u200bsarah.perez@contoso.onmicrosoft.com", "SPE_E5", "FR", "France", ""],
    ["Michael Patel", "\u201cmichael.patel@contoso.onmicrosoft.com\u201d.", "SPE_E5", "BR", "Brazil", ""],
]


@pytest.fixture
def export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("LICENSE_BATCH_GRAPH_URL", "LICENSE_BATCH_TENANT", "LICENSE_BATCH_TOKEN", "LICENSE_BATCH_REPORT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    p = tmp_path / "users_2026_12_02 06_55_00.csv"
    with p.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([HEADER, *ROWS])
    return p


def _rows(path: Path, sheet: str) -> list[tuple[object, ...]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    values = list(wb[sheet].iter_rows(values_only=True))
    wb.close()
    return values


def test_admin_center_export_with_messy_upns_validates_and_applies(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(export), "--json"]) == 0
    out, err = capsys.readouterr()
    s = json.loads(out)
    # one warning: Power BI Pro next to Microsoft 365 E5 (which includes it) is a redundant-license
    assert (s["rows"], s["ok"], s["errors"], s["warnings"]) == (3, 3, 0, 1)
    assert (
        "Note: columns 'Object Id' also look like the user column; using 'User principal name' "
        "(choose with --map user=...)" in err
    )

    assert main(["apply", str(export), "--yes", "--json"]) == 0
    out, _ = capsys.readouterr()
    s = json.loads(out)
    assert (s["rows"], s["applied"], s["failed"], s["skipped"]) == (3, 3, 0, 0)
    results = _rows(Path(s["report"]), "Results")
    head = [str(h) for h in results[0]]
    got = [dict(zip(head, r, strict=False)) for r in results[1:]]
    assert [r["User principal name"] for r in got] == [row[1] for row in ROWS]
    assert [(r["Status"], r["Action"], r["Licenses after"]) for r in got] == [
        ("applied", "assign SPE_E5; assign POWER_BI_PRO", "SPE_E5, POWER_BI_PRO"),
        ("applied", "assign SPE_E5", "SPE_E5"),
        ("applied", "assign SPE_E5", "SPE_E5"),
    ]
