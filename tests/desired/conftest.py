"""Desired-state tests: each runs the CLI in its own folder against its own embedded sandbox (default seed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from batch.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code, out, err = run(capsys, *argv, "--json")
    assert out.strip(), err
    return code, json.loads(out.strip().splitlines()[-1]), err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, str]], headers: list[str] | None = None) -> Path:
    headers = headers or list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, headers)
        w.writeheader()
        w.writerows(rows)
    return path


def xlsx_rows(path: Path, sheet: str | None = None) -> list[dict[str, object]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb[sheet] if sheet else wb.worksheets[0]
    values = list(ws.iter_rows(values_only=True))
    wb.close()
    head = [str(h) for h in values[0]]
    return [dict(zip(head, r, strict=False)) for r in values[1:]]


def state(capsys: pytest.CaptureFixture[str], workdir: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Today's users and allocations, as export writes them."""
    assert run(capsys, "export", "users", "-o", str(workdir / "_state_users.csv"))[0] == 0
    assert run(capsys, "export", "addons", "-o", str(workdir / "_state_addons.csv"))[0] == 0
    return read_csv(workdir / "_state_users.csv"), read_csv(workdir / "_state_addons.csv")


def upn(name: str) -> str:
    return f"{name}@contoso.onmicrosoft.com"
