"""The desired-versus-actual join on its own (pandas, no tenant): each pair lands in exactly one kind of drift."""

from __future__ import annotations

import pandas as pd

from batch.desired.drift import classify

DESIRED_COLUMNS = ["row", "number", "uid", "sku_id", "plans", "via_group", "direct_required", "location"]
ACTUAL_COLUMNS = ["uid", "sku_id", "direct", "actual_plans", "grouped", "groups", "failed_groups"]


def test_classify_every_kind() -> None:
    desired = pd.DataFrame([
        [0, 2, "u1", "E3", "", False, False, ""],      # matches
        [1, 3, "u1", "PBI", "", False, False, ""],     # missing
        [2, 4, "u2", "O365", "p1,p2", False, False, ""],  # plans: p2 to disable, p3 to re-enable
        [3, 5, "u3", "E3", "", True, False, ""],       # group-missing
        [4, 6, "u4", "E3", "", True, False, ""],       # through a group, as expected
    ], columns=DESIRED_COLUMNS)
    actual = pd.DataFrame([
        ["u1", "E3", True, "", False, "", ""],
        ["u1", "E1", True, "", False, "", ""],         # extra
        ["u2", "O365", True, "p1,p3", False, "", ""],
        ["u4", "E3", False, "", True, "g1", ""],
        ["u4", "COPILOT", False, "", True, "g2", ""],  # group-unexpected
        ["u9", "E3", True, "", False, "", ""],         # not in scope: ignored
    ], columns=ACTUAL_COLUMNS)
    d = classify(desired, actual, {"u1", "u2", "u3", "u4"}, prune=False)
    got = {(r.uid, r.sku_id): r for r in d.itertuples(index=False)}
    assert {k: r.drift for k, r in got.items()} == {
        ("u1", "PBI"): "missing", ("u1", "E1"): "extra", ("u2", "O365"): "plans", ("u3", "E3"): "group-missing",
        ("u4", "COPILOT"): "group-unexpected"}
    plans = got[("u2", "O365")]
    assert (plans.disable, plans.enable, plans.plans_after, plans.add) == ("p2", "p3", "p1,p2,p3", True)
    assert got[("u1", "E1")].remove is False and got[("u1", "E1")].frees is True
    assert got[("u1", "PBI")].takes is True
    pruned = classify(desired, actual, {"u1", "u2", "u3", "u4"}, prune=True)
    got = {(r.uid, r.sku_id): r for r in pruned.itertuples(index=False)}
    assert got[("u1", "E1")].remove is True
    assert got[("u2", "O365")].plans_after == "p1,p2"
    assert not got[("u4", "COPILOT")].remove  # never removed directly
