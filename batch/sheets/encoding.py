"""Bytes of a text file -> text, and the name of the encoding it was in.

Order: a byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE); then UTF-16 without a BOM when
every other byte is NUL; then UTF-8 if the bytes are valid UTF-8; then Windows-1252, the encoding
Excel uses for "CSV (Comma delimited)" on Western-European Windows. Any other NUL byte means binary.

NUL bytes padding the end of a file (left by some export tools and by files preallocated on disk) are not
text: ``nul_padding`` counts them and ``decode`` drops them, so they never become a row.
"""

from __future__ import annotations

import codecs

from ..errors import SheetReadError

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
)

BINARY_MESSAGE = "The file is not text: it holds binary data, so it cannot be read as CSV."
BINARY_FIX = (
    "If it is a workbook, give it its real extension (.xlsx, .xls or .ods); otherwise export the sheet again as CSV."
)


def nul_padding(data: bytes) -> int:
    """How many NUL bytes pad the end of ``data`` (0 for most files)."""
    return len(data) - len(data.rstrip(b"\x00"))


def decode(data: bytes, path: str) -> tuple[str, str]:
    """(text, encoding name). The BOM is not part of the text, nor NUL padding at the end."""
    pad = nul_padding(data)
    if pad:
        kept = data[: len(data) - pad]
        for bom, name, codec in _BOMS:
            if kept.startswith(bom):
                unit = 4 if "32" in codec else 2 if "16" in codec else 1
                kept = data[: len(kept) + (-len(kept) % unit)]  # the last character's own zero bytes stay
                return _decode(kept, codec, name, path)
        sample = kept[:4096]
        if b"\x00" in sample and len(kept) % 2:
            kept = data[: len(kept) + 1]  # UTF-16 without a BOM: the last code unit's zero byte
        data = kept
    for bom, name, codec in _BOMS:
        if data.startswith(bom):
            return _decode(data, codec, name, path)
    sample = data[:4096]
    if b"\x00" in sample:
        even_nul = sample[0::2].count(0)
        odd_nul = sample[1::2].count(0)
        half = len(sample) // 2 or 1
        if odd_nul > 0.4 * half and even_nul < 0.05 * half:
            return _decode(data, "utf-16-le", "utf-16-le", path)
        if even_nul > 0.4 * half and odd_nul < 0.05 * half:
            return _decode(data, "utf-16-be", "utf-16-be", path)
        raise SheetReadError(BINARY_MESSAGE, path=path, fix=BINARY_FIX)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        # The five bytes cp1252 leaves undefined: Windows maps them to the C1 controls, as latin-1 does.
        return data.decode("latin-1"), "latin-1"


def _decode(data: bytes, codec: str, name: str, path: str) -> tuple[str, str]:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise SheetReadError(
            f"The file says it is {name.upper()} but byte {e.start} is not valid {name.upper()}.",
            path=path,
            fix="Export the sheet again (Excel: Save As > CSV UTF-8).",
        ) from e
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.rstrip("\x00"), name
