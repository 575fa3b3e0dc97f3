"""CSV corpus: encodings, delimiters, quoting, row numbers, size."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from batch.errors import EmptySheetError, SheetReadError
from batch.models import Role
from batch.sheets import parse_requests, read_sheet

ROWS = "UPN,License\nanna@contoso.com,SPE_E3\nbjörn@contoso.com,Microsoft 365 E5\n"


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16-le"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16-be"),
        ("utf-32-le", codecs.BOM_UTF32_LE, "utf-32-le"),
        ("cp1252", b"", "cp1252"),
        ("utf-16-le", b"", "utf-16-le"),  # no BOM: recognised from the NUL pattern
    ],
)
def test_encodings(tmp_path: Path, encoding: str, bom: bytes, expected: str) -> None:
    p = tmp_path / "in.csv"
    p.write_bytes(bom + ROWS.encode(encoding))
    s = read_sheet(p)
    assert s.encoding == expected
    assert s.delimiter == ","
    assert s.headers == ("UPN", "License")
    assert [r.cells for r in s.rows] == [
        ("anna@contoso.com", "SPE_E3"),
        ("björn@contoso.com", "Microsoft 365 E5"),
    ]
    assert [r.number for r in s.rows] == [2, 3]


def test_cp1252_specials(tmp_path: Path) -> None:
    # € and curly quotes exist only in cp1252 (0x80, 0x93/0x94), not latin-1; the bytes are not UTF-8.
    p = tmp_path / "win.csv"
    p.write_bytes("UPN;License;Note\nzoë@contoso.com;SPE_E3;“50 €”\n".encode("cp1252"))
    s = read_sheet(p)
    assert (s.encoding, s.delimiter) == ("cp1252", ";")
    assert s.rows[0].cells == ("zoë@contoso.com", "SPE_E3", "“50 €”")


def test_excel_unicode_text_is_tab_separated_utf16(tmp_path: Path) -> None:
    # Excel "Save as Unicode Text": UTF-16LE with BOM, tab separated, CRLF line ends.
    p = tmp_path / "unicode.txt"
    p.write_bytes(codecs.BOM_UTF16_LE + "UPN\tLicense\r\nкатя@contoso.com\tSPE_E3\r\n".encode("utf-16-le"))
    s = read_sheet(p)
    assert (s.encoding, s.delimiter, s.format) == ("utf-16-le", "\t", "csv")
    assert s.rows[0].cells == ("катя@contoso.com", "SPE_E3")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    d = delimiter
    text = f"UPN{d}License{d}Usage location\na@contoso.com{d}SPE_E3{d}DE\nb@contoso.com{d}EMS{d}\n"
    p = tmp_path / "in.csv"
    p.write_text(text, encoding="utf-8")
    s = read_sheet(p)
    assert s.delimiter == d
    assert s.headers == ("UPN", "License", "Usage location")
    assert s.rows[1].cells == ("b@contoso.com", "EMS", "")


def test_semicolon_file_with_commas_in_values(tmp_path: Path) -> None:
    # Commas inside names and quoted fields must not make "," win over ";".
    text = (
        "Name;UPN;License\n"
        "Smith, Anna;a@contoso.com;SPE_E3\n"
        'Jones, Bob;b@contoso.com;"Windows 365 Business 16 vCPU, 64 GB, 1 TB"\n'
        "Carla;c@contoso.com;EMS\n"
    )
    p = tmp_path / "semi.csv"
    p.write_text(text, encoding="utf-8")
    s = read_sheet(p)
    assert s.delimiter == ";"
    assert s.rows[1].cells[2] == "Windows 365 Business 16 vCPU, 64 GB, 1 TB"


def test_sep_line_names_the_delimiter_and_is_not_a_row(tmp_path: Path) -> None:
    p = tmp_path / "sep.csv"
    p.write_text("sep=|\nUPN|License\na@contoso.com|SPE_E3\n", encoding="utf-8")
    s = read_sheet(p)
    assert s.delimiter == "|"
    assert s.header_row == 1
    assert s.rows[0].number == 2
    assert any("sep=" in n for n in s.notes)


def test_embedded_newlines_keep_excel_row_numbers(tmp_path: Path) -> None:
    # Record 2 spans three physical lines; Excel shows it as ONE row (row 2), so the next is row 3.
    text = 'UPN,License,Note\na@contoso.com,"SPE_E3\nEMS","line one\nline two"\nb@contoso.com,EMS,x\n'
    p = tmp_path / "nl.csv"
    p.write_text(text, encoding="utf-8")
    s = read_sheet(p)
    assert [r.number for r in s.rows] == [2, 3]
    assert s.rows[0].cells == ("a@contoso.com", "SPE_E3\nEMS", "line one\nline two")
    reqs = parse_requests(s)
    assert [(r.row_number, r.sku) for r in reqs] == [(2, "SPE_E3"), (2, "EMS"), (3, "EMS")]


def test_crlf_inside_quotes_and_blank_lines(tmp_path: Path) -> None:
    text = 'UPN,License\r\n\r\n"a@contoso.com","SPE_E3\r\nEMS"\r\n\r\n\r\nb@contoso.com,EMS\r\n\r\n\r\n'
    p = tmp_path / "crlf.csv"
    p.write_bytes(text.encode("utf-8"))
    s = read_sheet(p)
    # Blank lines are rows in Excel: header 1, blank 2, record 3, blanks 4-5, record 6; trailing dropped.
    assert [r.number for r in s.rows] == [3, 6]
    assert s.blank_rows == 3
    assert s.rows[0].cells[1] == "SPE_E3\r\nEMS"


def test_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_text('UPN,License\na@contoso.com,"SPE_E3\nb@contoso.com,EMS\nc@contoso.com,EMS\n', encoding="utf-8")
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}, row 2: A quoted field in row 2 is never closed, so the rest of the file would be one cell. "
        'Close the quote, or write a literal quote inside a quoted field as two ("").'
    )


def test_title_rows_above_header(tmp_path: Path) -> None:
    text = (
        "Licence wave 3,,\nPrepared by HR,,\n,,\n"
        "Work Email,Product name,Country\na@contoso.com,Microsoft 365 E3,Germany\n"
    )
    p = tmp_path / "titles.csv"
    p.write_text(text, encoding="utf-8")
    s = read_sheet(p)
    assert s.header_row == 4
    assert s.rows[0].number == 5
    assert s.columns == {Role.USER: 0, Role.SKU: 1, Role.USAGE_LOCATION: 2}
    assert "header found on row 4 below 2 title rows" in s.notes


def test_one_megabyte_cell(tmp_path: Path) -> None:
    big = "x" * 1_000_000
    p = tmp_path / "big.csv"
    p.write_text(f'UPN,License,Note\na@contoso.com,SPE_E3,"{big}"\nb@contoso.com,EMS,{big}\n', encoding="utf-8")
    s = read_sheet(p)
    assert s.delimiter == ","
    assert len(s.rows) == 2
    assert len(s.rows[0].cells[2]) == 1_000_000
    assert len(s.rows[1].cells[2]) == 1_000_000


def test_fifty_columns(tmp_path: Path) -> None:
    headers = [f"Field {i}" for i in range(48)] + ["UPN", "License"]
    rows = [",".join(headers)] + [
        ",".join([f"v{i}" for i in range(48)] + [f"u{n}@contoso.com", "SPE_E3"]) for n in range(3)
    ]
    p = tmp_path / "wide.csv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    s = read_sheet(p)
    assert len(s.headers) == 50
    assert s.columns[Role.USER] == 48 and s.columns[Role.SKU] == 49
    assert s.rows[2].cells[48] == "u2@contoso.com"


def test_ragged_rows_padded_and_extended(tmp_path: Path) -> None:
    p = tmp_path / "ragged.csv"
    p.write_text("UPN,License\na@contoso.com\nb@contoso.com,EMS,extra\n", encoding="utf-8")
    s = read_sheet(p)
    assert s.headers == ("UPN", "License", "Column 3")
    assert s.rows[0].cells == ("a@contoso.com", "", "")
    assert s.rows[1].cells == ("b@contoso.com", "EMS", "extra")


def test_values_trimmed_and_nbsp(tmp_path: Path) -> None:
    p = tmp_path / "sp.csv"
    p.write_text("  UPN  , License \n  a@contoso.com\u00a0,  SPE_E3\t\n", encoding="utf-8")
    s = read_sheet(p)
    assert s.headers == ("UPN", "License")
    assert s.rows[0].cells == ("a@contoso.com", "SPE_E3")


def test_csv_numbers_stay_as_written(tmp_path: Path) -> None:
    p = tmp_path / "n.csv"
    p.write_text("UPN,License,Priority,Cost centre\na@contoso.com,SPE_E3,1.0,00123\n", encoding="utf-8")
    s = read_sheet(p)
    assert s.rows[0].cells == ("a@contoso.com", "SPE_E3", "1.0", "00123")
    assert parse_requests(s)[0].priority == 1


def test_binary_junk_named_csv(tmp_path: Path) -> None:
    p = tmp_path / "junk.csv"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The file is not text: it holds binary data, so it cannot be read as CSV. "
        "If it is a workbook, give it its real extension (.xlsx, .xls or .ods); "
        "otherwise export the sheet again as CSV."
    )


def test_only_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "blank.csv"
    p.write_text("\n ,  ,\n\n", encoding="utf-8")
    with pytest.raises(EmptySheetError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: The file has no data: every row is empty. "
        "Check that this is the right file, and that it was saved after the data was entered."
    )


def test_workbook_named_csv_is_read_as_workbook(tmp_path: Path, write_xlsx) -> None:  # type: ignore[no-untyped-def]
    x = write_xlsx("real.xlsx", {"S": [["UPN", "License"], ["a@contoso.com", "SPE_E3"]]})
    p = tmp_path / "misnamed.csv"
    p.write_bytes(x.read_bytes())
    s = read_sheet(p)
    assert s.format == "xlsx"
    assert "the file is named .csv but is a xlsx workbook; read as xlsx" in s.notes


def test_sha256_of_bytes(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "h.csv"
    p.write_text(ROWS, encoding="utf-8")
    assert read_sheet(p).sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


def test_sheet_option_ignored_for_csv(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_text(ROWS, encoding="utf-8")
    assert "--sheet 'Wave 2' ignored: a CSV file has one sheet" in read_sheet(p, sheet="Wave 2").notes


def test_text_with_odd_extension_is_read_as_csv(tmp_path: Path) -> None:
    p = tmp_path / "export.dat"
    p.write_text(ROWS, encoding="utf-8")
    s = read_sheet(p)
    assert s.format == "csv"
    assert "the file is named .dat but holds text; read as CSV" in s.notes
