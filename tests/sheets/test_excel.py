"""Workbook corpus: xlsx written with openpyxl (and an ODS built by hand), read back through calamine."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from batch.errors import ColumnError, EmptySheetError, SheetReadError
from batch.models import Role
from batch.sheets import parse_requests, read_sheet

from .conftest import build_cfb, build_encrypted_xlsx_bytes, build_ods


def test_plain_xlsx(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    p = write_xlsx("a.xlsx", {"Licenses": [["UPN", "License"], ["a@contoso.com", "SPE_E3"]]})
    s = read_sheet(p)
    assert (s.format, s.sheet_name, s.encoding, s.delimiter) == ("xlsx", "Licenses", None, None)
    assert (s.header_row, s.headers) == (1, ("UPN", "License"))
    assert [(r.index, r.number, r.cells) for r in s.rows] == [(0, 2, ("a@contoso.com", "SPE_E3"))]


def test_title_rows_and_offset_columns(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    rows = [
        [None, "Onboarding wave 7"],
        [None, "Generated 2024-05-01"],
        [],
        [None, "userPrincipalName", "skuPartNumber", "Usage Location"],
        [None, "a@contoso.com", "SPE_E3", "DE"],
    ]
    s = read_sheet(write_xlsx("t.xlsx", {"S": rows}))
    assert s.header_row == 4
    assert s.headers == ("userPrincipalName", "skuPartNumber", "Usage Location")  # empty column A dropped
    assert s.rows[0].number == 5
    assert s.columns == {Role.USER: 0, Role.SKU: 1, Role.USAGE_LOCATION: 2}
    assert "header found on row 4 below 2 title rows" in s.notes


def test_merged_header_cells(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    # Row 1: "Employee" merged down over A1:A2 (so row 2's A is empty in the file); "Licenses" merged
    # across B1:C1 above the sub-headers "From license" / "To license" on row 2.
    rows = [
        ["Employee", "Licenses", None],
        [None, "From license", "To license"],
        ["a@contoso.com", "SPE_E3", "SPE_E5"],
    ]
    p = write_xlsx("m.xlsx", {"S": rows}, merges={"S": ["A1:A2", "B1:C1"]})
    s = read_sheet(p, column_map={"user": "Employee"})
    # Row 2 wins (two known names + the mapped one); its A cell takes the merged value "Employee".
    assert s.header_row == 2
    assert s.headers == ("Employee", "From license", "To license")
    assert s.columns == {Role.USER: 0, Role.FROM_SKU: 1, Role.TO_SKU: 2}
    r = parse_requests(s)[0]
    assert (r.action, r.from_sku, r.sku) == ("replace", "SPE_E3", "SPE_E5")


def test_merged_header_across_columns_is_made_unique(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    rows = [["UPN", "License", None], ["a@contoso.com", "SPE_E3", "EMS"]]
    s = read_sheet(write_xlsx("m2.xlsx", {"S": rows}, merges={"S": ["B1:C1"]}))
    assert s.headers == ("UPN", "License", "License (2)")
    assert s.columns[Role.SKU] == 1


def test_formulas_without_cached_values_read_empty(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    # openpyxl writes the formula but no cached result (it does not calculate); calamine reads the
    # cached value, so such a cell is EMPTY. A workbook saved by Excel carries the results.
    rows = [
        ["UPN", "License", "Priority"],
        ["a@contoso.com", '=CONCAT("SPE_","E3")', "=1+1"],
        ["b@contoso.com", "EMS", 3],
    ]
    s = read_sheet(write_xlsx("f.xlsx", {"S": rows}))
    assert s.rows[0].cells == ("a@contoso.com", "", "")
    reqs = parse_requests(s)
    assert [f.code for f in reqs[0].findings] == ["license-missing"]
    assert reqs[1].priority == 3


def test_formulas_with_cached_values(tmp_path: Path) -> None:
    # xlsxwriter can store a formula's result, as Excel does when it saves.
    import xlsxwriter

    p = tmp_path / "cached.xlsx"
    wb = xlsxwriter.Workbook(p)
    ws = wb.add_worksheet("S")
    ws.write_row(0, 0, ["UPN", "License", "Priority"])
    ws.write(1, 0, "a@contoso.com")
    ws.write_formula(1, 1, '=CONCATENATE("SPE_","E3")', None, "SPE_E3")
    ws.write_formula(1, 2, "=1+1", None, 2)
    wb.close()
    s = read_sheet(p)
    assert s.rows[0].cells == ("a@contoso.com", "SPE_E3", "2")


def test_dates_numbers_bools(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ["UPN", "License", "Start", "When", "Priority", "Cost centre", "Ratio", "Flag", "Big"],
        [
            "a@contoso.com",
            "SPE_E3",
            dt.date(2024, 5, 1),
            dt.datetime(2024, 5, 1, 13, 5),
            1.0,
            "00123",
            0.1 + 0.2,
            True,
            1e20,
        ],
        ["b@contoso.com", "EMS", dt.datetime(2024, 12, 31), dt.time(9, 30), 2, 42, 2.5, False, 12345678901234.0],
    ]
    s = read_sheet(write_xlsx("d.xlsx", {"S": rows}))
    assert s.rows[0].cells[2:] == (
        "2024-05-01",
        "2024-05-01 13:05:00",
        "1",
        "00123",
        "0.3",
        "TRUE",
        "100000000000000000000",
    )
    assert s.rows[1].cells[2:] == ("2024-12-31", "09:30:00", "2", "42", "2.5", "FALSE", "12345678901234")
    assert [r.priority for r in parse_requests(s)] == [1, 2]


def test_trailing_rows_and_columns_dropped_blank_rows_counted(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    p = write_xlsx(
        "tr.xlsx",
        {"S": [["UPN", "License", None, None], ["a@contoso.com", "SPE_E3"], [], ["b@contoso.com", "EMS"], [], []]},
    )
    # Formatting far away makes the used range larger without values (as Excel files often do).
    wb = openpyxl.load_workbook(p)
    wb["S"]["H40"].number_format = "0.00"
    wb["S"]["H40"].value = ""
    wb.save(p)
    s = read_sheet(p)
    assert s.headers == ("UPN", "License")
    assert [r.number for r in s.rows] == [2, 4]
    assert s.blank_rows == 1


def test_duplicate_and_blank_headers(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    rows = [["Email", "License", "Email", None, "email", "Note"], ["a@contoso.com", "SPE_E3", "x@y", "v", "z", "n"]]
    s = read_sheet(write_xlsx("dup.xlsx", {"S": rows}))
    assert s.headers == ("Email", "License", "Email (2)", "Column 4", "email (3)", "Note")
    assert s.columns[Role.USER] == 0


def test_sheet_selection(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    sheets = {
        "Cover": [],
        "Wave 1": [["UPN", "License"], ["a@contoso.com", "SPE_E3"]],
        "Wave 2": [["UPN", "License"], ["b@contoso.com", "EMS"], ["c@contoso.com", "EMS"]],
    }
    p = write_xlsx("multi.xlsx", sheets)
    first = read_sheet(p)
    assert first.sheet_name == "Wave 1"
    assert (
        "read sheet 'Wave 1', the first with a header row; the workbook also has 'Cover', 'Wave 2' "
        "(choose with --sheet)" in first.notes
    )
    assert read_sheet(p, sheet="Wave 2").rows[1].cells == ("c@contoso.com", "EMS")
    assert read_sheet(p, sheet="wave 2").sheet_name == "Wave 2"  # case-insensitive when unambiguous
    with pytest.raises(ColumnError) as e:
        read_sheet(p, sheet="Wave 3")
    assert str(e.value) == (
        f"{p}: There is no sheet named 'Wave 3'. The sheets are: 'Cover', 'Wave 1', 'Wave 2'. "
        "Give --sheet one of these names."
    )
    with pytest.raises(EmptySheetError) as e2:
        read_sheet(p, sheet="Cover")
    assert (
        str(e2.value) == f"{p}: The sheet 'Cover' is empty. Pick the sheet with the data: 'Cover', 'Wave 1', 'Wave 2'."
    )


def test_hidden_sheet_skipped_by_default(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    sheets = {"Lookup": [["Code", "Name"], ["DE", "Germany"]], "Data": [["UPN", "License"], ["a@contoso.com", "EMS"]]}
    p = write_xlsx("hid.xlsx", sheets, hidden=["Lookup"])
    assert read_sheet(p).sheet_name == "Data"


def test_workbook_without_data(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    p = write_xlsx("none.xlsx", {"A": [], "B": []})
    with pytest.raises(EmptySheetError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: No sheet in the workbook has any data. "
        "Check that this is the right file and that it was saved after the data was entered."
    )


def test_numbers_as_text_and_long_cell_xlsx(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    long = "y" * 32767  # Excel's cell limit
    rows = [["UPN", "License", "Employee no", "Note"], ["a@contoso.com", "SPE_E3", "000123", long]]
    s = read_sheet(write_xlsx("txt.xlsx", {"S": rows}))
    assert s.rows[0].cells[2] == "000123"
    assert len(s.rows[0].cells[3]) == 32767


def test_fifty_columns_xlsx(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    headers = [f"F{i}" for i in range(47)] + ["Action", "UPN", "License"]
    rows = [headers] + [[f"v{i}" for i in range(47)] + ["remove", f"u{n}@contoso.com", "EMS"] for n in range(5)]
    s = read_sheet(write_xlsx("wide.xlsx", {"S": rows}))
    assert len(s.headers) == 50
    assert {r.action for r in parse_requests(s)} == {"remove"}


def test_ods(tmp_path: Path) -> None:
    p = build_ods(tmp_path / "in.ods", [["Licences"], [], ["Mail", "Licence"], ["a@contoso.com", "SPE_E3"]])
    s = read_sheet(p)
    assert (s.format, s.sheet_name, s.header_row) == ("ods", "Sheet1", 3)
    assert s.rows[0].cells == ("a@contoso.com", "SPE_E3")


def test_password_protected_workbook(tmp_path: Path) -> None:
    p = tmp_path / "locked.xlsx"
    p.write_bytes(build_encrypted_xlsx_bytes())
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The workbook is password-protected (encrypted), so it cannot be read. "
        "Open it in Excel, clear the password (File > Info > Protect Workbook > Encrypt with Password) "
        "and save an unprotected copy, then give that copy."
    )


def test_binary_junk_named_xlsx(tmp_path: Path) -> None:
    p = tmp_path / "junk.xlsx"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The file is not an Excel workbook: it does not start like one (.xlsx files are ZIP archives). "
        "Open it in Excel and save it again as .xlsx; if it is really a CSV file, rename it to .csv."
    )


def test_csv_text_named_xlsx_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "renamed.xlsx"
    p.write_text("UPN,License\na@contoso.com,EMS\n", encoding="utf-8")
    with pytest.raises(SheetReadError, match=r"rename it to \.csv"):
        read_sheet(p)


def test_corrupt_zip(write_xlsx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = write_xlsx("good.xlsx", {"S": [["UPN", "License"], ["a@contoso.com", "EMS"]]}).read_bytes()
    p = tmp_path / "truncated.xlsx"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The workbook is damaged: its ZIP archive cannot be opened. "
        "Open it in Excel and save it again, or export it once more."
    )


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    p = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The file is a ZIP archive but not a workbook: it has no xl/workbook.xml (nor an ODS content.xml). "
        "Give the .xlsx file itself (not a .zip of it), or open it in Excel and save it again as .xlsx."
    )


def test_ole2_file_that_is_not_a_workbook(tmp_path: Path) -> None:
    p = tmp_path / "old.xls"
    p.write_bytes(build_cfb([("WordDocument", b"not a workbook")]))
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The file is an Office document but not an Excel workbook: it has no Workbook stream. "
        "Check that this is the right file; a workbook is saved as .xlsx (or .xls) from Excel."
    )


FIXTURES = Path(__file__).parent / "fixtures"


def test_legacy_xls_fixture() -> None:
    # fixtures/legacy.xls: written once with xlwt 1.3.0 (BIFF8), committed (5.6 KB).
    p = FIXTURES / "legacy.xls"
    s = read_sheet(p)
    assert (s.format, s.sheet_name, s.header_row) == ("xls", "Wave 1", 4)
    assert s.headers == ("User Principal Name", "Licence", "Usage location", "Start date", "Priority")
    assert [r.number for r in s.rows] == [5, 6]
    assert s.rows[0].cells == ("jörg@contoso.com", "SPE_E3", "DE", "2024-05-01", "1")
    reqs = parse_requests(s)
    assert [(r.row_number, r.sku, r.usage_location, r.priority) for r in reqs] == [
        (5, "SPE_E3", "DE", 1),
        (6, "SPE_E3", "FR", 2),
        (6, "POWER_BI_PRO", "FR", 2),
    ]
    with pytest.raises(ColumnError) as e:
        read_sheet(p, sheet="Wave 2")
    assert e.value.message == "There is no sheet named 'Wave 2'. The sheets are: 'Wave 1', 'Empty'."


def test_encrypted_workbook_with_unparsable_directory(tmp_path: Path) -> None:
    # Directory pointer broken: the parse finds nothing, the stream name in the bytes still gives it away.
    data = bytearray(build_encrypted_xlsx_bytes())
    data[0x30:0x34] = (0x7FFF).to_bytes(4, "little")
    p = tmp_path / "locked2.xlsx"
    p.write_bytes(bytes(data))
    with pytest.raises(SheetReadError, match="password-protected"):
        read_sheet(p)


def test_instructions_sheet_before_the_data(write_xlsx) -> None:  # type: ignore[no-untyped-def]
    sheets = {
        "Read me": [["How to fill in this workbook"], ["One row per user; licenses by skuPartNumber."]],
        "Users": [["Staff", "Package"], ["a@contoso.com", "SPE_E3"]],
        "Licenses": [["UPN", "License"], ["b@contoso.com", "EMS"]],
    }
    p = write_xlsx("instr.xlsx", sheets)
    assert read_sheet(p).sheet_name == "Licenses"  # the first whose header names known columns
    # with a --map naming the headers of 'Users', that sheet's header is recognised first
    assert read_sheet(p, column_map={"user": "Staff", "sku": "Package"}).sheet_name == "Users"
    # a sheet with data but no known header is the fallback when no sheet has one
    only = write_xlsx("instr2.xlsx", {"Read me": sheets["Read me"], "Users": sheets["Users"]})
    with pytest.raises(ColumnError) as e:
        read_sheet(only)
    assert str(e.value).startswith(f"{only}: No column names the user in sheet 'Read me'. The headers (row 1) are:")
