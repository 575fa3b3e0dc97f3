"""Reading written workbooks back, with openpyxl and python-calamine."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet
from python_calamine import CalamineWorkbook


def load(path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(path)  # full mode: formats, panes and filters are read too


def values(ws: Worksheet) -> list[list[str]]:
    """Every row as text, empty cells as ''."""
    return [["" if v is None else v for v in row] for row in ws.iter_rows(values_only=True)]


def calamine_rows(path: Path, sheet: str) -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def fill(ws: Worksheet, row: int, col: int) -> str:
    """The solid fill colour of a cell, as 6 hex digits (1-based row and column)."""
    rgb = ws.cell(row, col).fill.fgColor.rgb
    return str(rgb)[-6:].upper()


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def zip_text(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(name).decode("utf-8")
