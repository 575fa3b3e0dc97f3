"""Files that used to crash or mislead: CR-only line endings, NUL padding, very long cells in messages."""

from __future__ import annotations

from pathlib import Path

from batch.errors import shorten
from batch.sheets import parse_requests, read_sheet


def test_cr_only_line_endings(tmp_path: Path) -> None:
    # Excel for Mac's "CSV (Macintosh)": every line ends in a lone CR
    p = tmp_path / "mac.csv"
    p.write_bytes(b"UPN;License;Note\radele@contoso.com;SPE_E3;\"two\rlines\"\r\rmegan@contoso.com;SPE_E5;x\r")
    s = read_sheet(p)
    assert s.delimiter == ";" and s.headers == ("UPN", "License", "Note")
    assert [(r.number, r.cells) for r in s.rows] == [
        (2, ("adele@contoso.com", "SPE_E3", "two\rlines")),
        (4, ("megan@contoso.com", "SPE_E5", "x")),
    ]
    assert s.blank_rows == 1 and s.notes == ["1 blank row between the data rows skipped"]


def test_cr_only_with_a_sep_line(tmp_path: Path) -> None:
    p = tmp_path / "mac.csv"
    p.write_bytes(b"sep=|\rUPN|License\radele@contoso.com|SPE_E3\r")
    s = read_sheet(p)
    assert s.delimiter == "|" and s.header_row == 1
    assert [(r.number, r.cells) for r in s.rows] == [(2, ("adele@contoso.com", "SPE_E3"))]


def test_nul_padding_at_the_end_is_not_a_row(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    body = "".join(f"user{i}@contoso.com,SPE_E3\r\n" for i in range(20_000))
    p.write_bytes(("UPN,License\r\n" + body).encode() + b"\x00" * 65_536)
    s = read_sheet(p)
    assert len(s.rows) == 20_000
    assert s.rows[-1].cells == ("user19999@contoso.com", "SPE_E3") and s.rows[-1].number == 20_001
    assert s.notes == ["NUL bytes padding the end of the file ignored"]
    assert len(parse_requests(s)) == 20_000


def test_nul_padding_after_utf16(tmp_path: Path) -> None:
    p = tmp_path / "unicode.csv"
    p.write_bytes("UPN\tLicense\r\nanna@contoso.com\tSPE_E3\r\n".encode("utf-16") + b"\x00" * 7)
    s = read_sheet(p)
    assert s.encoding == "utf-16-le" and [r.cells for r in s.rows] == [("anna@contoso.com", "SPE_E3")]


def test_shorten() -> None:
    assert shorten("SPE_E3") == "SPE_E3"
    assert shorten("x" * 200) == "x" * 200
    assert shorten("x" * 30_000) == "x" * 200 + "… (30,000 characters)"
    assert shorten("a\x00b\rc", 10) == "a\\x00b\\x0dc"
