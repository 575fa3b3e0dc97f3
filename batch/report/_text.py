"""Text helpers shared by the report writers: formula neutralisation, timestamps (secrets: ``batch._secrets``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from .._secrets import REDACTED, scrub_argv, scrub_text, scrub_value  # noqa: F401 - re-exported

#: First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula (OWASP CSV
#: injection list: ``= + - @``, tab, carriage return), plus line feed and the full-width forms of the four
#: signs, which some East Asian Excel set-ups also evaluate. Belt and braces: they never start real data.
DANGEROUS_FIRST = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def neutralise(value: object) -> str:
    """``value`` as text that no spreadsheet will run as a formula.

    Text whose first character (or first character after leading spaces) is ``= + - @``, a tab, CR or LF
    gets a single quote in front, as OWASP advises against CSV injection; everything else comes back
    unchanged. ``None`` becomes ``""``. The CSV writers use it; the .xlsx writers do not need it (a string
    cell is never run as a formula, so text is written there exactly as it was).

    Input cells are text, so a genuine negative number such as ``-5`` also becomes ``'-5``: the report
    keeps it readable and it was never a number in the input sheet anyway. Already-quoted text
    (``'=A1``) is left as it is, so neutralising twice changes nothing.
    """
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if not s:
        return s
    first = s[0]
    if first in DANGEROUS_FIRST or (first == " " and s.lstrip(" ")[:1] in DANGEROUS_FIRST):
        return "'" + s
    return s


def neutralise_all(values: Iterable[str]) -> list[str]:
    """``neutralise`` over a row of strings, with the common no-op case kept cheap."""
    d = DANGEROUS_FIRST
    return [("'" + v) if v and (v[0] in d or (v[0] == " " and v.lstrip(" ")[:1] in d)) else v for v in values]


def iso_utc(when: datetime | None) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second; naive datetimes are taken to be UTC already."""
    if when is None:
        return ""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_precise(when: datetime | None) -> str | None:
    """Like :func:`iso_utc` but to the millisecond (for run.json); ``None`` stays ``None``."""
    if when is None:
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


