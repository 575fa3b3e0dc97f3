"""What kind of file is this? Decided from the bytes, not trusted from the name.

``sniff(data, suffix)`` returns the format to read the bytes as ("csv", "xlsx", "xlsm", "xlsb", "xls",
"ods") or raises a SheetReadError for what cannot be a spreadsheet at all: binary junk under an Excel
name, and password-protected (encrypted) workbooks. Excel saves an encrypted .xlsx as an OLE2 compound
file (CFB) holding ``EncryptionInfo`` and ``EncryptedPackage`` streams instead of a ZIP archive.
"""

from __future__ import annotations

import struct
import zipfile
from io import BytesIO

from ..errors import SheetReadError

ZIP_MAGIC = b"PK\x03\x04"
ZIP_EMPTY_MAGIC = b"PK\x05\x06"
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".xltx", ".xltm"})
TEXT_SUFFIXES = frozenset({".csv", ".txt", ".tsv", ".tab", ".psv"})

DAMAGED_MESSAGE = "The workbook is damaged: its ZIP archive cannot be opened."
DAMAGED_FIX = "Open it in Excel and save it again, or export it once more."
ENCRYPTED_MESSAGE = "The workbook is password-protected (encrypted), so it cannot be read."
ENCRYPTED_FIX = (
    "Open it in Excel, clear the password (File > Info > Protect Workbook > Encrypt with Password) "
    "and save an unprotected copy, then give that copy."
)


def sniff(data: bytes, suffix: str, path: str) -> str:
    """The format of ``data`` (a file named ``*suffix``), or SheetReadError."""
    suffix = suffix.lower()
    if data.startswith((ZIP_MAGIC, ZIP_EMPTY_MAGIC)):
        return _zip_format(data, suffix, path)
    if data.startswith(CFB_MAGIC):
        names = cfb_stream_names(data)
        if is_encrypted_cfb(data, names):
            raise SheetReadError(ENCRYPTED_MESSAGE, path=path, fix=ENCRYPTED_FIX)
        if names and not {"Workbook", "Book"} & set(names) and _utf16("Workbook") not in data:
            raise SheetReadError(
                "The file is an Office document but not an Excel workbook: it has no Workbook stream.",
                path=path,
                fix="Check that this is the right file; a workbook is saved as .xlsx (or .xls) from Excel.",
            )
        return "xls"
    if suffix in EXCEL_SUFFIXES:
        kind = "an OpenDocument spreadsheet" if suffix == ".ods" else "an Excel workbook"
        start = "ZIP archives" if suffix != ".xls" else "OLE2 compound files"
        raise SheetReadError(
            f"The file is not {kind}: it does not start like one ({suffix} files are {start}).",
            path=path,
            fix="Open it in Excel and save it again as .xlsx; if it is really a CSV file, rename it to .csv.",
        )
    return "csv"


#: Office and OpenDocument files that are ZIP archives but not spreadsheets, by a member only they have or
#: by their ``mimetype``.
_OTHER_MEMBERS = {
    "word/document.xml": "a Word document",
    "ppt/presentation.xml": "a PowerPoint presentation",
    "visio/document.xml": "a Visio drawing",
}
_OTHER_MIMETYPES = {
    "application/vnd.oasis.opendocument.text": "an OpenDocument text document",
    "application/vnd.oasis.opendocument.presentation": "an OpenDocument presentation",
    "application/vnd.oasis.opendocument.graphics": "an OpenDocument drawing",
    "application/epub+zip": "an e-book (EPUB)",
}


def _other_document(names: set[str], mimetype: str) -> str | None:
    for member, what in _OTHER_MEMBERS.items():
        if member in names:
            return what
    return _OTHER_MIMETYPES.get(mimetype)


def _zip_format(data: bytes, suffix: str, path: str) -> str:
    """xlsx / xlsm / xlsb / ods from the archive's member names."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        names = set(archive.namelist())
        mimetype = archive.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise SheetReadError(DAMAGED_MESSAGE, path=path, fix=DAMAGED_FIX) from e
    other = _other_document(names, mimetype)
    if other is not None:
        raise SheetReadError(
            f"This is {other}, not a workbook (whatever its name says).",
            path=path,
            fix="Give the spreadsheet itself: open the data in Excel and save it as .xlsx, or export it as CSV.",
        )
    if not names & {"xl/workbook.xml", "xl/workbook.bin", "content.xml"}:
        raise SheetReadError(
            "The file is a ZIP archive but not a workbook: it has no xl/workbook.xml (nor an ODS content.xml).",
            path=path,
            fix="Give the .xlsx file itself (not a .zip of it), or open it in Excel and save it again as .xlsx.",
        )
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "content.xml" in names and "mimetype" in names:
        return "ods"
    if "xl/vbaProject.bin" in names or suffix == ".xlsm":
        return "xlsm"
    return "xlsx"


def cfb_stream_names(data: bytes) -> list[str]:
    """Names of the entries in an OLE2 compound file's directory (best effort; [] if unparsable)."""
    try:
        sector_shift = struct.unpack_from("<H", data, 0x1E)[0]
        size = 1 << sector_shift
        if size not in (512, 4096):
            return []
        first_dir = struct.unpack_from("<I", data, 0x30)[0]
        difat = list(struct.unpack_from("<109I", data, 0x4C))
        fat_sectors = [s for s in difat if s < 0xFFFFFFFA]

        def sector(n: int) -> bytes:
            off = (n + 1) * size
            return data[off : off + size]

        fat: list[int] = []
        for s in fat_sectors:
            chunk = sector(s)
            fat.extend(struct.unpack(f"<{len(chunk) // 4}I", chunk[: len(chunk) // 4 * 4]))
        names: list[str] = []
        seen: set[int] = set()
        cur = first_dir
        while cur < 0xFFFFFFFA and cur not in seen and len(seen) < 10_000:
            seen.add(cur)
            chunk = sector(cur)
            for i in range(0, len(chunk) - 127, 128):
                entry = chunk[i : i + 128]
                n = struct.unpack_from("<H", entry, 0x40)[0]
                if 2 <= n <= 64 and entry[0x42] in (1, 2, 5):
                    names.append(entry[: n - 2].decode("utf-16-le", "replace"))
            cur = fat[cur] if cur < len(fat) else 0xFFFFFFFE
        return names
    except (struct.error, IndexError):
        return []


def is_encrypted_cfb(data: bytes, names: list[str] | None = None) -> bool:
    """True for an OLE2 file holding an encrypted OOXML package (Excel's "Encrypt with Password")."""
    names = cfb_stream_names(data) if names is None else names
    # The directory parse covers the usual layout; the byte search covers directories it cannot follow
    # (e.g. FAT sectors listed beyond the header's 109 DIFAT slots in very large files).
    return "EncryptedPackage" in names or _utf16("EncryptedPackage") in data


def _utf16(name: str) -> bytes:
    return name.encode("utf-16-le")
