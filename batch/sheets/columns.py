"""Which column means what: header scoring, detection, and ``--map`` overrides.

The names themselves, and how one header is matched against them (exact, Entra's bracketed attribute,
without remarks and "Required", through qualifier words), are in ``synonyms``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ColumnError
from ..kinds.addons.names import resolve_addon
from ..models import Role
from .synonyms import SYNONYMS, norm, role_of

__all__ = ["SYNONYMS", "detect_columns", "header_score", "mapped_headers", "norm", "parse_role", "role_of"]


def header_score(cells: Sequence[str], mapped: frozenset[str] = frozenset()) -> int:
    """How much a row looks like the header: known names count 1, headers named in --map count 2."""
    score = 0
    roles: set[Role] = set()
    for c in cells:
        if not c:
            continue
        k = norm(c)
        if k in mapped:
            score += 2
            continue
        hit = role_of(c)
        if hit and hit[0] not in roles:
            roles.add(hit[0])
            score += 1
        elif hit is None and Role.ADDON not in roles and resolve_addon(c) is not None:
            roles.add(Role.ADDON)  # a wide add-on sheet: a column headed by an add-on's name
            score += 1
    return score


def parse_role(name: str, path: str | None = None) -> Role:
    """A role from its value ("user", "from_sku"; also "from-sku", "From SKU")."""
    key = norm(name)
    for r in Role:
        if norm(r.value) == key:
            return r
    raise ColumnError(
        f"--map uses the unknown role '{name}'.",
        path=path,
        fix=f"Roles are: {', '.join(r.value for r in Role)}.",
    )


def mapped_headers(column_map: Mapping[str, str] | None) -> frozenset[str]:
    return frozenset(norm(h) for h in (column_map or {}).values() if h)


def detect_columns(
    headers: Sequence[str],
    column_map: Mapping[str, str] | None,
    path: str | None = None,
) -> tuple[dict[Role, int], list[str]]:
    """role -> column index, and notes about choices made. --map entries override detection."""
    notes: list[str] = []
    columns: dict[Role, int] = {}
    taken: dict[int, Role] = {}
    listed = ", ".join(f"'{h}'" for h in headers)
    for role_name, header in (column_map or {}).items():
        role = parse_role(role_name, path)
        want = norm(header)
        matches = [i for i, h in enumerate(headers) if norm(h) == want] if want else []
        if not matches:
            raise ColumnError(
                f"--map names the column '{header}' for {role.value}, but there is no such header. "
                f"The headers are: {listed}.",
                path=path,
                column=header,
                fix="Correct the header in --map (or in [columns] of license-batch.toml).",
            )
        i = matches[0]
        if i in taken and taken[i] is not role:
            raise ColumnError(
                f"--map gives the column '{headers[i]}' two roles: {taken[i].value} and {role.value}.",
                path=path,
                column=headers[i],
                fix="Map each role to its own column.",
            )
        if len(matches) > 1:
            notes.append(f"several columns are headed '{header}'; using the first for {role.value}")
        columns[role] = i
        taken[i] = role

    best: dict[Role, tuple[int, int]] = {}  # role -> (rank, index)
    also: dict[Role, list[int]] = {}
    for i, h in enumerate(headers):
        if i in taken:
            continue
        hit = role_of(h)
        if hit is None:
            continue
        role, rank = hit
        if role in columns:
            continue
        also.setdefault(role, []).append(i)
        if role not in best or rank < best[role][0]:
            best[role] = (rank, i)
    for role, (_, i) in best.items():
        columns[role] = i
        others = [headers[j] for j in also[role] if j != i]
        if others:
            notes.append(
                f"columns {', '.join(repr(o) for o in others)} also look like the {role.value} column; "
                f"using '{headers[i]}' (choose with --map {role.value}=...)"
            )
    return dict(sorted(columns.items(), key=lambda kv: kv[1])), notes
