"""The command line: options -> library calls -> printing and exit codes. Nothing else lives here.

Exit codes (DESIGN.md): 0 every row applied or unchanged; 1 some rows failed or were skipped; 2 the input or
the command line is unusable (nothing applied); 3 the tenant refused us; 130 interrupted (``resume`` continues).
Library modules are imported inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .config import Settings
    from .jobs import Session

EXIT_OK, EXIT_ROWS, EXIT_INPUT, EXIT_TENANT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Out:
    """Human output to stderr (stdout is kept for --json)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.stream, flush=True)


# --------------------------------------------------------------------------------------------- parser


def _add_target_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--tenant", help="'sandbox' (default when no tenant is configured) or the tenant's domain")
    g.add_argument("--graph-url", help="Graph base URL ending in /v1.0 (env LICENSE_BATCH_GRAPH_URL); a loopback URL "
                   "(a sandbox) is sent LICENSE_BATCH_TOKEN, or the sandbox's development token when it is unset")
    g.add_argument("--powerplatform-url", help="Power Platform base URL (env LICENSE_BATCH_POWERPLATFORM_URL)")
    g.add_argument("--config", help="settings file (default ./license-batch.toml when present)")
    g.add_argument("--cloud", choices=["global", "usgov", "usgov-dod", "china"],
                   help="national cloud: sets the Graph, Power Platform and sign-in hosts (env LICENSE_BATCH_CLOUD)")
    g.add_argument("--auth", choices=["auto", "env", "certificate", "managed-identity", "azure-cli", "device-code"],
                   help="how to sign in to a real tenant (default auto: env, managed identity, Azure CLI; "
                        "env LICENSE_BATCH_AUTH)")  # fmt: skip


def _add_sheet_options(p: argparse.ArgumentParser, *, file_optional: bool = False) -> None:
    p.add_argument("file", nargs="?" if file_optional else None,
                   help="the sheet: .csv, .txt, .xlsx, .xlsm, .xls or .ods")
    p.add_argument("--sheet", help="worksheet name (default: every sheet with an input header, as one run)")
    p.add_argument("--kind", choices=["licenses", "groups", "addons"],
                   help="what the sheet changes (default: told from its columns: users and licenses, users and "
                        "groups, or environments and add-ons)")
    p.add_argument("--map", dest="map", help='column map, e.g. "user=Work Email,sku=License"')
    p.add_argument("--map-file", help="a file of role=Header lines (or a TOML [columns] table)")
    p.add_argument("--product-list", help="Microsoft's product list CSV (default: the cached copy)")
    p.add_argument(
        "--on-shortfall",
        choices=["stop", "partial"],
        default="stop",
        help="a SKU (or add-on) short: stop the wave (default), or apply rows in priority order until it runs out",
    )
    p.add_argument("--reserve", default="0",
                   help="seats (add-on units) to keep free per SKU (add-on): N or N%% (default 0)")
    p.add_argument("--report-dir", help="where run folders go (default ./reports)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")


def _add_via_group_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--via-group", metavar="NAME",
                   help="give the license through membership of this licensing group (20 users per write) to "
                   "rows that add exactly what it gives; the users inherit the license from the group")


def _add_wait_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait-processing", type=float, default=None, metavar="SECONDS",
                   help="after group membership writes, wait at most this long for Entra to process the members' "
                   "licenses (default 300); rows still pending say so, and 'status RUN_ID' looks again later")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="license-batch",
        description="Apply Microsoft 365 licenses and Power Platform add-on allocations from spreadsheets: "
        "validate, plan, apply, resume.",
    )
    parser.add_argument("--version", action="version", version=f"license-batch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check every row against the tenant and its capacity; change nothing")
    _add_sheet_options(p)
    _add_target_options(p)

    p = sub.add_parser("plan", help="show exactly what apply would do (same as apply --dry-run)")
    _add_sheet_options(p)
    _add_target_options(p)
    _add_via_group_option(p)
    p.add_argument("--out", help="also write the plan as a file to review and approve (and the workbook beside it)")

    p = sub.add_parser("apply", help="validate, plan and apply a sheet; write the result workbook")
    _add_sheet_options(p, file_optional=True)
    _add_target_options(p)
    p.add_argument("--plan", help="apply exactly this approved plan file (refused when anything changed since)")
    p.add_argument("--approved-by", help="who approved the plan (recorded in the journal and run.json)")
    p.add_argument("--dry-run", action="store_true", help="validate and plan only; send nothing")
    p.add_argument("--strict", action="store_true", help="refuse the whole sheet when any row has an error")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation on a real tenant")
    _add_via_group_option(p)
    _add_wait_option(p)
    p.add_argument("--preflight", choices=["auto", "always", "never"], default=None,
                   help="check the identity's permissions before changing anything (auto: real tenants only)")

    p = sub.add_parser("resume", help="finish an interrupted run without doing anything twice")
    p.add_argument("run_id", help="the run id printed by apply (a folder under the report dir)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation on a real tenant")
    _add_wait_option(p)
    p.add_argument("--report-dir", help="where run folders go (default ./reports)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")
    _add_target_options(p)

    p = sub.add_parser("status", help="read again how group licensing ended for a run's rows; send nothing")
    p.add_argument("run_id", help="the run id printed by apply (a folder under the report dir)")
    p.add_argument("--report-dir", help="where run folders go (default ./reports)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")
    p.add_argument("--wait-processing", type=float, default=0.0, metavar="SECONDS",
                   help="keep looking this long while members are still being processed (default 0: look once)")
    _add_target_options(p)

    p = sub.add_parser(
        "capacity",
        help="seats per SKU and add-on units per currency type: purchased, used, free",
        description="Both sides at a glance from one read of the tenant. Example: license-batch capacity --xlsx "
        "capacity.xlsx. Exit codes: 0 read, 3 the tenant refused us.",
    )
    p.add_argument("--json", action="store_true", help="print one machine-readable object on stdout")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.add_argument("--xlsx", help="also write the table to this Excel file")
    _add_target_options(p)

    from .desired.commands import add_parsers as _add_desired

    _add_desired(sub, _add_target_options)

    p = sub.add_parser("demo", help="seed the sandbox if needed and apply the sample onboarding wave")
    p.add_argument("--report-dir", help="where run folders go (default ./reports)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary object on stdout")

    p = sub.add_parser("products", help="Microsoft's product and service-plan list (friendly names)")
    psub = p.add_subparsers(dest="products_command", metavar="ACTION")
    pr = psub.add_parser("refresh", help="download Microsoft's current list into the local cache")
    pr.add_argument("--from-file", help="copy this CSV into the cache instead of downloading")

    p = sub.add_parser("sandbox", help="the local sandbox tenant: seed it, serve it")
    ssub = p.add_subparsers(dest="sandbox_command", metavar="ACTION")
    si = ssub.add_parser("init", help="seed (or re-seed) a sandbox tenant")
    si.add_argument("--db", help="state file (default .license-batch/sandbox.db)")
    si.add_argument("--users", type=int, default=None, help="number of users (default 500)")
    si.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same tenant")
    ss = ssub.add_parser("serve", help="serve the sandbox until stopped (prints graph-url, powerplatform-url, token)")
    ss.add_argument("--db", help="state file (default .license-batch/sandbox.db; seeded when missing)")
    ss.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1, loopback)")
    ss.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ss.add_argument("--time-scale", type=float, default=None, help="run the quota clock this many times faster")
    su = ssub.add_parser(
        "users",
        help="list the sandbox's users (names for a first sheet), with their licenses",
        description="Example: license-batch sandbox users --filter department=Sales --filter usageLocation=DE. "
        "Keys: department, jobTitle, usageLocation, userType, accountEnabled (equal, any case); upn, mail "
        "(contains); license (holds that part number).",
    )
    su.add_argument("--db", help="state file (default .license-batch/sandbox.db; seeded when missing)")
    su.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                    help="keep users whose KEY is VALUE (repeat: all must hold)")
    su.add_argument("--json", action="store_true", help="print the users as one JSON array on stdout")
    _add_real_tenant_commands(sub)
    _add_examples(parser, sub)
    return parser


# ------------------------------------------------------------------ real tenants: config, whoami, template


def _add_real_tenant_commands(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "config", help="the effective settings and where each came from", formatter_class=fmt,
        description="Print every effective setting and its origin (default, file, env, cli); secrets are never "
                    "shown.\n\nexample:\n  license-batch config show --config ./license-batch.toml\n\n" + EXIT_HELP,
    )  # fmt: skip
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    cs = csub.add_parser("show", help="print the effective settings")
    _add_target_options(cs)
    cs.add_argument("--report-dir", help="where run folders go (default ./reports)")

    p = sub.add_parser(
        "whoami", help="tenant, cloud, signed-in identity and the permissions it has", formatter_class=fmt,
        description="Sign in, read the organization and the identity's permissions (Graph and Power Platform) and "
                    "print them; changes nothing.\n\nexample:\n  license-batch whoami --tenant contoso.onmicrosoft.com"
                    " --auth azure-cli\n\n" + EXIT_HELP,
    )  # fmt: skip
    _add_target_options(p)
    p.add_argument("--json", action="store_true", help="print one machine-readable object on stdout")

    p = sub.add_parser(
        "template", help="write a ready Excel template (users, addons, reconcile)", formatter_class=fmt,
        description="Write an Excel template with notes on each column, an Instructions sheet and drop-down lists."
                    "\n\nexample:\n  license-batch template users -o wave.xlsx --from-tenant\n\n" + EXIT_HELP,
    )  # fmt: skip
    p.add_argument("kind", choices=["users", "addons", "groups", "rules", "reconcile"], help="which sheet")
    p.add_argument("-o", "--output", required=True, help="the .xlsx (or .csv) file to write")
    p.add_argument("--from-tenant", action="store_true",
                   help="fill the drop-downs from the tenant: its SKUs by product name, service plans, environments")
    _add_target_options(p)


EXAMPLES = {
    "validate": 'license-batch validate wave.xlsx --map "user=Work Email,sku=License" --reserve 5%',
    "plan": "license-batch plan wave.xlsx --on-shortfall partial",
    "apply": "license-batch apply wave.xlsx --tenant contoso.onmicrosoft.com --auth env",
    "resume": "license-batch resume 20261202-101500-1a2b",
    "status": "license-batch status 20261202-101500-1a2b --wait-processing 120",
    "demo": "license-batch demo --report-dir ./reports",
    "capacity": "license-batch capacity --xlsx capacity.xlsx",
    "products": "license-batch products refresh --from-file 'Product names and service plan identifiers.csv'",
    "sandbox": "license-batch sandbox init --users 2000 --seed 7",
    "export": "license-batch export users -o today.xlsx --filter department=Sales",
    "reconcile": "license-batch reconcile today.xlsx --scope department=Sales --apply --prune",
    "rollback": "license-batch rollback 20261202-101500-1a2b --dry-run",
}


def _add_examples(parser: argparse.ArgumentParser, sub: Any) -> None:
    """An example and the exit codes under every command's --help (added here, not at each parser); and
    --on-shortfall / --reserve default to the configuration (file, environment), not to a fixed value."""
    for name, p in sub.choices.items():
        dests = {a.dest for a in p._actions}
        if "on_shortfall" in dests:
            p.set_defaults(on_shortfall=None, reserve=None)
        if not p.epilog and name in EXAMPLES:
            p.epilog = f"example:\n  {EXAMPLES[name]}\n\n{EXIT_HELP}"
            p.formatter_class = argparse.RawDescriptionHelpFormatter
    if not parser.epilog:
        parser.epilog = ("example:\n  license-batch validate wave.xlsx && license-batch apply wave.xlsx\n\n"
                         "a real tenant: license-batch whoami --tenant contoso.onmicrosoft.com --auth azure-cli\n\n"
                         + EXIT_HELP)  # fmt: skip
        parser.formatter_class = argparse.RawDescriptionHelpFormatter


EXIT_HELP = ("exit codes: 0 done; 1 some rows failed or were skipped; 2 the input or command line is unusable; "
             "3 the tenant refused us (sign-in, permission, unreachable); 130 interrupted")  # fmt: skip


def _preflight(session: Session, prepared: Any, out: _Out) -> None:
    """apply: check the identity's permissions before anything changes (auto: real tenants only)."""
    from . import jobs

    mode = session.settings.preflight
    if mode == "never" or (mode == "auto" and session.target.is_sandbox):
        return
    ident = jobs.preflight(session, prepared)
    if ident.permissions is None:
        out("Permissions could not be checked before applying: " + "; ".join(ident.notes) + ".")
    else:
        out(f"Permissions checked ({ident.source}): the identity has what this run needs.")


def cmd_config(args: argparse.Namespace, out: _Out) -> int:
    from .config import show_settings

    if args.config_command != "show":
        out("usage: license-batch config show [--config FILE]")
        return EXIT_INPUT
    for line in show_settings(_settings(args)):
        print(line, flush=True)
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace, out: _Out) -> int:
    from . import jobs
    from .preflight import render

    with jobs.open_session(_settings(args)) as session:
        ident = jobs.whoami(session)
        _announce(session, out)
    if args.json:
        _emit_json(ident.as_dict())
    for line in render(ident):
        out(line)
    return EXIT_OK


def cmd_template(args: argparse.Namespace, out: _Out) -> int:
    from . import jobs
    from .templates import write_template

    lists = None
    if args.from_tenant:
        from .templates import lists_from_tenant

        with jobs.open_session(_settings(args)) as session:
            lists = lists_from_tenant(session)
            _announce(session, out)
    path = write_template(args.kind, Path(args.output), lists=lists)
    out(f"Wrote the {args.kind} template to {path}" + (" (drop-downs from the tenant)." if lists else "."))
    return EXIT_OK


# ------------------------------------------------------------------------------------------- handlers


def _settings(args: argparse.Namespace) -> Settings:
    from .config import load_settings, parse_column_map

    cmap: dict[str, str] = {}
    if getattr(args, "map_file", None):
        from .config import read_map_file

        cmap.update(read_map_file(args.map_file))
    if getattr(args, "map", None):
        cmap.update(parse_column_map(args.map))
    cli = {k: v for k, v in (("on_shortfall", getattr(args, "on_shortfall", None)),
                             ("reserve", getattr(args, "reserve", None)),
                             ("tenant.preflight", getattr(args, "preflight", None))) if v is not None}  # fmt: skip
    settings = load_settings(
        config_file=getattr(args, "config", None),
        tenant=getattr(args, "tenant", None),
        graph_url=getattr(args, "graph_url", None),
        powerplatform_url=getattr(args, "powerplatform_url", None),
        report_dir=getattr(args, "report_dir", None),
        column_map=cmap,
        product_list=getattr(args, "product_list", None),
        cloud=getattr(args, "cloud", None),
        auth=getattr(args, "auth", None),
        cli=cli,
    )
    # the file and the environment give the defaults of these two options
    if hasattr(args, "on_shortfall"):
        args.on_shortfall = settings.on_shortfall
    if hasattr(args, "reserve"):
        args.reserve = settings.reserve
    return settings


def _emit_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _announce(session: Session, out: _Out) -> None:
    """The effective target, one line, before anything is changed."""
    if session.sandbox_note:
        out(session.sandbox_note)
    elif not getattr(session, "_announced", False):
        out(session.target.describe())
    session._announced = True  # type: ignore[attr-defined]


def _check(args: argparse.Namespace, out: _Out, *, with_plan: bool, strict: bool = False) -> int:
    """validate (with_plan False) and plan / apply --dry-run (True): read, snapshot, validate[, plan]; report."""
    from . import _render, jobs

    settings = _settings(args)
    opts = {"sheet": args.sheet, "on_shortfall": args.on_shortfall, "reserve": args.reserve, "kind": args.kind}
    with jobs.open_session(settings) as session:
        if with_plan:
            res: jobs.PlanRun | jobs.ValidationRun = jobs.plan_file(
                session, args.file, strict=strict, via_group=getattr(args, "via_group", None), **opts)
        else:
            res = jobs.validate_file(session, args.file, **opts)
        _announce(session, out)
    summary = jobs.plan_summary(res) if isinstance(res, jobs.PlanRun) else jobs.validation_summary(res)
    if args.json:
        _emit_json(summary)
    lines = _render.render_plan(res) if isinstance(res, jobs.PlanRun) else _render.render_validation(res)
    for line in lines:
        out(line)
    if isinstance(res, jobs.PlanRun) and getattr(args, "out", None):
        from .desired.commands import write_approvable_plan

        write_approvable_plan(res, args, out)
    short = any(c["short"] for c in summary["capacity"])
    return EXIT_OK if summary["errors"] == 0 and not short else EXIT_ROWS


def cmd_validate(args: argparse.Namespace, out: _Out) -> int:
    return _check(args, out, with_plan=False)


def cmd_plan(args: argparse.Namespace, out: _Out) -> int:
    return _check(args, out, with_plan=True)


def _confirm_real_tenant(name: str, out: _Out) -> bool:
    if not sys.stdin.isatty():
        out(f"This would change the real tenant {name}. Re-run with --yes to confirm without a prompt.")
        return False
    out(f"About to change licenses in the tenant {name}.")
    typed = input(f"Type the tenant's domain ({name}) to continue: ").strip()
    return typed.lower() == name.lower()


def cmd_apply(args: argparse.Namespace, out: _Out) -> int:
    from . import _render, jobs

    if args.plan:
        from .desired.commands import apply_plan

        return apply_plan(args, out)
    if args.file is None:
        out("error: apply needs a FILE, or --plan PLAN.")
        return EXIT_INPUT
    if args.dry_run:
        return _check(args, out, with_plan=True, strict=args.strict)
    settings = _settings(args)
    with jobs.open_session(settings) as session:
        prepared = jobs.plan_file(
            session,
            args.file,
            sheet=args.sheet,
            on_shortfall=args.on_shortfall,
            reserve=args.reserve,
            strict=args.strict,
            kind=args.kind,
            via_group=args.via_group,
        )
        _announce(session, out)
        for line in _render.render_plan(prepared, brief=True):
            out(line)
        _preflight(session, prepared, out)
        if not session.target.is_sandbox and not args.yes and not _confirm_real_tenant(session.target.name, out):
            out("Nothing was applied.")
            return EXIT_INPUT
        progress = _render.ProgressPrinter(out.stream)
        result = jobs.execute(session, prepared, argv=args.argv_seen, progress=progress,
                              processing_wait_s=args.wait_processing)
    return _finish(result, args, out)


def cmd_resume(args: argparse.Namespace, out: _Out) -> int:
    from . import _render, jobs

    settings = _settings(args)
    with jobs.open_session(settings) as session:
        if not session.target.embedded_sandbox:
            _announce(session, out)
        if not session.target.is_sandbox and not args.yes and not _confirm_real_tenant(session.target.name, out):
            out("Nothing was sent.")
            return EXIT_INPUT
        progress = _render.ProgressPrinter(out.stream)
        # the built-in sandbox's line comes from resume_run, once connected and before any progress
        result = jobs.resume_run(session, args.run_id, argv=args.argv_seen, progress=progress, say=out,
                                 processing_wait_s=args.wait_processing)
    return _finish(result, args, out)


def cmd_status(args: argparse.Namespace, out: _Out) -> int:
    from . import _render, jobs

    settings = _settings(args)
    with jobs.open_session(settings) as session:
        progress = _render.ProgressPrinter(out.stream)
        result = jobs.status_run(session, args.run_id, argv=args.argv_seen, progress=progress,
                                 processing_wait_s=args.wait_processing)
        _announce(session, out)
    return _finish(result, args, out)


def cmd_demo(args: argparse.Namespace, out: _Out) -> int:
    from . import _render, jobs

    settings = _settings(args)
    progress = _render.ProgressPrinter(out.stream)
    wave, addons = jobs.demo(settings, argv=args.argv_seen, progress=progress, say=out)
    if args.json:
        summary = jobs.run_summary(wave)
        summary["addons"] = jobs.run_summary(addons)
        _emit_json(summary)
    codes = []
    for result in (wave, addons):
        for line in _render.render_run(result):
            out(line)
        codes.append(_exit_for(result))
    if not _render.changed_anything(wave) and not _render.changed_anything(addons):
        failed = sum(1 for r in (*wave.rows, *addons.rows) if r.status.value == "failed")
        again = f", except {failed} row{'' if failed == 1 else 's'} the tenant refused again" if failed else ""
        out(f"The sandbox already holds these samples{again}. Reset it with 'license-batch sandbox init' to see "
            "them applied again.")
    # The samples fail and skip rows on purpose, and the exit code says so, as for any run (README).
    return max(codes)


def _finish(result: Any, args: argparse.Namespace, out: _Out) -> int:
    from . import _render, jobs

    summary = jobs.run_summary(result)
    if getattr(args, "json", False):
        _emit_json(summary)
    for line in _render.render_run(result):
        out(line)
    return _exit_for(result)


def _exit_for(result: Any) -> int:
    from . import jobs

    summary = jobs.run_summary(result)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary["skipped"] + summary["failed"] + summary["not_run"] == 0 else EXIT_ROWS


def cmd_capacity(args: argparse.Namespace, out: _Out) -> int:
    from . import _render, jobs

    settings = _settings(args)
    with jobs.open_session(settings) as session:
        report = jobs.capacity(session)
        _announce(session, out)
    written = jobs.write_capacity(report, csv_path=args.csv, xlsx_path=args.xlsx)
    if args.json:
        _emit_json(report.as_dict())
    for line in _render.render_capacity(report):
        out(line)
    for path in written:
        out(f"Written: {path}")
    return EXIT_OK


def cmd_products(args: argparse.Namespace, out: _Out) -> int:
    from . import jobs

    settings = _settings(args)
    if args.products_command != "refresh":
        out("usage: license-batch products refresh [--from-file CSV]")
        return EXIT_INPUT
    path, count, note = jobs.refresh_products(settings, from_file=args.from_file)
    out(f"Product list cached at {path} ({count} products). {note}")
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace, out: _Out) -> int:
    from . import jobs

    settings = _settings(args)
    db = Path(args.db) if args.db else settings.sandbox.db
    if args.sandbox_command == "init":
        users = args.users if args.users is not None else settings.sandbox.users
        seed = args.seed if args.seed is not None else settings.sandbox.seed
        for line in jobs.sandbox_init(db, users=users, seed=seed):
            out(line)
        return EXIT_OK
    if args.sandbox_command == "serve":
        scale = args.time_scale if args.time_scale is not None else settings.sandbox.time_scale
        jobs.sandbox_serve(db, host=args.host, port=args.port, time_scale=scale, settings=settings)
        return EXIT_OK
    if args.sandbox_command == "users":
        from . import _render

        users = jobs.sandbox_users(db, filters=args.filter, settings=settings)
        if args.json:
            sys.stdout.write(json.dumps(users) + "\n")
        else:
            for line in _render.render_users(users):
                print(line)
        return EXIT_OK
    out("usage: license-batch sandbox {init,serve,users} ...")
    return EXIT_INPUT


HANDLERS: dict[str, Callable[[argparse.Namespace, _Out], int]] = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "resume": cmd_resume,
    "status": cmd_status,
    "demo": cmd_demo,
    "capacity": cmd_capacity,
    "products": cmd_products,
    "sandbox": cmd_sandbox,
    "config": cmd_config,
    "whoami": cmd_whoami,
    "template": cmd_template,
}


def _interrupted_text(args: argparse.Namespace, started: float) -> str:
    """What Ctrl-C outside the engine's own handling means: plainly nothing sent, or which run to resume."""
    if args.command not in ("apply", "resume", "demo") or getattr(args, "dry_run", False):
        return "Interrupted. Nothing was sent to the tenant (this command never changes it)."
    report_dir = Path(getattr(args, "report_dir", None) or os.environ.get("LICENSE_BATCH_REPORT_DIR") or "reports")
    journals = []
    if report_dir.is_dir():
        journals = [p for p in report_dir.glob("*/journal.sqlite") if p.stat().st_mtime >= started - 1]
    if args.command == "resume":
        return (f"Interrupted. The journal is consistent: 'license-batch resume {args.run_id}' continues the run.")
    if not journals:
        return "Interrupted before any run was started: nothing was sent to the tenant."
    run_id = max(journals, key=lambda p: p.stat().st_mtime).parent.name
    return (f"Interrupted. Run {run_id} had started; its journal is consistent and "
            f"'license-batch resume {run_id}' continues it.")
def _explained(handler: Callable[[argparse.Namespace, _Out], int]) -> Callable[[argparse.Namespace, _Out], int]:
    """A 403 while reading a (non-embedded) tenant is re-said as the preflight says it: the missing permission and
    how to grant it (exit 3 either way)."""

    def run(args: argparse.Namespace, out: _Out) -> int:
        from .errors import PermissionDeniedError

        try:
            return handler(args, out)
        except PermissionDeniedError as e:
            settings = _settings(args)
            if settings.target.embedded_sandbox or settings.preflight == "never" or "lacks what" in str(e):
                raise
            from .preflight import explain_refusal

            raise explain_refusal(settings, e) from e

    return run


def _desired_handler(name: str) -> Callable[[argparse.Namespace, _Out], int]:
    def run(args: argparse.Namespace, out: _Out) -> int:
        from .desired.commands import HANDLERS as DESIRED

        return DESIRED[name](args, out)

    return run


for _name in ("validate", "plan", "apply", "resume", "capacity"):
    if _name in HANDLERS:
        HANDLERS[_name] = _explained(HANDLERS[_name])

HANDLERS.update({name: _explained(_desired_handler(name)) for name in ("export", "reconcile", "rollback")})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What run.json and the journal record: the command line as the user gave it (argv when called as a library)
    args.argv_seen = list(sys.argv) if argv is None else ["license-batch", *argv]
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    out = _Out()
    started = time.time()
    from .errors import InputError, JournalError, LicenseBatchError, OutputError, TenantError

    try:
        return HANDLERS[args.command](args, out)
    except KeyboardInterrupt:
        out(_interrupted_text(args, started))
        return EXIT_INTERRUPTED
    except OutputError as e:
        out(f"error: {e}")
        return EXIT_ROWS if e.after_apply else EXIT_INPUT
    except (InputError, JournalError) as e:
        out(f"error: {e}", *(["Nothing was applied."] if isinstance(e, InputError) else []))
        return EXIT_INPUT
    except TenantError as e:
        rid = f" (request-id {e.request_id})" if e.request_id else ""
        out(f"error: {e}{rid}")
        return EXIT_TENANT
    except LicenseBatchError as e:  # pragma: no cover - every subclass is handled above
        out(f"error: {e}")
        return EXIT_INPUT
    except BrokenPipeError:  # e.g. `license-batch ... --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # a bug: say so plainly; the traceback on request
        if os.environ.get("LICENSE_BATCH_DEBUG"):
            raise
        out(
            f"error: unexpected {type(e).__name__}: {e}. This is a bug in license-batch; run again with "
            "LICENSE_BATCH_DEBUG=1 for the details. If apply had started a run, its journal is consistent and "
            "'license-batch resume <run-id>' continues it."
        )
        return EXIT_INPUT


def run() -> None:  # pragma: no cover - the console script; tests call main()
    """``license-batch``: ``main()``, then exit without the interpreter's last garbage collection over what the
    command built. Everything is freed with the process; that collection would only walk it (a 500,000-user
    reconcile leaves ~1.5 million objects: 1.7 s of exit, measured with bench/export.py's tenant)."""
    code = main()
    import gc

    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
