"""write_results: results.xlsx, results.csv and run.json written for real and read back."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

import batch
from batch.models import Outcome
from batch.report import RESULT_HEADERS, ResultPaths, run_summary, write_results
from batch.report._xlsx import STATUS_COLOURS

from .builders import HEADERS, STATUSES, outcome, people, run
from .readback import calamine_rows, fill, load, values, zip_names, zip_text

ALL_HEADERS = [*HEADERS, *RESULT_HEADERS]
STATUS = len(HEADERS) + RESULT_HEADERS.index("Status")  # 0-based column of Status
TYPED = {len(HEADERS) + RESULT_HEADERS.index("Row"), len(HEADERS) + RESULT_HEADERS.index("Time")}
ATTENTION = {Outcome.FAILED, Outcome.SKIPPED, Outcome.NOT_RUN}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> ResultPaths:
    meta = {"argv": ["license-batch", "apply", "wave.xlsx", "--token", "tok-123", "--client-secret=cs-456"]}
    return write_results(run(), tmp_path_factory.mktemp("run"), meta=meta)


def test_paths_and_no_leftovers(written: ResultPaths) -> None:
    assert {p.name for p in written.xlsx.parent.iterdir()} == {"results.xlsx", "results.csv", "run.json"}
    assert (written.xlsx.name, written.csv.name, written.json.name) == ("results.xlsx", "results.csv", "run.json")


def test_results_sheet_keeps_every_row_in_order_with_all_columns(written: ResultPaths) -> None:
    wb = load(written.xlsx)
    assert wb.sheetnames == ["Results", "Summary", "Errors"]
    rows = values(wb["Results"])
    assert rows[0] == ALL_HEADERS
    src = people(len(STATUSES))
    assert len(rows) == 1 + len(src)
    for i, (got, inp, st) in enumerate(zip(rows[1:], src, STATUSES, strict=True)):
        assert got[: len(HEADERS)] == list(inp)
        r = dict(zip(RESULT_HEADERS, got[len(HEADERS) :], strict=True))
        assert r["Row"] == i + 2  # the sheet's row number, as a number
        assert r["Status"] == st.value
        assert r["Action"] == "assign SPE_E5"
        if st is Outcome.FAILED:
            assert (r["Error code"], r["Message"], r["Fix"]) == ("CountViolation", "No seats left.", "Free seats.")
        if st in (Outcome.APPLIED, Outcome.FAILED):
            assert r["Request id"] == f"req-{i}"
        if st not in (Outcome.SKIPPED, Outcome.NOT_RUN):
            assert r["Time"] == datetime(2026, 3, 1, 8, 0, i)  # an Excel date-time (UTC)
        assert r["Licenses before"] == "SPE_E3"


def test_every_text_cell_is_a_string_cell_and_no_formulas(written: ResultPaths) -> None:
    wb = load(written.xlsx)
    for ws in (wb["Results"], wb["Errors"]):
        for row in ws.iter_rows(min_row=2):
            for j, c in enumerate(row):
                want = ("d" if j == max(TYPED) else "n") if j in TYPED else "s"
                assert c.value is None or c.data_type == want, (c.coordinate, c.value)
        time_col = len(HEADERS) + RESULT_HEADERS.index("Time") + 1
        assert ws.cell(2, time_col).number_format == "yyyy-mm-dd hh:mm:ss"
    for name in zip_names(written.xlsx):
        if name.startswith("xl/worksheets/sheet"):
            assert "<f>" not in zip_text(written.xlsx, name)


def test_status_colours(written: ResultPaths) -> None:
    ws = load(written.xlsx)["Results"]
    col = STATUS + 1
    for i, st in enumerate(STATUSES, start=2):
        assert fill(ws, i, col) == STATUS_COLOURS[st.value][0].lstrip("#").upper()
    # the five outcomes have five different colours
    assert len({STATUS_COLOURS[o.value][0] for o in Outcome}) == 5


def test_frozen_header_filters_and_widths(written: ResultPaths) -> None:
    wb = load(written.xlsx)
    for name, n in (("Results", len(STATUSES)), ("Errors", sum(s in ATTENTION for s in STATUSES))):
        ws = wb[name]
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:O{n + 1}"
        widths = [ws.column_dimensions[letter].width for letter in "ABCDEFGHIJKLMNO"]
        assert all(8 <= w <= 80 for w in widths), widths
        assert ws.column_dimensions["B"].width >= len("user0@contoso.com")


def test_errors_sheet_has_only_rows_needing_attention(written: ResultPaths) -> None:
    wb = load(written.xlsx)
    results = values(wb["Results"])
    errors = values(wb["Errors"])
    assert errors[0] == ALL_HEADERS
    want = [r for r in results[1:] if r[STATUS] in {"failed", "skipped", "not run"}]
    assert errors[1:] == want
    assert [r[0] for r in errors[1:]] == ["E1002", "E1004", "E1006", "E1008"]
    ws = wb["Errors"]
    assert fill(ws, 2, STATUS + 1) == STATUS_COLOURS["failed"][0].lstrip("#").upper()


def _summary_table(rows: list[list[object]], title: str) -> dict[str, list[object]]:
    start = next(i for i, r in enumerate(rows) if r and r[0] == title)
    out: dict[str, list[object]] = {}
    for r in rows[start + 1 :]:
        if not r or r[0] in ("", None):
            break
        out[str(r[0])] = list(r[1:])
    return out


def test_summary_counts_seats_and_facts(written: ResultPaths) -> None:
    rows = [list(r) for r in load(written.xlsx)["Summary"].iter_rows(values_only=True)]
    counts = _summary_table(rows, "Status")
    assert {k: v[0] for k, v in counts.items()} == {
        "applied": 4,
        "unchanged": 2,
        "skipped": 1,
        "failed": 2,
        "not run": 1,
        "Total": 10,
    }
    # Product names beside part numbers; the SKUs the run touched apart from the others, against purchased.
    changed = _summary_table(rows, "Changed by this run")
    assert changed == {"Microsoft 365 E5": ["SPE_E5", 20, 10, 14, 4]}
    assert _summary_table(rows, "Not changed by this run") == {"Microsoft 365 E3": ["SPE_E3", 50, 40, 40, 0]}
    facts = {r[0]: r[1] for r in rows if r and r[0]}
    assert facts["Duration (s)"] == 95.5
    assert facts["Requests sent"] == 7
    assert facts["Throttled responses"] == 2
    assert facts["Time waiting on throttling (s)"] == 12.5
    assert facts["Interrupted"] == "no"
    assert facts["Tenant"] == "contoso.onmicrosoft.com"
    assert facts["Started (UTC)"] == "2026-03-01T08:00:00Z"


def test_summary_has_a_bar_chart_of_seats(written: ResultPaths) -> None:
    names = zip_names(written.xlsx)
    assert "xl/charts/chart1.xml" in names
    chart = zip_text(written.xlsx, "xl/charts/chart1.xml")
    assert "<c:barChart>" in chart
    # categories are the product names (column A); the series Purchased, Before, After (C, D, E): only the
    # touched SKU's row
    assert "Summary!$A$" in chart and "Summary!$C$" in chart and "Summary!$D$" in chart and "Summary!$E$" in chart
    assert chart.count("<c:ser>") == 3 and "Summary!$B$" not in chart
    assert len(set(re.findall(r"Summary!\$A\$(\d+):\$A\$(\d+)", chart))) == 1
    first, last = re.findall(r"Summary!\$A\$(\d+):\$A\$(\d+)", chart)[0]
    assert first == last  # one SKU touched: one category
    # the chart is drawn on the Summary sheet (the second sheet)
    assert "xl/worksheets/_rels/sheet2.xml.rels" in names
    assert "drawing" in zip_text(written.xlsx, "xl/worksheets/_rels/sheet2.xml.rels")


def test_calamine_reads_the_same_results(written: ResultPaths) -> None:
    cal = calamine_rows(written.xlsx, "Results")
    opx = values(load(written.xlsx)["Results"])
    assert cal == opx


def test_csv_has_bom_same_rows_and_quotes(written: ResultPaths) -> None:
    raw = written.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    typed = values(load(written.xlsx)["Results"])
    as_text = [[(v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else str(v)) for v in r] for r in typed]
    assert rows == as_text  # the same cells; the CSV has text where the xlsx has numbers and date-times
    assert raw.decode("utf-8-sig").splitlines()[0].startswith('"Employee ID","Work Email"')


def test_run_json_keys_values_and_no_secrets(written: ResultPaths) -> None:
    text = written.json.read_text(encoding="utf-8")
    assert "tok-123" not in text and "cs-456" not in text
    info = json.loads(text)
    assert list(info) == [
        "schema",
        "tool",
        "version",
        "run_id",
        "tenant",
        "input",
        "command_line",
        "resumes",
        "started",
        "finished",
        "duration_s",
        "interrupted",
        "rows",
        "counts",
        "needs_attention",
        "requests",
        "throttling",
        "seats",
        "files",
        "extra",
    ]
    assert info["version"] == batch.__version__
    assert info["input"] == {
        "path": "/data/hr/wave.xlsx",
        "sha256": "ab" * 32,
        "format": "xlsx",
        "sheet": "Wave",
        "rows": 10,
    }
    assert info["command_line"] == [
        "license-batch",
        "apply",
        "wave.xlsx",
        "--token",
        "***",
        "--client-secret=***",
    ]
    assert info["counts"] == {"applied": 4, "unchanged": 2, "skipped": 1, "failed": 2, "not_run": 1}
    assert info["needs_attention"] == 4
    assert info["started"] == "2026-03-01T08:00:00.000Z"
    assert info["finished"] == "2026-03-01T08:01:35.500Z"
    assert info["duration_s"] == 95.5
    assert info["requests"] == {"sent": 7}
    assert info["throttling"] == {"throttled_responses": 2, "wait_s": 12.5}
    assert info["seats"] == {"before": {"SPE_E5": 10, "SPE_E3": 40}, "after": {"SPE_E5": 14, "SPE_E3": 40}}
    assert info["files"] == {"results_xlsx": "results.xlsx", "results_csv": "results.csv"}
    assert info["extra"] == {}


def test_one_run_summary_for_the_cli_and_run_json() -> None:
    got = run_summary(run(interrupted=True))
    assert got == {
        "run_id": "run-1",
        "tenant": "contoso.onmicrosoft.com",
        "rows": 10,
        "applied": 4, "unchanged": 2, "skipped": 1, "failed": 2, "not_run": 1,
        "needs_attention": 4,
        "requests": 7,
        "throttled": 2,
        "throttle_wait_s": 12.5,
        "duration_s": 95.5,
        "interrupted": True,
        "already_finished": False,
        "report": "results.xlsx",
    }
    json.dumps(got)  # JSON-able as it is


def test_meta_extras_are_scrubbed(tmp_path: Path) -> None:
    meta = {"argv": "license-batch apply x.csv --password hunter2", "config": "lb.toml", "client_secret": "s"}
    info = json.loads(write_results(run(), tmp_path, meta=meta).json.read_text(encoding="utf-8"))
    assert info["command_line"][-2:] == ["--password", "***"]
    assert info["extra"] == {"config": "lb.toml", "client_secret": "***"}
    assert "hunter2" not in json.dumps(info)


def test_misaligned_result_still_reports_every_input_row(tmp_path: Path) -> None:
    r = run()
    r.rows = [r.rows[3], r.rows[0]]  # out of order and most outcomes missing
    paths = write_results(r, tmp_path, meta={})
    rows = values(load(paths.xlsx)["Results"])
    assert [row[0] for row in rows[1:]] == [f"E{1000 + i}" for i in range(10)]
    status = [row[STATUS] for row in rows[1:]]
    assert status == ["applied", "not run", "not run", "unchanged"] + ["not run"] * 6
    assert rows[2][STATUS + 3] == "No outcome was recorded for this row."
    assert json.loads(paths.json.read_text())["counts"]["not_run"] == 8


def test_outcome_header_clashing_with_an_input_header(tmp_path: Path) -> None:
    r = run()
    r.sheet.headers = ("Employee ID", "Work Email", "Department", "Status", "Message")
    rows = values(load(write_results(r, tmp_path).xlsx)["Results"])
    assert rows[0][:5] == ["Employee ID", "Work Email", "Department", "Status", "Message"]
    assert rows[0][5] == "Row" and rows[0][6] == "Status (result)" and rows[0][9] == "Message (result)"
    assert rows[1][3] == "SPE_E5" and rows[1][5] == 2 and rows[1][6] == "applied"


def test_short_and_long_input_rows_are_padded_to_the_headers(tmp_path: Path) -> None:
    r = run(rows=[("E1", "a@x.com"), ("E2", "b@x.com", "D", "SPE_E5", "n", "EXTRA")], statuses=[Outcome.APPLIED] * 2)
    rows = values(load(write_results(r, tmp_path).xlsx)["Results"])
    assert rows[1][:7] == ["E1", "a@x.com", "", "", "", 2, "applied"]
    assert rows[2][:7] == ["E2", "b@x.com", "D", "SPE_E5", "n", 3, "applied"]


def test_empty_run(tmp_path: Path) -> None:
    r = run(rows=[], statuses=[], seats_before={}, seats_after={})
    paths = write_results(r, tmp_path)
    wb = load(paths.xlsx)
    assert values(wb["Results"]) == [ALL_HEADERS]
    assert values(wb["Errors"]) == [ALL_HEADERS]
    assert "xl/charts/chart1.xml" not in zip_names(paths.xlsx)
    assert json.loads(paths.json.read_text())["rows"] == 0


def test_rewrite_replaces_the_files(tmp_path: Path) -> None:
    write_results(run(), tmp_path)
    paths = write_results(run(statuses=[Outcome.APPLIED]), tmp_path)
    assert len(values(load(paths.xlsx)["Results"])) == 2
    assert not list(tmp_path.glob(".*partial"))


def test_many_rows_stream_in_order(tmp_path: Path) -> None:
    n = 3000
    statuses = [list(Outcome)[i % 5] for i in range(n)]
    r = run(rows=people(n), statuses=statuses)
    r.rows[1234] = outcome(1234, Outcome.FAILED, message=" padded & <tagged> _x0041_ \x07 ")
    paths = write_results(r, tmp_path)
    rows = calamine_rows(paths.xlsx, "Results")
    assert len(rows) == n + 1
    assert [row[1] for row in rows[1:]] == [f"user{i}@contoso.com" for i in range(n)]
    assert rows[1235][STATUS + 3] == " padded & <tagged> _x0041_ \x07 "
    errs = calamine_rows(paths.xlsx, "Errors")
    assert len(errs) == 1 + sum(s in ATTENTION for s in statuses) + (statuses[1234] not in ATTENTION)


def test_summary_notes_rows_beyond_excels_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from batch.report import _xlsx

    monkeypatch.setattr(_xlsx, "EXCEL_MAX_ROWS", 5)  # pretend Excel stops at 5 rows
    rows = [list(r) for r in load(write_results(run(), tmp_path).xlsx)["Summary"].iter_rows(values_only=True)]
    facts = {r[0]: r[1] for r in rows if r and r[0]}
    assert facts["Note"] == "Only the first 4 of 10 rows fit in this workbook; results.csv has them all."
