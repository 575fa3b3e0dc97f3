"""Reading add-on rows (batch.kinds.addons.rows and names): long and wide sheets, amounts, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.errors import ColumnError
from batch.kinds.addons.names import ADDONS, resolve_addon
from batch.kinds.addons.rows import parse_addon_requests, parse_amount
from batch.models import Kind
from batch.sheets import read_sheet


@pytest.mark.parametrize(
    ("text", "want"),
    [("500", (500, False)), ("+500", (500, True)), ("-200", (-200, True)), ("0", (0, False)),
     ("1,000", (1000, False)), ("+1 000", (1000, True)), ("500.0", (500, False)), ("12.5", (None, False)),
     ("abc", (None, False)), ("", (None, False)), ("--5", (None, False))],
)
def test_parse_amount(text: str, want: tuple[int | None, bool]) -> None:
    assert parse_amount(text) == want


@pytest.mark.parametrize(
    ("text", "currency"),
    [("AI Builder credits", "AI"), ("ai-builder credit", "AI"), ("AI", "AI"), ("app passes", "AppPass"),
     ("Power Apps per app", "AppPass"), ("Power Automate per process", "PowerAutomatePerProcess"),
     ("Copilot credits", "MCSMessages"), ("Copilot Studio messages", "MCSMessages"),
     ("Power Pages authenticated users", "PowerPagesAuthenticated"), ("PAUnattendedRPA", "PAUnattendedRPA"),
     ("flow per business process", "PerFlowPlan")],
)
def test_names_administrators_use(text: str, currency: str) -> None:
    a = resolve_addon(text)
    assert a is not None and a.currency_type == currency


def test_every_currency_type_resolves_to_itself() -> None:
    assert len(ADDONS) == 18
    for a in ADDONS:
        got = resolve_addon(a.currency_type)
        assert got is not None and got.currency_type == a.currency_type
        got = resolve_addon(a.name)
        assert got is not None and got.currency_type == a.currency_type


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "addons.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_long_layout_one_request_per_row(tmp_path: Path) -> None:
    sh = read_sheet(_csv(tmp_path, "Environment,Add-on,Amount,Priority\nProd,AI Builder credits,+500,1\n"
                                   "Dev,app passes,abc,x\n"))
    assert sh.kind is Kind.ADDONS
    a, b = parse_addon_requests(sh)
    assert (a.row_number, a.environment, a.addon, a.amount, a.relative, a.priority) == (2, "Prod",
                                                                                     "AI Builder credits", 500,
                                                                                     True, 1)
    assert [(f.code, f.row, f.column) for f in b.findings] == [("priority-invalid", 3, "Priority"),
                                                              ("amount-not-whole", 3, "Amount")]
    assert b.findings[1].message == "The amount 'abc' is not a whole number."


def test_wide_layout_one_request_per_filled_add_on_cell(tmp_path: Path) -> None:
    sh = read_sheet(_csv(tmp_path, "Environment,AI Builder credits,Power Apps per app,Notes\n"
                                   "Prod,1000,,x\nDev,,5,\nTrial,,,nothing asked\n"))
    assert sh.kind is Kind.ADDONS
    reqs = parse_addon_requests(sh)
    assert [(r.row_number, r.environment, r.addon, r.amount, r.column) for r in reqs] == [
        (2, "Prod", "AI Builder credits", 1000, "AI Builder credits"),
        (3, "Dev", "Power Apps per app", 5, "Power Apps per app"),
        (4, "Trial", "", None, None),
    ]
    assert [f.code for f in reqs[2].findings] == ["amount-missing"]  # the row is kept, and says why


def test_kind_is_detected_or_forced(tmp_path: Path) -> None:
    p = _csv(tmp_path, "Environment,Add-on\nProd,AI\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(p)
    assert e.value.message == "No column gives the amount. The headers (row 1) are: 'Environment', 'Add-on'."
    lic = _csv(tmp_path, "User,License\na@contoso.com,SPE_E3\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(lic, kind=Kind.ADDONS)
    assert e.value.message == "No column names the environment. The headers (row 1) are: 'User', 'License'."
    assert e.value.fix == 'Head the column Environment (its name or id), or map it: --map "environment=<header>".'
