"""Licenses held through groups, in a reconcile: fixed through membership, never by a direct change.

- ``group-missing``: the Held column says the license comes through a group, and no group gives it. ``--apply``
  adds the user to the group(s) the row's Groups column names that exist and assign the SKU; when the cell is
  empty, to the one group of the tenant that assigns it (the detail says so). It stays advice, with the fix,
  when no group or several qualify, when the group's members come from a rule (Graph refuses member writes
  there), or when the user is a member already and the group's license ended in Error for them (no membership
  write helps: the error and its fix are reported, as ``kinds/groups/ops.ERROR_FIXES`` words them).
- ``group-unexpected``: a group gives a license the sheet does not ask for. A removal, so only with
  ``--apply --prune``: the user is taken out of every group that gives it, unless one of them also gives a
  license the sheet asks this user for (or has rule-based membership): then it stays advice naming the conflict.
  A license held directly as well is also ``extra`` (the direct assignment removed with --prune): the seat is
  freed, and counted, by leaving the group (``Memberships.dropping``).

The writes go through the builder's :class:`~batch.desired.memberships.Memberships` (merged with the membership
sheets'); each row fixed this way gets a ``CheckedGroup`` per group, so the run's results read each member's
licensing back as a groups-kind run does (done, pending while Entra processes the group, failed with its error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import RowFinding, Severity
from ..kinds.groups.ops import ERROR_FIXES
from ..kinds.groups.records import CheckedGroup, GroupRequest
from ..models import Action, Group, RequestStatus, Sheet, User
from . import layout
from .memberships import Memberships

if TYPE_CHECKING:
    import pandas as pd

    from ..jobs import Session

GROUP_DRIFT = frozenset({"group-missing", "group-unexpected"})
ADD_FIX = "--apply (group membership)"
REMOVE_FIX = "--apply --prune (group membership)"
NAME_FIX = "name the group that gives {part} in the Groups column"
RULE_FIX = "change the group's rule or the user's attributes so the rule {verb} them"


def groups_column(headers: tuple[str, ...] | list[str]) -> int | None:
    """Index of the export's Groups column (each group that assigns the SKU, with its state), or None."""
    for i, h in enumerate(headers):
        if "".join(ch for ch in h.casefold() if ch.isalnum()) == "groups":
            return i
    return None


def error_fix(code: str, part: str) -> tuple[str, str]:
    """(why, fix) for a group assignment in Error, worded for a reconcile (no run to look at yet)."""
    why, fix = ERROR_FIXES.get(code, ERROR_FIXES["Other"])
    return why.format(sku=part), fix.format(sku=part, run="{run}").replace(
        "run 'license-batch status {run}'", "reconcile again")


class GroupDrift:
    """The group drift of one licenses sheet: reads the groups it needs, says how each line is fixed."""

    def __init__(self, mem: Memberships, session: Session, sheet: Sheet | Sequence[Sheet], desired: pd.DataFrame,
                 diff: pd.DataFrame, *, prune: bool) -> None:
        self.mem = mem
        self.prune = prune
        self._plan: dict[tuple[str, str], tuple[Action, tuple[str, ...], str]] = {}  # -> action, groups, idle
        mem.desire(desired)
        extra = diff[diff["drift"] == "extra"]
        mem.dropping.update(zip(extra["uid"].tolist(), extra["sku_id"].tolist(), strict=True))
        lines = diff[diff["drift"].isin(list(GROUP_DRIFT))]
        self._named: dict[str, list[Group]] = {}
        self._by_sku: dict[str, list[Group]] | None = None
        self._cells: dict[int, str] = {}  # row index -> its Groups cell (the group-missing rows')
        if not len(lines):
            return
        wanted = set(lines.loc[lines["drift"] == "group-missing", "row"].tolist())
        for sh in [sheet] if isinstance(sheet, Sheet) else sheet:  # every licenses sheet: its own Groups column
            gi = groups_column(sh.headers)
            if gi is not None:
                self._cells.update({r.index: r.cells[gi] for r in sh.rows if r.index in wanted and gi < len(r.cells)})
        from ..kinds.groups.read import licensing_groups, read_groups

        graph = session.tenant.graph
        missing = lines[lines["drift"] == "group-missing"]
        names = {n for r in missing["row"].tolist() for n in layout.group_names(self._cells.get(int(r), ""))}
        ids = {g for col in ("groups", "failed_groups") for text in lines[col].tolist() for g in text.split(",") if g}
        found = read_groups(graph, names | ids)
        for gs in found.values():
            mem.learn(gs)
        self._named = {k.casefold(): v for k, v in found.items()}
        if any(not layout.group_names(self._cells.get(int(r), "")) and not f
               for r, f in missing[["row", "failed_groups"]].itertuples(index=False)):
            by_sku: dict[str, list[Group]] = {}
            for g in licensing_groups(graph):
                mem.learn([g])
                for s, _p in g.licenses:
                    by_sku.setdefault(s, []).append(g)
            self._by_sku = by_sku

    # ------------------------------------------------------------------------------------------ describe

    def describe(self, d: Any, user: User, part: str) -> tuple[str, str, bool]:
        """(what differs, how it is fixed, whether this run sends the fix) for a group-missing/-unexpected line."""
        if d.drift == "group-missing":
            return self._missing(d, user, part)
        return self._unexpected(d, user, part)

    def _missing(self, d: Any, user: User, part: str) -> tuple[str, str, bool]:
        head = f"{user.upn} should hold {part} through a group, and no group gives it"
        failed = [g for g in d.failed_groups.split(",") if g]
        if failed:
            gid = failed[0]
            st = next((s for s in user.states if s.sku_id == d.sku_id and s.assigned_by_group == gid), None)
            code = st.error if st is not None and st.error not in ("", "None") else "Other"
            why, fix = error_fix(code, part)
            return (f"{user.upn} should hold {part} through a group: they are a member of {self.mem.name(gid)}, "
                    f"but its {part} is in state Error for them ({code}): {why}", fix, False)
        names = layout.group_names(self._cells.get(int(d.row), ""))
        problems: list[str] = []
        fitting: list[Group] = []
        if names:
            for n in names:
                gs = self._named.get(n.strip().casefold(), [])
                if not gs:
                    problems.append(f"no group '{n}' in the tenant")
                elif len(gs) > 1:
                    problems.append(f"{len(gs)} groups are called '{n}'")
                elif d.sku_id not in {s for s, _p in gs[0].licenses}:
                    problems.append(f"'{gs[0].display_name}' does not give {part}")
                else:
                    fitting.append(gs[0])
            if not fitting:
                return f"{head} ({'; '.join(problems)})", NAME_FIX.format(part=part), False
            how = ""
        else:
            fitting = (self._by_sku or {}).get(d.sku_id, [])
            if not fitting:
                return (f"{head}, and no group of the tenant gives {part}",
                        f"assign {part} to a group and name it in the Groups column", False)
            if len(fitting) > 1:
                which = ", ".join(f"'{g.display_name}'" for g in sorted(fitting, key=lambda g: g.display_name))
                return f"{head}; {len(fitting)} groups give {part} ({which})", NAME_FIX.format(part=part), False
            how = f" (the Groups cell is empty: the only group of the tenant that gives {part})"
        static = [g for g in fitting if not g.dynamic]
        ruled = [g for g in fitting if g.dynamic]
        rule_note = "; ".join(f"'{g.display_name}' has rule-based membership ({g.membership_rule or 'dynamic'})"
                              for g in ruled)
        if not static:
            return f"{head}: {rule_note}", RULE_FIX.format(verb="includes"), False
        self._plan[(d.uid, d.sku_id)] = (Action.ASSIGN, tuple(g.id for g in static), head)
        to = ", ".join(f"'{g.display_name}'" for g in static)
        extra = "".join(f"; {x}" for x in (*problems, *([rule_note] if rule_note else [])))
        return f"{head}: add to {to}{how}{extra}", ADD_FIX, True

    def _unexpected(self, d: Any, user: User, part: str) -> tuple[str, str, bool]:
        gids = [g for g in d.groups.split(",") if g]
        names = ", ".join(self.mem.name(g) for g in gids)
        how = "directly and through" if d.direct else "through"
        head = f"{user.upn} holds {part} {how} group {names}; the sheet does not ask for it"
        for gid in gids:
            g = self.mem.groups.get(gid)
            if g is None:
                return f"{head} (the group could not be read)", f"remove the user from {names}", False
            if g.dynamic:
                return (f"{head}; {self.mem.name(gid)} has rule-based membership ({g.membership_rule or 'dynamic'})",
                        RULE_FIX.format(verb="excludes"), False)
            why = self.mem.removal_conflict(gid, d.uid, besides=d.sku_id)
            if why:
                return (f"{head}; left alone: {why}", f"ask for {part} in the sheet, or give the other license "
                        f"another way than {self.mem.name(gid)}", False)
        if not self.prune:
            for gid in gids:
                self.mem.note_prunable(gid, d.uid)
            return head, f"run with --apply --prune to remove the user from {names}", False
        self._plan[(d.uid, d.sku_id)] = (Action.REMOVE, tuple(gids), head)
        return f"{head}: remove from {names}", REMOVE_FIX, True

    # ------------------------------------------------------------------------------------------ records

    def checked(self, d: Any, row: int, row_number: int, user: User, part: str, line: dict[str, Any],
                notes: list[str]) -> list[CheckedGroup]:
        """The membership writes of a line this run fixes, one CheckedGroup per group (the results read each
        member's licensing back, as for a groups-kind row). ``notes``: the row's Drift cell texts (this line's
        last), changed should a membership sheet call the removal off."""
        action, gids, idle = self._plan[(d.uid, d.sku_id)]
        out = []
        for gid in gids:
            g = self.mem.groups[gid]
            req = GroupRequest(row, row_number, user.upn, g.display_name, action, license=part)
            f = RowFinding(f"drift-{d.drift}", Severity.INFO, line["detail"], "", row_number, None)
            c = CheckedGroup(req, RequestStatus.READY, [f], user_id=d.uid, group_id=gid)
            if action is Action.ASSIGN:
                c.gains = self.mem.add(gid, d.uid, row)
            else:
                c.loses = self.mem.remove(gid, d.uid, row)
                self.mem.cancellable(gid, d.uid, line, c, idle, notes)
            out.append(c)
        return out


__all__ = ["GROUP_DRIFT", "GroupDrift", "error_fix", "groups_column"]
