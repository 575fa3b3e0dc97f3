"""The notebook interface: DataFrames in, DataFrames out.

    import batch.desired.notebook as nb
    from batch.config import load_settings
    from batch import jobs

    with jobs.open_session(load_settings()) as s:
        today = nb.export_users(s, department="Sales")          # DataFrame, the export layout
        wanted = today[today.skuPartNumber != "STANDARDPACK"]   # edit it like any frame
        nb.validate(s, wanted).frame                             # one line per request: status, finding
        nb.plan(s, wanted).frame                                 # one line per operation
        rec = nb.reconcile(s, wanted, scope="department=Sales")  # rec.drift: DataFrame
        nb.results(nb.apply(s, wanted))                          # one line per input row: columns + outcome

A DataFrame given instead of a file is read in memory (``batch.sheets.frame``; nothing is written to disk) like
any sheet: same column recognition, same checks. Messages, the journal and run.json call it ``<DataFrame>`` and
record the hash of its cells, so a resumed run or an approved plan notices a changed frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..jobs import PlanRun, Session, ValidationRun
    from ..models import RunResult
    from ..sheets import Source
    from .reconcile import Reconciliation


@dataclass
class Framed:
    """A library result with its DataFrame view."""

    run: Any
    frame: pd.DataFrame


def validate(session: Session, source: Source, **options: Any) -> Framed:
    from ..jobs import validate_file

    res: ValidationRun = validate_file(session, source, **options)
    return Framed(res, validation_frame(res))


def plan(session: Session, source: Source, **options: Any) -> Framed:
    from ..jobs import plan_file

    res: PlanRun = plan_file(session, source, **options)
    return Framed(res, plan_frame(res))


def apply(session: Session, source: Source, **options: Any) -> RunResult:
    from ..jobs import execute, plan_file

    return execute(session, plan_file(session, source, **options))


def reconcile(session: Session, source: Source, **options: Any) -> Reconciliation:
    from .reconcile import reconcile as run

    return run(session, source, **options)


def export_users(session: Session, *, department: str | None = None, sku: str | None = None,
                 group: str | None = None, filters: Sequence[str] = ()) -> pd.DataFrame:
    """``filters``: ``ATTRIBUTE=VALUE`` texts (``jobTitle=Engineer``), ANDed, as ``export --filter``."""
    from .export import UserFilter, users_frame

    return users_frame(session.tenant, UserFilter.parse(filters, department=department, sku=sku, group=group))


def export_addons(session: Session) -> pd.DataFrame:
    from .export import addons_frame

    return addons_frame(session.tenant)


def validation_frame(res: Any) -> pd.DataFrame:
    """One line per checked request: row, status, the main finding."""
    import pandas as pd

    out = []
    for c in res.validation.requests:
        f = next(iter(c.findings), None)
        out.append({"row": c.request.row_number, "status": str(c.status), "code": f.code if f else "",
                    "message": f.message if f else ""})
    return pd.DataFrame(out, columns=["row", "status", "code", "message"])


def plan_frame(res: Any) -> pd.DataFrame:
    """One line per operation, in send order."""
    import pandas as pd

    rows = [{"target": op.target, "kind": str(op.kind), "method": op.method, "url": op.url, "body": dict(op.body),
             "rows": [r + 0 for r in op.rows]} for op in res.plan.operations]
    return pd.DataFrame(rows, columns=["target", "kind", "method", "url", "body", "rows"])


def results(result: RunResult) -> pd.DataFrame:
    """One line per input row, in input order: the row's own columns, then its outcome."""
    import pandas as pd

    by_index = {r.index: r for sh in result.sheets for r in sh.rows}
    headers = list(result.sheet.headers)
    out = []
    for rr in result.rows:
        cells = by_index[rr.row].cells if rr.row in by_index else ()
        line: dict[str, Any] = dict(zip(headers, cells, strict=False))
        line.update({"status": str(rr.status), "action": rr.action, "code": rr.code, "message": rr.message,
                     "before": rr.before, "after": rr.after, "request_id": rr.request_id})
        out.append(line)
    return pd.DataFrame(out)
