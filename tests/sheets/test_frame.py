"""A DataFrame given instead of a file is read in memory: cells as text the way a file's would be, the same
column recognition, column map, kind detection and errors; a hash of its cells."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batch.errors import ColumnError, EmptySheetError, SheetReadError
from batch.models import Kind, Role
from batch.sheets import read_source, source_label


def test_cells_are_text_as_a_file_gives_them() -> None:
    df = pd.DataFrame({
        "userPrincipalName": [" adele@contoso.com ", None, "lidia@contoso.com"],
        "License": ["SPE_E3", np.nan, "SPE_E5"],
        "Seats": [3, 4, 5],  # int64
        "Amount": [3, np.nan, 2.5],  # a gap turns the column's integers into floats: 3.0 is still "3"
        "Since": [pd.Timestamp("2024-05-01"), pd.NaT, pd.Timestamp("2024-05-01 13:05")],
        "Active": [True, False, True],
        "Note": [pd.NA, "x", dt.date(2024, 1, 2)],
    })
    [sheet] = read_source(df)
    assert (str(sheet.path), sheet.format, sheet.sheet_name, sheet.header_row, sheet.kind) == (
        "<DataFrame>", "dataframe", None, 1, Kind.LICENSES)
    assert sheet.headers == ("userPrincipalName", "License", "Seats", "Amount", "Since", "Active", "Note")
    assert [(r.index, r.number, r.cells) for r in sheet.rows] == [
        (0, 2, ("adele@contoso.com", "SPE_E3", "3", "3", "2024-05-01", "TRUE", "")),
        (1, 3, ("", "", "4", "", "", "FALSE", "x")),
        (2, 4, ("lidia@contoso.com", "SPE_E5", "5", "2.5", "2024-05-01 13:05:00", "TRUE", "2024-01-02")),
    ]
    assert sheet.columns[Role.USER] == 0 and sheet.columns[Role.SKU] == 1


def test_the_hash_is_of_the_cells() -> None:
    df = pd.DataFrame({"userPrincipalName": ["a@contoso.com"], "License": ["SPE_E3"]})
    first = read_source(df)[0].sha256
    assert read_source(df.copy())[0].sha256 == first  # the same cells: the same hash
    assert read_source(df.assign(License=["SPE_E5"]))[0].sha256 != first
    assert len(first) == 64


def test_a_named_index_is_kept_as_columns() -> None:
    df = pd.DataFrame({"userPrincipalName": ["a@contoso.com"], "License": ["SPE_E3"]}).set_index("userPrincipalName")
    [sheet] = read_source(df)
    assert sheet.headers == ("userPrincipalName", "License")
    assert sheet.rows[0].cells == ("a@contoso.com", "SPE_E3")


def test_an_unnamed_index_of_data_is_kept_as_the_column_index() -> None:
    upns = ["adele@contoso.com", "lidia@contoso.com"]
    [sheet] = read_source(pd.DataFrame({"License": ["SPE_E3", "SPE_E5"]}, index=upns), column_map={"user": "index"})
    assert sheet.headers == ("index", "License")
    assert [r.cells for r in sheet.rows] == [("adele@contoso.com", "SPE_E3"), ("lidia@contoso.com", "SPE_E5")]
    assert (sheet.kind, sheet.columns[Role.USER]) == (Kind.LICENSES, 0)
    dated = pd.DataFrame({"userPrincipalName": ["a@contoso.com"], "License": ["SPE_E3"]},
                         index=pd.DatetimeIndex(["2024-05-01"]))
    assert read_source(dated)[0].rows[0].cells == ("2024-05-01", "a@contoso.com", "SPE_E3")
    multi = pd.DataFrame({"userPrincipalName": ["a@contoso.com"], "License": ["SPE_E3"]},
                         index=pd.MultiIndex.from_tuples([("Sales", 7)], names=[None, "Wave"]))
    [m] = read_source(multi)
    assert (m.headers, m.rows[0].cells) == (("index_0", "Wave", "userPrincipalName", "License"),
                                            ("Sales", "7", "a@contoso.com", "SPE_E3"))


def test_an_integer_index_is_row_positions_and_is_dropped() -> None:
    df = pd.DataFrame({"userPrincipalName": ["a@contoso.com", "b@contoso.com", "c@contoso.com"],
                       "License": ["SPE_E3", "SPE_E5", "SPE_E3"]})
    filtered = df[df.License == "SPE_E3"]  # index 0, 2: a filtered frame's row positions
    assert list(filtered.index) == [0, 2]
    [sheet] = read_source(filtered)
    assert sheet.headers == ("userPrincipalName", "License")
    assert [r.cells for r in sheet.rows] == [("a@contoso.com", "SPE_E3"), ("c@contoso.com", "SPE_E3")]
    assert read_source(df)[0].headers == ("userPrincipalName", "License")


def test_an_index_named_like_a_column_is_refused() -> None:
    with pytest.raises(ColumnError) as e:
        read_source(pd.DataFrame({"Index": ["x"], "License": ["SPE_E3"]}, index=["a@contoso.com"]))
    assert str(e.value) == (
        "<DataFrame>: The DataFrame's index would be the column 'index', but a column is called 'Index' already. "
        "Rename the index (df.rename_axis(...)) or the column, or drop the index (df.reset_index(drop=True)).")
    named = pd.DataFrame({"upn": ["x"], "License": ["SPE_E3"]}, index=pd.Index(["a@contoso.com"], name="UPN"))
    with pytest.raises(ColumnError) as e2:
        read_source(named)
    assert str(e2.value).startswith(
        "<DataFrame>: The DataFrame's index would be the column 'UPN', but a column is called 'upn' already.")
    multi = pd.DataFrame({"index_1": ["x"], "License": ["SPE_E3"]},
                         index=pd.MultiIndex.from_tuples([("a@contoso.com", "b")]))
    with pytest.raises(ColumnError) as e3:
        read_source(multi)
    assert str(e3.value).startswith(
        "<DataFrame>: The DataFrame's index level 1 would be the column 'index_1', but a column is called "
        "'index_1' already.")


def test_column_map_and_kinds_as_for_a_file() -> None:
    df = pd.DataFrame({"Who": ["a@contoso.com"], "What": ["SPE_E3"]})
    [sheet] = read_source(df, column_map={"user": "Who", "sku": "What"})
    assert (sheet.kind, sheet.columns[Role.USER], sheet.columns[Role.SKU]) == (Kind.LICENSES, 0, 1)
    addons = pd.DataFrame({"Environment": ["Contoso UAT"], "Add-on": ["AI"], "Allocated": [300000]})
    assert read_source(addons)[0].kind is Kind.ADDONS
    members = pd.DataFrame({"userPrincipalName": ["a@contoso.com"], "Group": ["Sales"]})
    assert read_source(members)[0].kind is Kind.GROUPS


def test_a_frame_of_no_known_shape_gets_the_files_column_error() -> None:
    with pytest.raises(ColumnError) as e:
        read_source(pd.DataFrame({"Name": ["Adele"], "Product": [3]}))
    assert str(e.value) == (
        "<DataFrame>: No column names the user. The headers (row 1) are: 'Name', 'Product'. Head the column "
        'userPrincipalName (or UPN, Email), or map it: --map "user=<header>".')
    with pytest.raises(EmptySheetError) as e2:
        read_source(pd.DataFrame({"userPrincipalName": [], "License": []}))
    assert str(e2.value) == (
        "<DataFrame>: The DataFrame has no data rows. Give a DataFrame with one row per user (or environment), "
        "e.g. userPrincipalName and License columns.")


def test_only_files_and_frames_are_sources(tmp_path: Path) -> None:
    assert str(source_label(pd.DataFrame())) == "<DataFrame>"
    assert source_label(tmp_path / "a.csv") == tmp_path / "a.csv"
    with pytest.raises(SheetReadError) as e:
        read_source([["userPrincipalName"], ["a@contoso.com"]])  # type: ignore[arg-type]
    assert str(e.value) == "Cannot read a list: give a file's path (.csv, .xlsx, ...) or a pandas DataFrame."


def test_reading_a_file_does_not_import_pandas(tmp_path: Path) -> None:
    path = tmp_path / "wave.csv"
    path.write_text("userPrincipalName,License\na@contoso.com,SPE_E3\n", encoding="utf-8")
    code = (f"import sys; from batch.sheets import read_source; s = read_source({str(path)!r}); "
            "print(s[0].kind, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "licenses False"
