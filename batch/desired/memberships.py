"""The membership writes of a reconcile: one set per group, whichever drift asked for them.

Two kinds of drift are fixed by adding users to groups or taking them out: the license rows' group drift
(``group_drift``: a license the sheet expects through a group that no group gives, or a license a group gives
that the sheet does not ask for) and the membership sheets (``membership_drift``). Both go through one
:class:`Memberships`, so a group gets one run of ``PATCH members@odata.bind`` writes (20 users each; keys
``{groupId}/addMembers/{n}`` numbered once per group) and one ``DELETE .../members/{userId}/$ref`` per group
and user, however many rows asked for it.

Seats ("what fixing the drift does to capacity") are counted per user, so none is counted twice: an add takes
a seat of each SKU the group gives that the user neither holds nor gains from another add; a removal frees a
seat of each SKU the user holds only through groups they are being taken out of (not directly).

A removal is never planned when the group also gives a license the sheet asks this user for and the user
would lose it (:meth:`Memberships.removal_conflict`), nor when a membership sheet keeps the user in the group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import RowFinding, Severity
from ..models import Group, Operation, RequestStatus, TenantSnapshot

CONFLICT_FIX = "resolve the conflict between the sheets"


@dataclass
class _Cancel:
    """What to undo on the drift report when a planned removal is called off."""

    line: dict[str, Any]
    checked: Any  # CheckedGroup
    idle: str  # what the line says when nothing is sent
    notes: list[str]  # the row's Drift cell texts
    at: int  # this line's among them


@dataclass
class Memberships:
    snap: TenantSnapshot
    seats: dict[str, list[int]]  # the builder's pools: skuId -> [seats taken, seats freed]
    prunable: dict[str, int]  # the builder's: skuId -> seats --prune would also free
    groups: dict[str, Group] = field(default_factory=dict)  # id -> the group with its licenses (as read)
    adds: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # group id -> user id -> rows
    removes: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    _desired: list[Any] = field(default_factory=list)  # the licenses sheets' desired frames
    _wanted: dict[str, dict[str, bool]] | None = None
    kept: dict[tuple[str, str], str] = field(default_factory=dict)  # (gid, uid) a membership sheet keeps -> why
    _gained: dict[str, set[str]] = field(default_factory=dict)  # uid -> skuIds the adds give
    _lost: dict[str, set[str]] = field(default_factory=dict)  # uid -> skuIds the removals take
    _gains: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    _cancel: dict[tuple[str, str], list[_Cancel]] = field(default_factory=dict)
    #: (uid, skuId) of direct assignments the license rows call extra (removed with --prune): leaving the group
    #: then frees the seat, which the direct removal alone does not (counted here, once)
    dropping: set[tuple[str, str]] = field(default_factory=set)

    # ------------------------------------------------------------------------------------------ groups

    def learn(self, groups: Iterable[Group]) -> None:
        """Groups read with their licenses: kept here and in the snapshot (members already read are kept)."""
        for g in groups:
            old = self.snap.groups.get(g.id)
            if g.members is None and old is not None and old.members is not None:
                g = replace(g, members=old.members)
            self.groups[g.id] = g
            self.snap.groups[g.id] = g

    def name(self, gid: str) -> str:
        """The group's display name, quoted (its id when it was not read)."""
        return f"'{self._display(gid)}'"

    def part(self, sku_id: str) -> str:
        s = self.snap.skus.get(sku_id)
        return s.part_number if s else sku_id

    def skus_of(self, gid: str) -> list[str]:
        g = self.groups.get(gid) or self.snap.groups.get(gid)
        return [s for s, _p in g.licenses] if g else []

    # ------------------------------------------------------------------------------------------ conflicts

    def desire(self, frame: Any) -> None:
        """A licenses sheet's desired frame (uid, sku_id, via_group, direct_required): what removals must keep."""
        self._desired.append(frame)
        self._wanted = None

    @property
    def wanted(self) -> dict[str, dict[str, bool]]:
        """uid -> skuId -> True when a licenses sheet asks for it "through a group", False when it just asks (not
        "direct" only). Built on first need: most reconciles plan no removal."""
        if self._wanted is None:
            out: dict[str, dict[str, bool]] = {}
            for f in self._desired:
                f = f[~f["direct_required"]]
                for uid, sid, via in zip(f["uid"].tolist(), f["sku_id"].tolist(), f["via_group"].tolist(),
                                         strict=True):
                    mine = out.setdefault(uid, {})
                    mine[sid] = bool(via) or mine.get(sid, False)
            self._wanted = out
        return self._wanted

    def removal_conflict(self, gid: str, uid: str, *, besides: str = "") -> str:
        """Why the user must not be taken out of the group ("" when they may): a membership sheet keeps them in,
        or the group gives another license the licenses sheet asks for that the user would lose (the sheet says
        "through a group", or the user does not hold it directly)."""
        if (gid, uid) in self.kept:
            return self.kept[(gid, uid)]
        user = self.snap.users.get(uid)
        want = self.wanted.get(uid, {})
        for s in self.skus_of(gid):
            if s == besides or s not in want:
                continue
            if want[s] or user is None or not user.holding(s).direct:
                how = "through a group" if want[s] else "and holds only through groups"
                return f"{self.name(gid)} also gives {self.part(s)}, which the sheet asks this user to hold {how}"
        return ""

    def keep(self, gid: str, uid: str, why: str) -> None:
        """A membership sheet keeps the user in the group: a removal planned from the license rows is called
        off (its drift line becomes advice naming the conflict)."""
        self.kept[(gid, uid)] = why
        users = self.removes.get(gid, {})
        if uid not in users:
            return
        del users[uid]
        if not users:
            del self.removes[gid]
        for c in self._cancel.pop((gid, uid), []):
            detail = f"{c.idle}; left alone: {why}"
            c.line.update(applied=False, detail=detail, fix=CONFLICT_FIX)
            c.notes[c.at] = f"{c.line['kind']}: {detail}"
            c.checked.status = RequestStatus.UNCHANGED
            c.checked.loses = ()
            c.checked.findings = [RowFinding(f"drift-{c.line['kind']}", Severity.WARNING, detail, CONFLICT_FIX,
                                             c.checked.request.row_number, None)]
        self._refree(uid)

    # ------------------------------------------------------------------------------------------ writes

    def add(self, gid: str, uid: str, row: int) -> tuple[str, ...]:
        """Plan the user into the group for ``row``; the SKUs they newly hold (seats taken, counted once)."""
        users = self.adds.setdefault(gid, {})
        if uid in users:
            users[uid].add(row)
            return self._gains[(gid, uid)]
        users[uid] = {row}
        user = self.snap.users.get(uid)
        gained = self._gained.setdefault(uid, set())
        gains: list[str] = []
        for s in self.skus_of(gid):
            if s in gained or (user is not None and user.holding(s).held):
                continue
            gained.add(s)
            gains.append(s)
            self.seats.setdefault(s, [0, 0])[0] += 1
        self._gains[(gid, uid)] = tuple(gains)
        if self._lost.get(uid):  # a removal was to free what this group gives: the user keeps it
            self._refree(uid)
        return self._gains[(gid, uid)]

    def remove(self, gid: str, uid: str, row: int) -> tuple[str, ...]:
        """Plan the user out of the group for ``row``; the SKUs they no longer hold (seats freed)."""
        users = self.removes.setdefault(gid, {})
        users.setdefault(uid, set()).add(row)
        self._refree(uid)
        lost = self._lost.get(uid, set())
        return tuple(s for s in self.skus_of(gid) if s in lost)

    def cancellable(self, gid: str, uid: str, line: dict[str, Any], checked: Any, idle: str, notes: list[str]
                    ) -> None:
        """A removal the license rows asked for, which a membership row may call off (:meth:`keep`): the drift
        line, record and Drift cell text to turn into advice then."""
        self._cancel.setdefault((gid, uid), []).append(_Cancel(line, checked, idle, notes, len(notes) - 1))

    def would_free(self, gid: str, uid: str) -> tuple[str, ...]:
        """The SKUs taking the user out of the group alone would free (for "--prune would free N more")."""
        user = self.snap.users.get(uid)
        if user is None:
            return ()
        out = []
        for s in self.skus_of(gid):
            h = user.holding(s)
            if h.held and (not h.direct or (uid, s) in self.dropping) and set(h.groups) <= {gid}:
                out.append(s)
        return tuple(out)

    def note_prunable(self, gid: str, uid: str) -> None:
        for s in self.would_free(gid, uid):
            self.prunable[s] = self.prunable.get(s, 0) + 1
            self.seats.setdefault(s, [0, 0])

    def _refree(self, uid: str) -> None:
        """Recount the seats the user's removals free."""
        for s in self._lost.pop(uid, set()):
            self.seats[s][1] -= 1
        user = self.snap.users.get(uid)
        if user is None:
            return
        leaving = {gid for gid, users in self.removes.items() if uid in users}
        joining = {s for gid, users in self.adds.items() if uid in users for s in self.skus_of(gid)}
        lost: set[str] = set()
        for gid in leaving:
            for s in self.skus_of(gid):
                h = user.holding(s)
                direct = h.direct and (uid, s) not in self.dropping
                if s in lost or s in joining or not h.held or direct or not set(h.groups) <= leaving:
                    continue
                lost.add(s)
                self.seats.setdefault(s, [0, 0])[1] += 1
        self._lost[uid] = lost

    # ------------------------------------------------------------------------------------------ operations

    def removals(self) -> list[Operation]:
        """One DELETE per group and user (before everything else: the seats they free are on their way back)."""
        from ..kinds.groups.plan import remove_member_op

        return [remove_member_op(gid, self._display(gid), uid, tuple(sorted(rows)))
                for gid, users in self.removes.items() for uid, rows in users.items()]

    def additions(self) -> list[Operation]:
        """Per group, its users in writes of up to 20 (keys ``{gid}/addMembers/0..n``). Not held back for a usage
        location the same run sets: group-based licensing gives a member without one the directory's location
        (Microsoft's docs; the sandbox's ``GROUP_LICENSING_FALLBACK_LOCATION``), so nothing is refused, and one
        write per such user would cost up to 20x the writes of a new-hire wave."""
        from ..kinds.groups.plan import add_members_ops

        ops: list[Operation] = []
        for gid, users in self.adds.items():
            ops.extend(add_members_ops(gid, self._display(gid), [(u, tuple(sorted(r))) for u, r in users.items()]))
        return ops

    def _display(self, gid: str) -> str:
        g = self.groups.get(gid) or self.snap.groups.get(gid)
        return g.display_name if g else gid


__all__ = ["Memberships"]
