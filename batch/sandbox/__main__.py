"""``python -m batch.sandbox init|serve``: the sandbox without the full CLI (benchmarks, scripts).

Configuration comes from ``LICENSE_BATCH_SANDBOX_*`` environment variables (see SandboxConfig).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import SandboxConfig
from .seed import init_tenant
from .server import serve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m batch.sandbox")
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init", help="seed (or reset) a sandbox tenant")
    i.add_argument("--db", type=Path, default=Path(".license-batch/sandbox.db"))
    i.add_argument("--users", type=int, default=500)
    i.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("serve", help="serve a sandbox tenant until interrupted")
    s.add_argument("--db", type=Path, default=Path(".license-batch/sandbox.db"))
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--quiet", action="store_true", help="no request log")
    a = ap.parse_args(argv)
    if a.cmd == "init":
        summary = init_tenant(a.db, users=a.users, seed=a.seed)
        print(
            f"seeded {summary.users} users ({summary.guests} guests), {summary.skus} SKUs, {summary.groups} groups, "
            f"{summary.environments} environments into {summary.db} in {summary.seconds:.1f} s"
        )
        return 0
    log = open("/dev/null", "w") if a.quiet else sys.stdout  # noqa: SIM115 - lives as long as the server
    serve(a.db, SandboxConfig.from_env(), host=a.host, port=a.port, out=sys.stdout, log=log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
