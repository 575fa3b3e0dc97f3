"""CSV text -> a grid of cells, with the delimiter found by counting fields.

The delimiter is the candidate (``,`` ``;`` tab ``|``) under which the first records most consistently
split into the same number (> 1) of fields; the ``csv`` module does the quote-aware splitting, so a
delimiter inside quotes or a quoted field spanning lines does not mislead the count. An Excel
``sep=;`` first line names the delimiter outright (Excel hides that line, so it is not a row).

Lines may end in LF, CRLF or a lone CR (Excel for Mac's "CSV (Macintosh)"). One record is one row: a quoted
field with line breaks in it does not add rows. Row *n* of the grid
is the row Excel shows as number *n + 1* when it opens the file.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from itertools import islice

CANDIDATES = (",", ";", "\t", "|")
SAMPLE_RECORDS = 50
_FIELD_LIMIT = 1 << 30


def _raise_field_limit() -> None:
    # The csv module refuses fields over 128 KiB by default; a 1 MB cell is legitimate input.
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(min(sys.maxsize, _FIELD_LIMIT))


def detect_delimiter(text: str) -> str:
    """The most plausible delimiter of ``text`` (``,`` when nothing splits)."""
    _raise_field_limit()
    best: tuple[int, int, int] = (0, 0, 0)
    choice = ","
    for rank, d in enumerate(CANDIDATES):
        counts = Counter(
            len(rec)
            for rec in islice(csv.reader(io.StringIO(text, newline=""), delimiter=d), SAMPLE_RECORDS)
            if any(f.strip() for f in rec)
        )
        if not counts:
            continue
        fields, freq = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if fields < 2:
            continue
        score = (freq, fields, -rank)
        if score > best:
            best, choice = score, d
    return choice


def read_csv_text(text: str) -> tuple[list[list[str]], str, list[str]]:
    """(grid, delimiter, notes)."""
    _raise_field_limit()
    notes: list[str] = []
    delimiter: str | None = None
    first_line = io.StringIO(text, newline="").readline()  # ends at LF, CRLF or a lone CR (old Mac files)
    first = first_line.strip()
    if first.lower().startswith("sep=") and len(first) == 5:
        delimiter = first[4]
        text = text[len(first_line) :]
        notes.append(f"delimiter {delimiter!r} taken from the file's 'sep=' line")
    if delimiter is None:
        delimiter = detect_delimiter(text)
    grid = [[f.strip() for f in rec] for rec in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    if grid and text.count('"') % 2 and any("\n" in f or "\r" in f for f in grid[-1]):
        raise UnclosedQuote(len(grid))
    return grid, delimiter, notes


class UnclosedQuote(Exception):
    """A quoted field is never closed: the rest of the file was swallowed into the last record."""

    def __init__(self, row: int) -> None:
        self.row = row
        super().__init__(f"unclosed quote in record {row}")
