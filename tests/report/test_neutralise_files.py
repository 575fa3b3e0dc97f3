"""Formula neutralisation in the files themselves: each dangerous prefix, in xlsx and CSV.

In the xlsx a string cell is inert (no spreadsheet runs it as a formula), so the text is written exactly as
it was, with no visible apostrophe; only the CSV, which has no cell types, gets the ``'`` prefix."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl.utils.escape import unescape

from batch.models import Outcome, RequestStatus
from batch.report import RESULT_HEADERS, write_results, write_validation

from .builders import HEADERS, checked, finding, outcome, run, validation
from .readback import calamine_rows, load, zip_names, zip_text

PAYLOADS = [
    '=HYPERLINK("http://evil.example","click")',
    "+41 79 123 45 67",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C calc'!A0",
    "  =1+1",
]
MSG_COL = len(HEADERS) + RESULT_HEADERS.index("Message")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rows = [(f"E{i}", f"u{i}@contoso.com", p, "SPE_E5", p) for i, p in enumerate(PAYLOADS)]
    r = run(rows=rows, statuses=[Outcome.FAILED] * len(rows))
    r.rows = [outcome(i, Outcome.FAILED, message=p) for i, p in enumerate(PAYLOADS)]
    paths = write_results(r, tmp_path_factory.mktemp("neut"))
    return paths.xlsx, paths.csv


@pytest.mark.parametrize("i", range(len(PAYLOADS)), ids=[repr(p[:6]) for p in PAYLOADS])
def test_xlsx_cells_are_plain_string_cells_without_the_apostrophe(files: tuple[Path, Path], i: int) -> None:
    wb = load(files[0])
    for sheet in ("Results", "Errors"):
        ws = wb[sheet]
        for col in (3, 5, MSG_COL + 1):  # input columns Department and Notes, and Message
            cell = ws.cell(i + 2, col)
            # openpyxl leaves OOXML's _xHHHH_ escapes (CR is stored as _x000D_) in inline strings: undo them.
            assert unescape(cell.value) == PAYLOADS[i], (sheet, col)
            assert cell.data_type == "s"
        assert calamine_rows(files[0], sheet)[i + 1][2] == PAYLOADS[i]


@pytest.mark.parametrize("i", range(len(PAYLOADS)), ids=[repr(p[:6]) for p in PAYLOADS])
def test_csv_fields_are_quoted(files: tuple[Path, Path], i: int) -> None:
    rows = list(csv.reader(io.StringIO(files[1].read_bytes().decode("utf-8-sig"), newline="")))
    assert rows[i + 1][2] == "'" + PAYLOADS[i]
    assert rows[i + 1][4] == "'" + PAYLOADS[i]
    assert rows[i + 1][MSG_COL] == "'" + PAYLOADS[i]


def test_no_formula_elements_and_calamine_agrees(files: tuple[Path, Path]) -> None:
    for name in zip_names(files[0]):
        if name.startswith("xl/worksheets/sheet"):
            assert "<f>" not in zip_text(files[0], name)
    cal = calamine_rows(files[0], "Results")
    assert [row[2] for row in cal[1:]] == PAYLOADS


def test_csv_raw_text_starts_each_dangerous_field_with_the_quote(files: tuple[Path, Path]) -> None:
    raw = files[1].read_bytes().decode("utf-8-sig")
    for p in PAYLOADS:
        assert f'"{p}' not in raw.replace(f"\"'{p}", "")  # never a field opening with the bare payload


def test_validation_workbook_has_plain_string_cells_too(tmp_path: Path) -> None:
    rows = [("E1", "=1+1", "@x", "SPE_E5", "-")]
    v = validation(rows, [checked(0, RequestStatus.ERROR, finding("=BAD", "+bad message", "-fix"))])
    path = write_validation(v, tmp_path)
    wb = load(path)
    got = [c.value for c in wb["Rows"][2]]
    assert got == ["E1", "=1+1", "@x", "SPE_E5", "-", 2, "error", "=BAD", "+bad message", "-fix"]
    assert [c.data_type for c in wb["Rows"][2]] == ["s"] * 5 + ["n"] + ["s"] * 4
    for name in zip_names(path):
        if name.startswith("xl/worksheets/sheet"):
            assert "<f>" not in zip_text(path, name)


def test_input_headers_are_strings_in_xlsx_and_neutralised_in_csv(tmp_path: Path) -> None:
    r = run(statuses=[Outcome.APPLIED])
    r.sheet.headers = ("=ID", "Work Email", "Department", "License", "@Notes")
    paths = write_results(r, tmp_path)
    head = [c for c in load(paths.xlsx)["Results"][1]]
    assert head[0].value == "=ID" and head[4].value == "@Notes" and head[0].data_type == "s"
    first = next(csv.reader(io.StringIO(paths.csv.read_bytes().decode("utf-8-sig"), newline="")))
    assert first[0] == "'=ID" and first[4] == "'@Notes"
