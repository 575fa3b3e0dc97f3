"""Report writers: validation.xlsx before a run, results.xlsx / results.csv / run.json after it.

Public API::

    neutralise(value) -> str
    write_validation(validation, run_dir) -> Path                     # run_dir/validation.xlsx
    write_results(result, run_dir, *, meta=None) -> ResultPaths       # results.xlsx, results.csv, run.json
    write_plan(plan, run_dir) -> Path                                 # run_dir/plan.csv
    run_summary(result) -> dict                                       # the CLI's --json; run.json's counts

Layouts are described in :mod:`batch.report.validation` and :mod:`batch.report.results` (run.json keys
there too). Workbooks are streamed with xlsxwriter in ``constant_memory`` mode; every text cell is a string
cell (never a formula, so it needs no prefix); CSV fields go through :func:`neutralise` first.
"""

from __future__ import annotations

from ._text import neutralise, scrub_argv
from .plan import PLAN_HEADERS, write_plan
from .results import RESULT_HEADERS, ResultPaths, run_summary, write_results
from .validation import CAPACITY_HEADERS, VALIDATION_HEADERS, write_validation

__all__ = [
    "CAPACITY_HEADERS",
    "PLAN_HEADERS",
    "RESULT_HEADERS",
    "VALIDATION_HEADERS",
    "ResultPaths",
    "neutralise",
    "run_summary",
    "scrub_argv",
    "write_plan",
    "write_results",
    "write_validation",
]
