"""StreamSheet.write_text_row's fast path writes exactly the XML xlsxwriter's public API writes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from batch.report import _xlsx

from .readback import calamine_rows

ROWS: list[list[str]] = [
    ["plain", "user@contoso.com", "status", "SPE_E5", "x"],  # every format used once, in column order
    ["plain", "user@contoso.com", "", "SPE_E5", "x"],
    ["R&D", "<b>bold</b>", 'say "hi"', "a > b", "&amp;"],
    ["line\nbreak", "tab\tinside", "", "", ""],
    [" leading", "trailing ", "\u00a0nbsp", "ok", ""],
    ["\ttab first", "ctrl \x01 \x1f", "bell\x07", "", ""],
    ["_x0041_ literal", "_X00ff_", "_x12_", "not_x00_", ""],
    ["\ufffe", "\uffff", "emoji \U0001f600", "日本語", "Ünïcödé"],
    ["a" * 20_000, "", "", "", ""],
    ["b" * 40_000, "", "", "", "end"],
    ["", "", "", "", ""],
    ["", "", "", "", "only last"],
    ["only first", "", "", "", ""],
    ["cr\rinside", "NUL\x00inside", "", "", ""],
]


def _write(path: Path, fast: bool) -> None:
    wb = _xlsx.new_workbook(path)
    fmt = _xlsx.Formats(wb)
    ws = _xlsx.add_sheet(wb, "S")
    ws.fast_path = fast
    _xlsx.write_header(ws, ["A", "B", "C", "D", "E"], fmt.header)
    formats = [None, None, fmt.status["failed"], None, fmt.bold]
    for i, row in enumerate(ROWS, start=1):
        ws.write_text_row(i * 2, row, formats)  # gaps between rows are fine
    _xlsx.finish_table(ws, header_row=0, last_row=len(ROWS) * 2, ncols=5)
    wb.close()


def _sheet_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read("xl/worksheets/sheet1.xml")


def test_fast_and_public_paths_write_identical_xml(tmp_path: Path) -> None:
    _write(tmp_path / "fast.xlsx", True)
    _write(tmp_path / "slow.xlsx", False)
    assert _sheet_xml(tmp_path / "fast.xlsx") == _sheet_xml(tmp_path / "slow.xlsx")


def test_what_is_written_reads_back(tmp_path: Path) -> None:
    _write(tmp_path / "fast.xlsx", True)
    got = calamine_rows(tmp_path / "fast.xlsx", "S")
    for i, row in enumerate(ROWS, start=1):
        want = [v[:32767] for v in row]
        if row[1] == "NUL\x00inside":
            continue  # a NUL cannot be stored in XML; xlsxwriter escapes it and readers differ
        if not any(row):
            continue
        if row[0] == "\ufffe":  # non-characters are stored as _xFFFE_, which calamine leaves as it is
            want[:2] = got[i * 2][:2]
        assert got[i * 2] == want, i


def test_fast_path_is_used_and_detected(tmp_path: Path) -> None:
    wb = _xlsx.new_workbook(tmp_path / "a.xlsx")
    ws = _xlsx.add_sheet(wb, "S")
    ws.write_text_row(1, ["x"], [None])
    assert ws.fast_path is True
    wb.close()
    # Without constant_memory the fast path is off and the public API is used.
    wb2 = xlsxwriter.Workbook(str(tmp_path / "b.xlsx"))
    ws2 = wb2.add_worksheet("S", worksheet_class=_xlsx.StreamSheet)
    assert isinstance(ws2, _xlsx.StreamSheet)
    ws2.write_text_row(1, ["x", "y"], [None, None])
    ws2.write_text_row(0, ["first"], [None])  # allowed there: nothing is streamed
    assert ws2.fast_path is False
    wb2.close()
    assert calamine_rows(tmp_path / "b.xlsx", "S") == [["first", ""], ["x", "y"]]


def test_rows_must_increase(tmp_path: Path) -> None:
    wb = _xlsx.new_workbook(tmp_path / "a.xlsx")
    ws = _xlsx.add_sheet(wb, "S")
    ws.write_text_row(3, ["x"], [None])
    with pytest.raises(ValueError, match="increasing"):
        ws.write_text_row(2, ["y"], [None])
    wb.close()
