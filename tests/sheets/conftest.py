"""Helpers for the sheet-reader tests: files of every awkward kind, written on the fly."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / ".." / "shared" / "reference"
PRODUCT_LIST = REFERENCE / "Product names and service plan identifiers for licensing.csv"


@pytest.fixture
def product_list() -> Path:
    if not PRODUCT_LIST.is_file():
        pytest.skip(f"Microsoft's product list is not at {PRODUCT_LIST} (reference data, not in the repository)")
    return PRODUCT_LIST


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, text: str, encoding: str = "utf-8") -> Path:
        p = tmp_path / name
        p.write_bytes(text.encode(encoding))
        return p

    return write


@pytest.fixture
def write_xlsx(tmp_path: Path) -> Callable[..., Path]:
    """Write a workbook with openpyxl: ``sheets`` maps sheet name -> rows (lists of cell values)."""

    def write(
        name: str,
        sheets: dict[str, Sequence[Sequence[Any]]],
        merges: dict[str, list[str]] | None = None,
        hidden: Sequence[str] = (),
    ) -> Path:
        import openpyxl

        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for title, rows in sheets.items():
            ws = wb.create_sheet(title)
            for r, row in enumerate(rows, start=1):
                for c, value in enumerate(row, start=1):
                    if value is not None:
                        ws.cell(row=r, column=c, value=value)
            for rng in (merges or {}).get(title, []):
                ws.merge_cells(rng)
            if title in hidden:
                ws.sheet_state = "hidden"
        p = tmp_path / name
        wb.save(p)
        return p

    return write


# ---------------------------------------------------------------------------------- OLE2 / CFB files

_FREE, _END, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _dir_entry(
    name: str, kind: int, child: int = _NOSTREAM, right: int = _NOSTREAM, start: int = _END, size: int = 0
) -> bytes:
    raw = (name + "\0").encode("utf-16-le") if name else b""
    return (
        raw.ljust(64, b"\0")
        + struct.pack("<HBB", len(raw), kind, 1)
        + struct.pack("<III", _NOSTREAM, right, child)
        + b"\0" * 16  # CLSID
        + b"\0" * 4  # state bits
        + b"\0" * 16  # creation, modified
        + struct.pack("<IQ", start, size)
    )


def build_cfb(streams: Sequence[tuple[str, bytes]]) -> bytes:
    """A minimal valid OLE2 compound file (v3, 512-byte sectors) holding ``streams`` in the root storage.

    Every stream is padded to at least 4096 bytes so it lives in regular sectors (no mini stream).
    At most 3 streams (one directory sector).
    """
    assert len(streams) <= 3
    datas = [d.ljust(4096, b"\0") for _, d in streams]
    datas = [d + b"\0" * (-len(d) % 512) for d in datas]
    fat: list[int] = [_FATSECT, _END]  # sector 0: FAT, sector 1: directory
    starts: list[int] = []
    for d in datas:
        n = len(d) // 512
        first = len(fat)
        starts.append(first)
        fat.extend(first + i + 1 for i in range(n - 1))
        fat.append(_END)
    assert len(fat) <= 128
    fat.extend([_FREE] * (128 - len(fat)))
    # Directory: root's child is the first stream; the others hang off as right siblings (a valid,
    # if unbalanced, tree when the names are given in CFB order: shorter names first).
    entries = [_dir_entry("Root Entry", 5, child=1 if streams else _NOSTREAM)]
    for i, (name, _) in enumerate(streams):
        right = i + 2 if i + 1 < len(streams) else _NOSTREAM
        entries.append(_dir_entry(name, 2, right=right, start=starts[i], size=len(streams[i][1])))
    while len(entries) < 4:
        entries.append(_dir_entry("", 0))
    header = (
        bytes.fromhex("d0cf11e0a1b11ae1")
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, _END, 0, _END, 0)
        + struct.pack("<I", 0)
        + struct.pack("<108I", *([_FREE] * 108))
    )
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + b"".join(entries) + b"".join(datas)


def build_encrypted_xlsx_bytes() -> bytes:
    """What Excel's "Encrypt with Password" saves: an OLE2 file with EncryptionInfo + EncryptedPackage."""
    info = struct.pack("<HHI", 4, 4, 0x40) + b"<encryption/>"  # agile encryption version header
    package = struct.pack("<Q", 12345) + bytes(range(256)) * 20
    return build_cfb([("EncryptionInfo", info), ("EncryptedPackage", package)])


# ------------------------------------------------------------------------------------------ ODS


def build_ods(path: Path, rows: Sequence[Sequence[str]], sheet: str = "Sheet1") -> Path:
    """A minimal OpenDocument spreadsheet with string cells."""

    def cell(v: str) -> str:
        if v == "":
            return "<table:table-cell/>"
        esc = v.replace("&", "&amp;").replace("<", "&lt;")
        return f'<table:table-cell office:value-type="string"><text:p>{esc}</text:p></table:table-cell>'

    body = "".join("<table:table-row>" + "".join(cell(v) for v in r) + "</table:table-row>" for r in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="{sheet}">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
    return path
