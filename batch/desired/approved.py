"""Approved plans: ``plan FILE --out PLAN`` writes a plan a reviewer reads and approves; ``apply --plan PLAN
[--approved-by NAME]`` applies exactly that plan, or refuses it when anything it was made from has changed.

The plan file is JSON (indented, one operation per entry, with a ``summary`` in words first), and the
validation workbook is copied beside it (``PLAN`` with ``.xlsx``). Its ``hash`` is the sha256 of everything
that decides what is sent: the input file's sha256, the options, the tenant, every operation (target, method,
url, body, dependency) and the state of every affected target when the plan was made.

Applying re-checks all of it against a fresh snapshot: the plan file was not edited (hash), the input file is
the same (sha256), the tenant is the same, planning the same input now gives exactly the same operations, and
every affected user, environment or membership is as it was (a group's: the membership of the users its
operations name, read where the fresh plan did not). Any difference refuses the plan (exit 2) with the
differences listed; nothing is sent. The plan's hash and the approver are recorded in the journal (meta
``approved_plan``) before anything is sent, and in run.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..apply.journal import JOURNAL_NAME, Journal
from ..errors import InputError
from ..models import Operation
from .state import read_missing_memberships, state_of, states_of

if TYPE_CHECKING:
    from ..jobs import PlanRun, Session

FORMAT = "license-batch plan"
META_KEY = "approved_plan"


class StalePlanError(InputError):
    """The approved plan no longer describes what applying it would do; ``differences`` says why."""

    def __init__(self, message: str, differences: list[str], *, path: str | None = None) -> None:
        super().__init__(message + "\n" + "".join(f"  - {d}\n" for d in differences), path=path,
                         fix="Make a new plan with 'license-batch plan FILE --out PLAN' and have it approved again.")
        self.differences = differences


def _op_record(op: Operation) -> dict[str, Any]:
    return {"key": op.key, "kind": str(op.kind), "api": str(op.api), "target_id": op.target_id,
            "target": op.target, "method": op.method, "url": op.url, "body": op.body, "depends_on": op.depends_on}


def _canonical(doc: dict[str, Any]) -> bytes:
    decisive = {k: doc[k] for k in ("input", "tenant_id", "operations", "targets")}
    return json.dumps(decisive, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _where(source: Path) -> str:
    """The input as the plan records it: the file's full path, or ``<DataFrame>``."""
    from ..sheets.frame import is_frame_label

    return str(source) if is_frame_label(source) else str(Path(source).resolve())


def plan_document(prepared: PlanRun, tenant_name: str) -> dict[str, Any]:
    from ..plan import describe_operations, describe_seats

    p = prepared.plan
    snap = p.validation.snapshot
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tenant": tenant_name,
        "tenant_id": snap.tenant_id,
        "input": {"path": _where(prepared.source), "sha256": p.validation.sheet.sha256,
                  "options": {k: v for k, v in prepared.options.items() if k != "strict" or v}},
        "summary": [*describe_operations(p), *describe_seats(p)],
        "operations": [_op_record(op) for op in p.operations],
        "targets": {f"{a}:{t}": s for a, t, s in states_of(p.operations, snap)},
    }
    doc["hash"] = hashlib.sha256(_canonical(doc)).hexdigest()
    return doc


def write_plan_file(prepared: PlanRun, tenant_name: str, out: str | Path) -> tuple[Path, str]:
    """Write PLAN (JSON) and the validation workbook beside it; (path, hash)."""
    from ..errors import OutputError

    doc = plan_document(prepared, tenant_name)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        if prepared.report is not None and Path(prepared.report).exists():
            shutil.copyfile(prepared.report, path.with_suffix(".xlsx"))
    except OSError as e:
        raise OutputError(f"{e} Choose another --out.") from e
    return path, str(doc["hash"])


def load_plan_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"Cannot read the plan file: {e}.", path=str(p)) from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError("This is not a license-batch plan file.", path=str(p),
                         fix="Give the file 'license-batch plan FILE --out PLAN' wrote.")
    return doc


def check_plan(session: Session, plan_path: str | Path, *, frame: Any = None) -> tuple[PlanRun, dict[str, Any]]:
    """Re-plan the approved plan's input against a fresh snapshot; the fresh PlanRun when it is exactly the
    approved one, else StalePlanError listing every difference. A plan made from a DataFrame needs that frame
    again (``frame``): its cells' hash must be the one the plan recorded."""
    from ..jobs import plan_file
    from ..sheets.frame import is_frame_label

    doc = load_plan_file(plan_path)
    diffs: list[str] = []
    if hashlib.sha256(_canonical(doc)).hexdigest() != doc.get("hash"):
        raise StalePlanError("The plan file was edited after it was made.", ["its hash does not match its content"],
                             path=str(plan_path))
    src: Any = Path(doc["input"]["path"])
    opts = dict(doc["input"].get("options") or {})
    if is_frame_label(src):
        if frame is None:
            raise InputError("The plan was made from a DataFrame, not a file: there is nothing to read it again from.",
                             path=str(plan_path), fix="Check it from Python with the same DataFrame: "
                             "check_plan(session, PLAN, frame=df), then apply_approved(...).")
        src = frame  # its hash is compared once it is read, below
    elif not src.exists():
        raise StalePlanError("The plan's input file is gone.", [f"{src} does not exist"], path=str(plan_path))
    elif hashlib.sha256(src.read_bytes()).hexdigest() != doc["input"]["sha256"]:
        diffs.append(f"the input file {src} changed since the plan was made (sha256 differs)")
    fresh = plan_file(session, src, sheet=opts.get("sheet"), on_shortfall=opts.get("on_shortfall") or "stop",
                      reserve=opts.get("reserve") or "0", strict=bool(opts.get("strict")),
                      kind=opts.get("kind") or None, via_group=opts.get("via_group") or None)
    if is_frame_label(fresh.source) and fresh.validation.sheet.sha256 != doc["input"]["sha256"]:
        diffs.append("the input DataFrame changed since the plan was made (the sha256 of its cells differs)")
    snap = fresh.plan.validation.snapshot
    if snap.tenant_id != doc["tenant_id"]:
        raise StalePlanError("The plan was made for another tenant.",
                             [f"planned for tenant {doc['tenant_id']}, the target is {snap.tenant_id}"],
                             path=str(plan_path))
    approved = {o["key"]: o for o in doc["operations"]}
    now = {op.key: _op_record(op) for op in fresh.plan.operations}
    for key in approved.keys() - now.keys():
        diffs.append(f"{approved[key]['target']}: {approved[key]['kind']} is no longer needed or possible")
    for key in now.keys() - approved.keys():
        diffs.append(f"{now[key]['target']}: {now[key]['kind']} would now be sent as well")
    for key in approved.keys() & now.keys():
        a, b = approved[key], json.loads(json.dumps(now[key], default=str))
        if a != b:
            diffs.append(f"{a['target']}: {a['kind']} would now send {json.dumps(b['body'], sort_keys=True)} "
                         f"instead of {json.dumps(a['body'], sort_keys=True)}")
    # a group's recorded state names the users whose membership counts: read theirs now where the fresh plan did not
    read_missing_memberships(session.tenant, snap, {tkey.split(":", 1)[1]: list(was["members"])
                                                    for tkey, was in doc["targets"].items() if "members" in was})
    current = {tkey: state_of(tkey.split(":", 1)[0], tkey.split(":", 1)[1], snap, was)
               for tkey, was in doc["targets"].items()}
    parts = {sid: sku.part_number for sid, sku in snap.skus.items()}
    upns = {uid: u.upn for uid, u in snap.users.items()}
    for tkey, was in doc["targets"].items():
        if current[tkey] is not None and current[tkey] != was:
            name = next((o["target"] for o in doc["operations"] if tkey.endswith(":" + o["target_id"])), tkey)
            diff = _state_diff(was, current[tkey] or {}, parts, group=name, upns=upns)
            diffs.append(f"{name} changed since the plan was made: {diff}")
    if diffs:
        raise StalePlanError(f"The approved plan is stale: {len(diffs)} difference(s); nothing was applied.",
                             sorted(diffs), path=str(plan_path))
    return fresh, doc


def _state_diff(was: dict[str, Any], now: dict[str, Any], parts: dict[str, str], *, group: str = "",
                upns: Mapping[str, str] | None = None) -> str:
    """What changed, in words: licenses gained or lost, disabled plans, usage location, allocations; a group's
    members (``group``: its name, ``upns``: user id -> UPN)."""
    out: list[str] = []
    if "members" in was:
        a, b, names = was["members"], now.get("members", {}), upns or {}
        for uid in sorted(a, key=lambda u: names.get(u, u)):
            if uid in b and bool(b[uid]) != bool(a[uid]):
                out.append(f"{names.get(uid, uid)} is {'now' if b[uid] else 'no longer'} a member of '{group}'")
        return "; ".join(out)
    if "allocations" in was or "allocations" in now:
        a, b = was.get("allocations", {}), now.get("allocations", {})
        out += [f"{c} was {a.get(c, 0)}, now {b.get(c, 0)}" for c in sorted(set(a) | set(b))
                if a.get(c, 0) != b.get(c, 0)]
        return "; ".join(out)
    a, b = was.get("direct", {}), now.get("direct", {})
    out += [f"now holds {parts.get(s, s)} directly" for s in b if s not in a]
    out += [f"no longer holds {parts.get(s, s)} directly" for s in a if s not in b]
    out += [f"{parts.get(s, s)}'s disabled plans changed" for s in a if s in b and sorted(a[s]) != sorted(b[s])]
    if was.get("usageLocation") != now.get("usageLocation"):
        old, new = was.get("usageLocation") or "(none)", now.get("usageLocation") or "(none)"
        out.append(f"usage location was {old}, now {new}")
    if not out and sorted(was.get("assigned", ())) != sorted(now.get("assigned", ())):
        out.append("its licenses through groups changed")
    return "; ".join(out)


def apply_approved(session: Session, prepared: PlanRun, doc: dict[str, Any], plan_path: str | Path, *,
                   approved_by: str | None, argv: list[str], progress: Any = None) -> Any:
    """Journal the plan with its hash and approver (before anything is sent), then run it."""
    from .. import apply as engine
    from ..jobs import resume_run

    journal = engine.start(prepared.plan, run_dir=prepared.run_dir, run_id=prepared.run_id, source=prepared.source,
                           argv=argv, tenant_name=session.target.name)
    with journal:
        journal.set_meta(META_KEY, json.dumps({"sha256": doc["hash"], "approved_by": approved_by or "",
                                               "file": str(Path(plan_path).resolve())}))
    return resume_run(session, prepared.run_id, argv=argv, progress=progress)


def approval_of(run_dir: Path) -> dict[str, Any] | None:
    """The approved plan a run applied (hash, approver, file), from its journal; None for other runs."""
    path = run_dir / JOURNAL_NAME
    if not path.exists():
        return None
    with Journal.open(path) as j:
        raw = j.meta(META_KEY)
    return json.loads(raw) if raw else None
