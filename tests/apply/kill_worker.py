"""A run of apply in its own process, for the kill test: ``python -m tests.apply.kill_worker ARGS``.

Starts the run when its folder holds no journal (or one a kill left without a plan), else resumes it.
On completion writes ``outcome.json`` (the rows as ``outcome_rows`` gives them) into the run folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from batch.apply import apply, journal_path, resume
from batch.apply.journal import journal_state
from batch.config import Limits, Target
from batch.tenant import Tenant

from .sandbox_util import make_plan, outcome_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graph-url", required=True)
    ap.add_argument("--sheet", required=True, type=Path)
    ap.add_argument("--run-dir", required=True, type=Path)
    ap.add_argument("--limits", required=True, help="JSON of Limits fields")
    a = ap.parse_args()
    limits = Limits(**json.loads(a.limits))
    tenant = Tenant(Target(name="sandbox", graph_url=a.graph_url, powerplatform_url=""), limits)
    with tenant:
        if journal_state(journal_path(a.run_dir)) in ("missing", "empty"):
            plan = make_plan(tenant, a.sheet)
            result = apply(plan, tenant, run_dir=a.run_dir, limits=limits)
        else:
            result = resume(a.run_dir, tenant, limits=limits)
    (a.run_dir / "outcome.json").write_text(json.dumps([list(r) for r in outcome_rows(result)]))
    if result.interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
