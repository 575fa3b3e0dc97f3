"""A cell longer than a few hundred characters is shortened in every message that quotes it."""

from __future__ import annotations

from batch.errors import RowFinding
from batch.models import Action, RequestStatus
from batch.sheets.resolve import resolve_sku
from batch.validate import validate

from .builders import E5, req, sheet_for, sku, snapshot, user


def test_a_long_cell_is_shortened_in_messages() -> None:
    long_user = "u" * 5_000
    snap = snapshot([sku("SPE_E5", E5)], [user("alice@contoso.com")])
    r = req(0, long_user, Action.ASSIGN, "SPE_E5")
    c = validate(sheet_for([r]), [r], snap).requests[0]
    assert c.status is RequestStatus.ERROR
    assert c.findings[0].message == (
        f"User '{'u' * 200}… (5,000 characters)' is not a user principal name (name@domain) or an object id."
    )
    f = resolve_sku("L" * 1_000, snap.skus)
    assert isinstance(f, RowFinding)
    assert f.message == f"No license called '{'L' * 200}… (1,000 characters)' exists in this tenant."
