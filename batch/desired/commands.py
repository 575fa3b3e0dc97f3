"""The desired-state subcommands of the CLI (export, reconcile, rollback) and the approved-plan options of
plan/apply. Parsers are added by ``batch.cli``; handlers print and return exit codes like the others there."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

AddTarget = Callable[[argparse.ArgumentParser], None]

#: The user attributes --filter and --scope take (``batch.tenant.user_filters``; written out here so --help does
#: not import the tenant package).
ATTRIBUTE_NAMES = ("department, jobTitle, companyName, officeLocation, country, city, state, usageLocation, "
                   "employeeType, userType, accountEnabled")


def add_parsers(sub: Any, add_target: AddTarget) -> None:
    p = sub.add_parser(
        "export", help="write today's licenses (users) or add-on allocations (addons) as a sheet apply/reconcile read",
        description="Writes one row per user and SKU (disabled plans, usage location, department, how it is held), "
        "or one row per environment and add-on; exit 0 once written.")
    p.add_argument("what", choices=["users", "addons"])
    p.add_argument("-o", "--out", required=True, help="the file to write: .csv or .xlsx")
    p.add_argument("--filter", action="append", default=[], metavar="ATTRIBUTE=VALUE",
                   help="users: only users whose attribute equals the value (ignoring case); repeat to require "
                        f"several. Attributes: {ATTRIBUTE_NAMES} (true/false)")
    p.add_argument("--sku", help="users: only this license (part number, skuId or product name)")
    p.add_argument("--group", help="users: only members of this group (display name), including the members of "
                                    "groups nested in it")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")
    add_target(p)

    p = sub.add_parser(
        "reconcile", help="compare a desired-state sheet with the tenant; show the drift, and fix it with --apply",
        description="Without --apply: exit 0 no drift, 1 drift (nothing changes). With --apply: as apply.")
    p.add_argument("file", help="the desired state: an export's layout (users and/or add-ons), .csv or .xlsx")
    p.add_argument("--scope", default="users",
                   help="users (default: the users the sheet names), all, group=NAME (its members, including those "
                        "of groups nested in it) or ATTRIBUTE=VALUE (e.g. department=Sales; attributes: "
                        f"{ATTRIBUTE_NAMES}): users in the scope but not in the sheet should hold nothing")
    p.add_argument("--sku", action="append", default=[],
                   help="the sheet is the desired state of this license only (repeatable; an export made with "
                        "--sku): other licenses users hold are left alone")
    p.add_argument("--apply", action="store_true", help="fix the drift: add what is missing")
    p.add_argument("--prune", action="store_true",
                   help="with --apply, also remove extra licenses, re-enable plans the sheet does not disable, "
                        "lower allocations")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation on a real tenant")
    p.add_argument("--sheet", help="worksheet name")
    p.add_argument("--report-dir", help="where run folders go (default ./reports)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")
    add_target(p)

    p = sub.add_parser(
        "rollback", help="undo what a run applied, from its journal (users, environments and memberships changed "
        "since: left alone)",
        description="Users, environments and group memberships changed since the run are left alone and reported "
        "(exit 1).")
    p.add_argument("run_id", help="the run to undo (a folder under the report dir)")
    p.add_argument("--dry-run", action="store_true", help="show what would be restored; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation on a real tenant")
    p.add_argument("--report-dir", help="where run folders go (default ./reports)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")
    add_target(p)


def cmd_export(args: argparse.Namespace, out: Callable[..., None]) -> int:
    from .. import jobs
    from ..cli import EXIT_OK, _announce, _emit_json, _settings

    settings = _settings(args)
    with jobs.open_session(settings) as session:
        if args.what == "users":
            res = jobs.export_users(session, args.out, filters=args.filter, sku=args.sku, group=args.group)
        else:
            res = jobs.export_addons(session, args.out)
        _announce(session, out)  # type: ignore[arg-type]
    what = f"{res.rows} rows ({res.users} users read)" if args.what == "users" else f"{res.rows} allocations"
    out(f"Exported {what} to {res.path}.")
    if args.json:
        _emit_json({"path": str(res.path), "rows": res.rows, "users": res.users})
    return EXIT_OK


HANDLERS: dict[str, Callable[[argparse.Namespace, Any], int]] = {"export": cmd_export}


def cmd_reconcile(args: argparse.Namespace, out: Callable[..., None]) -> int:
    from .. import jobs
    from ..cli import (
        EXIT_INPUT,
        EXIT_OK,
        EXIT_ROWS,
        _announce,
        _confirm_real_tenant,
        _emit_json,
        _finish,
        _preflight,
        _settings,
    )
    from .reconcile import reconcile
    from .report import capacity_lines, drift_summary, write_drift

    settings = _settings(args)
    with jobs.open_session(settings) as session:
        rec = reconcile(session, args.file, scope=args.scope, prune=args.prune, sheet=args.sheet,
                        skus=args.sku)
        _announce(session, out)  # type: ignore[arg-type]
        write_drift(rec)
        for line in render_drift(rec):
            out(line)
        if not args.apply:
            if args.json:
                _emit_json(drift_summary(rec))
            return EXIT_ROWS if rec.drift_count else EXIT_OK
        if rec.refused:
            out("Nothing was applied: fixing the drift needs more seats than the tenant has free.",
                *capacity_lines(rec))
            return EXIT_ROWS
        if not rec.operations:
            out("Nothing to apply." + ("" if rec.prune else " (Removals need --prune.)"))
            if args.json:
                _emit_json(drift_summary(rec))
            return EXIT_ROWS if rec.drift_count else EXIT_OK
        _preflight(session, rec.prepared, out)  # type: ignore[arg-type]
        if not session.target.is_sandbox and not args.yes and not _confirm_real_tenant(session.target.name,
                                                                                       out):  # type: ignore[arg-type]
            out("Nothing was applied.")
            return EXIT_INPUT
        from .. import _render

        result = jobs.execute(session, rec.prepared, argv=sys.argv, progress=_render.ProgressPrinter(sys.stderr))
    code = _finish(result, args, out)  # type: ignore[arg-type]
    return code


def render_drift(rec: Any, limit: int = 50) -> list[str]:
    from .report import capacity_lines

    d = rec.drift
    scope = f"{rec.scope}, licenses {', '.join(rec.licenses)}" if rec.licenses else str(rec.scope)
    if not len(d):
        return [f"No drift: the tenant matches the sheet (scope {scope})."]
    counts = d["kind"].value_counts()
    lines = [f"Drift (scope {scope}): " + ", ".join(f"{k} {v}" for k, v in counts.items())
             + f". Report: {rec.report}"]
    if not rec.drift_count:
        lines = [f"No drift: the tenant matches the sheet (scope {scope}). Advice only: "
                 f"{len(d)} redundant pack(s). Report: {rec.report}"]
    for r in d.head(limit).itertuples(index=False):
        where = (f"row {r.row} of sheet '{r.sheet}': " if r.sheet else f"row {r.row}: ") if r.row else ""
        what = r.detail if r.target in r.detail else f"{r.target}: {r.detail}"
        lines.append(f"  {r.kind:<17} {where}{what}  [{r.fix}]")
    if len(d) > limit:
        lines.append(f"  ... and {len(d) - limit} more in the report.")
    if not rec.licenses and len(rec.sheet_licenses) == 1 and d["kind"].isin(["extra", "group-unexpected"]).any():
        only = rec.sheet_licenses[0]
        lines.append(f"The sheet names only {only}: if it is the desired state of {only} alone (an export made "
                     f"with --sku {only}), reconcile with --sku {only} and users' other licenses are left alone.")
    cap = capacity_lines(rec)
    if cap:
        lines.append("Capacity if the drift is fixed:")
        lines.extend(f"  {c}" for c in cap)
    return lines


HANDLERS["reconcile"] = cmd_reconcile


def cmd_rollback(args: argparse.Namespace, out: Callable[..., None]) -> int:
    from .. import _render, jobs
    from ..cli import (
        EXIT_INPUT,
        EXIT_OK,
        EXIT_ROWS,
        _announce,
        _confirm_real_tenant,
        _emit_json,
        _finish,
        _preflight,
        _settings,
    )
    from .rollback import plan_rollback

    settings = _settings(args)
    with jobs.open_session(settings) as session:
        rb = plan_rollback(session, args.run_id)
        _announce(session, out)  # type: ignore[arg-type]
        out(f"Rollback of run {args.run_id}: {len(rb.restores)} target(s) to restore, "
            f"{len(rb.changed_since)} changed since the run (left alone).")
        for line in rb.restores[:50]:
            out(f"  restore {line}")
        for name in rb.changed_since[:50]:
            out(f"  changed since the run, left alone: {name}")
        if args.dry_run:
            if args.json:
                _emit_json({"rollback_of": args.run_id, "restore": len(rb.restores),
                            "changed_since_run": rb.changed_since, "operations": len(rb.plan.operations)})
            out("Dry run: nothing was changed.")
            return EXIT_ROWS if rb.changed_since else EXIT_OK
        _preflight(session, rb.prepared, out)  # type: ignore[arg-type]
        if not session.target.is_sandbox and not args.yes and not _confirm_real_tenant(session.target.name,
                                                                                       out):  # type: ignore[arg-type]
            out("Nothing was changed.")
            return EXIT_INPUT
        result = jobs.execute(session, rb.prepared, argv=sys.argv, progress=_render.ProgressPrinter(sys.stderr))
    return _finish(result, args, out)  # type: ignore[arg-type]


HANDLERS["rollback"] = cmd_rollback


def write_approvable_plan(res: Any, args: argparse.Namespace, out: Callable[..., None]) -> None:
    """``plan FILE --out PLAN``: the plan file (and the validation workbook beside it)."""
    from .approved import write_plan_file

    path, digest = write_plan_file(res, _settings_of(args).target.name, args.out)
    out(f"Plan file: {path} (sha256 {digest}); workbook: {path.with_suffix('.xlsx')}.",
        f"Apply exactly this plan with: license-batch apply --plan {path} --approved-by NAME")


def _settings_of(args: argparse.Namespace) -> Any:
    from ..cli import _settings

    return _settings(args)


def apply_plan(args: argparse.Namespace, out: Callable[..., None]) -> int:
    from .. import _render, jobs
    from ..cli import EXIT_INPUT, _announce, _confirm_real_tenant, _finish, _preflight
    from .approved import apply_approved, check_plan

    with jobs.open_session(_settings_of(args)) as session:
        fresh, doc = check_plan(session, args.plan)
        _announce(session, out)  # type: ignore[arg-type]
        out(f"The approved plan {args.plan} (sha256 {doc['hash']}) still holds: {len(fresh.plan.operations)} "
            f"operation(s), approved by {args.approved_by or '(not given)'}.")
        if args.dry_run:
            out("Dry run: nothing was applied.")
            return 0
        _preflight(session, fresh, out)  # type: ignore[arg-type]
        if not session.target.is_sandbox and not args.yes and not _confirm_real_tenant(session.target.name,
                                                                                       out):  # type: ignore[arg-type]
            out("Nothing was applied.")
            return EXIT_INPUT
        result = apply_approved(session, fresh, doc, args.plan, approved_by=args.approved_by, argv=sys.argv,
                                progress=_render.ProgressPrinter(sys.stderr))
    return _finish(result, args, out)  # type: ignore[arg-type]
