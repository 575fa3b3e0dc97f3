"""A fresh machine (empty cache, no network) resolves product names through the shipped snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from batch.cli import main


def test_validate_resolves_product_names_with_no_download(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = workdir / "wave.csv"
    sheet.write_text(
        "userPrincipalName,License\n"
        "pradeep.gupta@contoso.onmicrosoft.com,Microsoft 365 E3\n"
        "pradeep.gupta@contoso.onmicrosoft.com,Microsoft® Power BI Pro™\n"
        "megan.bowen@contoso.onmicrosoft.com,Microsoft 365 E7\n",
        encoding="utf-8",
    )
    code = main(["validate", str(sheet), "--json"])
    out, _err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 1 and summary["rows"] == 3 and summary["errors"] == 1
    assert not (workdir / "cache" / "license-batch").exists()  # nothing was downloaded or cached
    wb = openpyxl.load_workbook(workdir / summary["report"], read_only=True)
    rows = list(wb["Rows"].iter_rows(values_only=True))
    wb.close()
    head = [str(h) for h in rows[0]]
    by_row = [dict(zip(head, r, strict=False)) for r in rows[1:]]
    assert [(r["Status"], r["Finding code"], r["Message"]) for r in by_row] == [
        ("ready", None, None),
        ("ready", None, None),
        ("error", "sku-unknown", "No license called 'Microsoft 365 E7' exists in this tenant or in Microsoft's "
         "product list. Nearest names: 'Microsoft 365 E5', 'Microsoft 365 E3', 'Microsoft_365_Copilot'."),
    ]
