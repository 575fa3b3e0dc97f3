"""The committed sample sheets are what samples/make_samples.py makes from the sandbox's default seed.

If the seed or the catalogue changes, the samples must be regenerated (the demo depends on them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_samples_match_the_default_seed(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "samples" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for made in mod.build(tmp_path):
        committed = REPO / "batch" / "data" / "samples" / made.name
        assert made.read_bytes() == committed.read_bytes(), (
            f"{committed} is out of date: run .venv/bin/python samples/make_samples.py"
        )
