"""Keeping secrets out of everything the tool writes: command lines, run.json, the journal, messages.

One place, so the journal and the reports scrub by the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"

#: Option names whose value is a secret: --token, --client-secret, --password and their kin.
_SECRET_WORDS = r"token|secret|password|passwd|pwd|api[-_]?key|credential|assertion"
_SECRET_OPTION = re.compile(rf"^--?[\w-]*({_SECRET_WORDS})[\w-]*$", re.IGNORECASE)
_SECRET_OPTION_EQ = re.compile(rf"^(--?[\w-]*(?:{_SECRET_WORDS})[\w-]*)=.*$", re.IGNORECASE | re.DOTALL)
_BEARER = re.compile(r"(?i)\b(bearer)\s+\S+")
#: A JSON Web Token anywhere in a string (three base64url parts, the first one a JSON header).
_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_SECRET_KEY = re.compile(r"token|secret|password|passwd|pwd|api[-_]?key|authorization|credential", re.I)


def scrub_text(s: str) -> str:
    """``s`` with bearer tokens and JWTs replaced by ``***``."""
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
        out.append(scrub_text(arg))
    return out


def scrub_value(value: Any, key: str = "") -> Any:
    """A JSON-able copy of ``value`` with secrets removed: secret-named keys dropped to ``***``, strings
    scrubbed of bearer tokens and JWTs, lists under an ``argv``-like key scrubbed as a command line."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {str(k): scrub_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if key in ("argv", "command_line", "args"):
            return scrub_argv(value)
        return [scrub_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value))
