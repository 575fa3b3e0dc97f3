"""Results that round-trip (issue 12): the sheet's row number in every output, the input's numbers and dates
written back typed, Time as an Excel date-time, string cells without a visible apostrophe, a Summary sheet a
person can read. Each test drives the CLI against its own embedded sandbox and reads the files back with
openpyxl."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from batch.cli import main

DOMAIN = "contoso.onmicrosoft.com"
E3, E5 = "05e9a617-0261-4cee-bb44-138d3ef5d965", "06ebc4ee-1bb5-47dd-8120-11324bc54e06"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def wave_xlsx(path: Path) -> Path:
    """A wave as an administrator's workbook: a title row, then numbers, dates and a formula-looking note."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Wave 7 - prepared by IT"])
    ws.append(["Employee number", "Work Email", "License", "Start date", "Badge scanned", "FTE", "Notes"])
    ws.append([10401, f"adele.vance@{DOMAIN}", "SPE_E5", date(2026, 12, 1), datetime(2026, 11, 30, 9, 15), 1.0,
               "=HYPERLINK(\"http://evil.example\",\"x\")"])
    ws.append([10402, f"nobody@{DOMAIN}", "SPE_E5", date(2026, 12, 2), datetime(2026, 11, 30, 9, 30), 0.5,
               "-5"])
    ws.append([10403, f"pradeep.gupta@{DOMAIN}", "SPE_E5", "", "", 0.75, "@team"])
    ws["G3"].data_type = "s"  # text that looks like a formula (as Excel stores a cell typed with a leading ')
    wb.save(path)
    return path


def sheet_rows(path: Path, name: str) -> tuple[list[str], list[list[openpyxl.cell.cell.Cell]]]:
    wb = openpyxl.load_workbook(path)
    ws = wb[name]
    head = [str(c.value) for c in ws[1]]
    return head, [list(r) for r in ws.iter_rows(min_row=2)]


def test_row_numbers_types_time_and_plain_strings_round_trip(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = wave_xlsx(workdir / "wave.xlsx")
    code, out, err = run(capsys, "apply", str(src), "--json")
    assert code == 1  # the unknown user is skipped
    run_dir = workdir / json.loads(out)["report"].rsplit("/", 1)[0]
    # The console names the sheet's rows (title and header counted): 4 is the unknown user.
    assert "user-not-found x1 (row 4)" in err

    head, rows = sheet_rows(run_dir / "results.xlsx", "Results")
    assert head[:8] == ["Employee number", "Work Email", "License", "Start date", "Badge scanned", "FTE", "Notes",
                        "Row"]
    col = {h: i for i, h in enumerate(head)}
    assert [r[col["Row"]].value for r in rows] == [3, 4, 5]  # the first added column: the sheet's row number
    skipped = next(r for r in rows if r[col["Status"]].value == "skipped")
    assert skipped[col["Row"]].value == 4 and skipped[col["Error code"]].value == "user-not-found"
    first = rows[0]
    assert first[col["Employee number"]].value == 10401 and first[col["Employee number"]].data_type == "n"
    assert first[col["FTE"]].value == 1 and rows[1][col["FTE"]].value == 0.5
    assert first[col["Start date"]].value == datetime(2026, 12, 1)
    assert first[col["Start date"]].number_format == "yyyy-mm-dd"
    assert first[col["Badge scanned"]].value == datetime(2026, 11, 30, 9, 15)
    assert first[col["Badge scanned"]].is_date
    assert rows[2][col["Start date"]].value is None  # an empty cell stays empty
    when = first[col["Time"]]
    assert when.is_date and isinstance(when.value, datetime) and when.value.year >= 2026
    # Formula-looking text: a plain string cell, no apostrophe in the xlsx; the CSV keeps the prefix.
    assert first[col["Notes"]].value == "=HYPERLINK(\"http://evil.example\",\"x\")"
    assert first[col["Notes"]].data_type == "s"
    assert rows[1][col["Notes"]].value == "-5" and rows[2][col["Notes"]].value == "@team"
    with zipfile.ZipFile(run_dir / "results.xlsx") as z:
        assert all("<f>" not in z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    with (run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["Row"] for r in csv_rows] == ["3", "4", "5"]
    assert csv_rows[0]["Notes"].startswith("'=HYPERLINK") and csv_rows[1]["Notes"] == "'-5"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", csv_rows[0]["Time"])

    # validation.xlsx: the row number as its first added column too, and the same types.
    vhead, vrows = sheet_rows(run_dir / "validation.xlsx", "Rows")
    assert vhead[7] == "Row" and [r[7].value for r in vrows] == [3, 4, 5]
    assert vrows[0][0].value == 10401 and vrows[0][3].value == datetime(2026, 12, 1)

    # The journal keeps the types: results rewritten by resume are typed the same way.
    assert run(capsys, "resume", run_dir.name)[0] == 1
    _, again = sheet_rows(run_dir / "results.xlsx", "Results")
    assert again[0][col["Employee number"]].value == 10401 and again[0][col["Start date"]].is_date


def test_a_word_document_renamed_xlsx_is_called_a_word_document(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with zipfile.ZipFile(workdir / "wave.xlsx", "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    code, out, err = run(capsys, "validate", "wave.xlsx")
    assert (code, out) == (2, "")
    assert err == (
        "error: wave.xlsx: This is a Word document, not a workbook (whatever its name says). Give the spreadsheet "
        "itself: open the data in Excel and save it as .xlsx, or export it as CSV.\nNothing was applied.\n"
    )


def test_summary_shows_product_names_and_charts_only_what_the_run_touched_against_purchased(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products = workdir / "products.csv"
    products.write_text(
        "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n"
        f"Microsoft 365 E5,SPE_E5,{E5},EXCHANGE_S_ENTERPRISE,efb87545-963c-4e0d-99df-69c6916d9eb0,Exchange\n"
        f"Microsoft 365 E3,SPE_E3,{E3},EXCHANGE_S_ENTERPRISE,efb87545-963c-4e0d-99df-69c6916d9eb0,Exchange\n",
        encoding="utf-8",
    )
    (workdir / "wave.csv").write_text(f"User,License\nadele.vance@{DOMAIN},SPE_E5\n", encoding="utf-8")
    code, out, _ = run(capsys, "apply", "wave.csv", "--product-list", str(products), "--json")
    assert code == 0
    run_dir = workdir / json.loads(out)["report"].rsplit("/", 1)[0]
    wb = openpyxl.load_workbook(run_dir / "results.xlsx")
    rows = [list(r) for r in wb["Summary"].iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r[0] == "Changed by this run")
    assert rows[start][:6] == ["Changed by this run", "SKU", "Purchased", "Before", "After", "Change"]
    e5 = rows[start + 1]
    assert e5[0] == "Microsoft 365 E5" and e5[1] == "SPE_E5" and e5[5] == 1 and e5[2] >= e5[4]
    assert rows[start + 2][0] in (None, "")  # only the touched SKU is in the charted table
    others = next(i for i, r in enumerate(rows) if r[0] == "Not changed by this run")
    names = [r[0] for r in rows[others + 1:] if r[0]]
    assert "Microsoft 365 E3" in names and "SPE_E3" not in names and len(names) >= 10
    with zipfile.ZipFile(run_dir / "results.xlsx") as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        chart = z.read(charts[0]).decode()
    assert len(charts) == 1
    assert re.findall(r"<c:v>(Purchased|Before|After)</c:v>", chart) == ["Purchased", "Before", "After"]
    n = start + 2  # Excel row of the one touched SKU
    assert f"Summary!$A${n}:$A${n}" in chart
