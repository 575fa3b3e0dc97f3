"""write_validation: validation.xlsx written for real and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.models import CapacityLine, RequestStatus, ShortfallPolicy
from batch.report import CAPACITY_HEADERS, VALIDATION_HEADERS, write_validation
from batch.report._xlsx import STATUS_COLOURS
from batch.report.validation import combine

from .builders import E3, E5, HEADERS, checked, finding, people, validation
from .readback import calamine_rows, fill, load, values

ERR_A = finding("USER_NOT_FOUND", "No user user1@contoso.com.", "Check the address.")
ERR_B = finding("SKU_UNKNOWN", "No license called E7.", "Check the address.")
INFO = finding("ALREADY_ASSIGNED", "Already assigned.", "", severity=finding("x", "y").severity.INFO)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reqs = [
        checked(0, RequestStatus.READY),
        checked(1, RequestStatus.READY),
        checked(1, RequestStatus.ERROR, ERR_A),  # two requests: error wins
        checked(2, RequestStatus.UNCHANGED, INFO),
        checked(2, RequestStatus.OVER_CAPACITY, sku="SPE_E3"),  # over capacity beats unchanged
        checked(3, RequestStatus.UNCHANGED, INFO),
        checked(4, RequestStatus.ERROR, ERR_A),
        checked(4, RequestStatus.ERROR, ERR_B),
        # row 5 gave no request at all
    ]
    return write_validation(validation(people(6), reqs), tmp_path_factory.mktemp("val"))


def test_rows_sheet_one_line_per_input_row(path: Path) -> None:
    wb = load(path)
    assert wb.sheetnames == ["Rows", "Capacity"]
    rows = values(wb["Rows"])
    assert rows[0] == [*HEADERS, *VALIDATION_HEADERS]
    assert [r[: len(HEADERS)] for r in rows[1:]] == [list(p) for p in people(6)]
    assert [r[len(HEADERS)] for r in rows[1:]] == [2, 3, 4, 5, 6, 7]  # the sheet's row number, as a number
    tail = [r[len(HEADERS) + 1 :] for r in rows[1:]]
    assert tail[0] == ["ready", "", "", ""]
    assert tail[1] == ["error", "USER_NOT_FOUND", "No user user1@contoso.com.", "Check the address."]
    assert tail[2][0] == "over capacity"
    assert tail[2][1] == "ALREADY_ASSIGNED"
    assert tail[2][2] == "Already assigned.; Not enough free seats of SPE_E3: see the Capacity sheet."
    assert tail[3] == ["unchanged", "ALREADY_ASSIGNED", "Already assigned.", ""]
    assert tail[4] == [
        "error",
        "USER_NOT_FOUND; SKU_UNKNOWN",
        "No user user1@contoso.com.; No license called E7.",
        "Check the address.",  # the same fix once
    ]
    assert tail[5] == ["", "", "No license request was read from this row.", ""]


def test_status_colours_panes_and_filter(path: Path) -> None:
    ws = load(path)["Rows"]
    col = len(HEADERS) + 2
    for row, st in ((2, "ready"), (3, "error"), (4, "over capacity"), (5, "unchanged")):
        assert fill(ws, row, col) == STATUS_COLOURS[st][0].lstrip("#").upper()
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J7"
    assert ws.column_dimensions["B"].width >= len("user0@contoso.com")


def test_capacity_sheet(path: Path) -> None:
    ws = load(path)["Capacity"]
    rows = values(ws)
    assert rows[0] == list(CAPACITY_HEADERS)
    assert rows[1] == ["licenses", "SPE_E5", "SPE_E5", E5, 12, 10, 1, 1, 4, 1, 3, 2]
    assert rows[2] == ["licenses", "SPE_E3", "SPE_E3", E3, 50, 40, 0, 10, 0, 1, -1, 0]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:L3"
    assert fill(ws, 2, 12) == STATUS_COLOURS["error"][0].lstrip("#").upper()
    assert fill(ws, 3, 12) == STATUS_COLOURS["ready"][0].lstrip("#").upper()
    assert ws.cell(2, 5).data_type == "n"
    assert rows[4][0].startswith("Nothing will be applied: SPE_E5 short and the shortfall policy is 'stop'.")


def test_no_refusal_note_under_partial_policy(tmp_path: Path) -> None:
    v = validation(people(1), [checked(0, RequestStatus.READY)], policy=ShortfallPolicy.PARTIAL)
    assert len(values(load(write_validation(v, tmp_path))["Capacity"])) == 3


def test_calamine_reads_it(path: Path) -> None:
    assert calamine_rows(path, "Rows") == values(load(path)["Rows"])


def test_empty_sheet_and_no_capacity(tmp_path: Path) -> None:
    v = validation([], [], capacity=[CapacityLine(E5, "SPE_E5", 1, 1, 0, 0, 0)][:0])
    wb = load(write_validation(v, tmp_path))
    assert values(wb["Rows"]) == [[*HEADERS, *VALIDATION_HEADERS]]
    assert values(wb["Capacity"]) == [list(CAPACITY_HEADERS)]


def test_combine_worst_status_order() -> None:
    order = [RequestStatus.UNCHANGED, RequestStatus.READY, RequestStatus.OVER_CAPACITY, RequestStatus.ERROR]
    for i, worse in enumerate(order):
        for better in order[:i]:
            assert combine([checked(0, better), checked(0, worse)])[0] == worse.value
            assert combine([checked(0, worse), checked(0, better)])[0] == worse.value
