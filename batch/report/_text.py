"""Text helpers shared by the report writers: formula neutralisation, timestamps, secret scrubbing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

#: First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula (OWASP CSV
#: injection list: ``= + - @``, tab, carriage return), plus line feed and the full-width forms of the four
#: signs, which some East Asian Excel set-ups also evaluate. Belt and braces: they never start real data.
DANGEROUS_FIRST = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def neutralise(value: object) -> str:
    """``value`` as text that no spreadsheet will run as a formula.

    Text whose first character (or first character after leading spaces) is ``= + - @``, a tab, CR or LF
    gets a single quote in front, as OWASP advises against CSV injection; everything else comes back
    unchanged. ``None`` becomes ``""``. The same text goes into the .xlsx (always written as a string cell,
    never as a formula) and the .csv, so a sheet copied out of the workbook into a CSV stays safe.

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


# ------------------------------------------------------------------------------------- secrets

REDACTED = "***"

#: Option names whose value is a secret: --token, --client-secret, --password and their kin.
_SECRET_OPTION = re.compile(r"^--?[\w-]*(token|secret|password|passwd|pwd|api[-_]?key)[\w-]*$", re.IGNORECASE)
_SECRET_OPTION_EQ = re.compile(
    r"^(--?[\w-]*(?:token|secret|password|passwd|pwd|api[-_]?key)[\w-]*)=.*$", re.IGNORECASE | re.DOTALL
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+\S+")
#: A JSON Web Token anywhere in a string (three base64url parts, the first one a JSON header).
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_SECRET_KEY = re.compile(r"token|secret|password|passwd|pwd|api[-_]?key|authorization|credential", re.I)


def _scrub_text(s: str) -> str:
    return _JWT.sub(REDACTED, _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", s))


def scrub_argv(argv: Iterable[object]) -> list[str]:
    """The command line with every secret replaced by ``***``.

    Scrubs the value after ``--token``, ``--client-secret``, ``--password`` (and any option whose name
    contains token/secret/password/api-key, in ``--opt value`` and ``--opt=value`` forms), anything after
    ``Bearer``, and anything shaped like a JWT.
    """
    out: list[str] = []
    hide_next = False
    for raw in argv:
        arg = str(raw)
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        m = _SECRET_OPTION_EQ.match(arg)
        if m:
            out.append(f"{m.group(1)}={REDACTED}")
            continue
        if _SECRET_OPTION.match(arg) or arg.strip().lower() in ("bearer", "authorization: bearer"):
            hide_next = True
            out.append(arg)
            continue
        out.append(_scrub_text(arg))
    return out


def scrub_value(value: Any, key: str = "") -> Any:
    """A JSON-able copy of ``value`` with secrets removed: secret-named keys dropped to ``***``, strings
    scrubbed of bearer tokens and JWTs, lists under an ``argv``-like key scrubbed as a command line."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {str(k): scrub_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if key in ("argv", "command_line", "args"):
            return scrub_argv(value)
        return [scrub_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _scrub_text(str(value))
