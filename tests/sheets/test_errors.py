"""File-level problems: each raises an InputError subclass whose exact text names the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.errors import ColumnError, EmptySheetError, InputError, SheetReadError
from batch.sheets import read_sheet


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.xlsx"
    with pytest.raises(SheetReadError) as e:
        read_sheet(p)
    assert str(e.value) == f"{p}: The file does not exist. Check the path and the file name."
    assert e.value.path == str(p)


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(SheetReadError) as e:
        read_sheet(tmp_path)
    assert str(e.value) == f"{tmp_path}: This is a folder, not a file. Give the spreadsheet's path."


@pytest.mark.parametrize("name", ["empty.csv", "empty.xlsx"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(b"")
    with pytest.raises(EmptySheetError) as e:
        read_sheet(p)
    assert (
        str(e.value)
        == f"{p}: The file is empty (0 bytes). Export the sheet again, or check that this is the right file."
    )


def test_no_header_row(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("nohead.csv", "anna@contoso.com,SPE_E3\nbob@contoso.com,EMS\n")
    with pytest.raises(EmptySheetError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}, row 1: The file has no header row: the first row holds data ('anna@contoso.com', 'SPE_E3'). "
        "Add a header row above the data, e.g. userPrincipalName and License."
    )
    assert e.value.row == 1


def test_no_data_rows(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("head.csv", "Licence wave\n\nUPN,License\n,\n\n")
    with pytest.raises(EmptySheetError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}, row 3: There are no data rows below the header (row 3). Add one row per user below the header row."
    )


def test_no_user_column(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("nouser.csv", "Name,License\nAnna,SPE_E3\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: No column names the user. The headers (row 1) are: 'Name', 'License'. "
        'Head the column userPrincipalName (or UPN, Email), or map it: --map "user=<header>".'
    )


def test_no_license_column(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("nolic.csv", "UPN,Department\na@contoso.com,Sales\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(p)
    assert str(e.value) == (
        f"{p}: No column names the license. The headers (row 1) are: 'UPN', 'Department'. "
        "Head the column License (or skuPartNumber, SKU, Product name), or give From license and "
        'To license columns for a swap, or map it: --map "sku=<header>".'
    )


def test_map_names_missing_header(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("m.csv", "Work Email,Licence\na@contoso.com,SPE_E3\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(p, column_map={"user": "Employee Mail"})
    assert str(e.value) == (
        f"{p}, column 'Employee Mail': --map names the column 'Employee Mail' for user, but there is no such "
        "header. The headers are: 'Work Email', 'Licence'. "
        "Correct the header in --map (or in [columns] of license-batch.toml)."
    )
    assert e.value.column == "Employee Mail"


def test_map_unknown_role(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("m.csv", "Work Email,Licence\na@contoso.com,SPE_E3\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(p, column_map={"owner": "Work Email"})
    assert str(e.value) == (
        f"{p}: --map uses the unknown role 'owner'. "
        "Roles are: user, sku, action, from_sku, to_sku, disabled_plans, usage_location, priority, environment, "
            "addon, amount, group."
    )


def test_map_two_roles_one_column(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("m.csv", "Work Email,Licence\na@contoso.com,SPE_E3\n")
    with pytest.raises(ColumnError) as e:
        read_sheet(p, column_map={"user": "Work Email", "sku": "work email"})
    assert str(e.value) == (
        f"{p}, column 'Work Email': --map gives the column 'Work Email' two roles: user and sku. "
        "Map each role to its own column."
    )


def test_every_error_is_an_input_error() -> None:
    for cls in (SheetReadError, EmptySheetError, ColumnError):
        assert issubclass(cls, InputError)
