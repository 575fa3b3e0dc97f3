"""The package as a user installs it (issue 12): build the wheel, install it alone in a fresh venv (its
dependencies from the package index, through pip's cache), run ``license-batch demo`` and
``license-batch sandbox users`` there. Nothing of the source tree is on that venv's path.

About a minute with a warm pip cache; marked ``wheel`` (``pytest -m "not wheel"`` leaves it out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(600)]


def _sh(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=540)


def test_demo_runs_from_a_wheel_only_venv(tmp_path: Path) -> None:
    # Build from a copy of what the wheel is made of, so the checkout gets no build/ or egg-info folders.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "batch", src / "batch", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = _sh(sys.executable, "-m", "pip", "wheel", ".", "-w", tmp_path / "dist", "--no-deps", "-q", cwd=src)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("license_batch-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, clear=True)  # the project's pip installs into it (--python): faster
    py = env_dir / "bin" / "python"
    installed = _sh(sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-compile",
                    "--disable-pip-version-check", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LICENSE_BATCH_", "PYTHON"))}
    env["HOME"] = str(tmp_path)  # no cached product list, no config of the developer's
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    where = _sh(py, "-c", "import batch, sys; print(batch.__file__); print(sys.path)", cwd=work, env=env)
    assert str(env_dir) in where.stdout.splitlines()[0] and str(REPO) not in where.stdout

    demo = _sh(env_dir / "bin" / "license-batch", "demo", "--json", cwd=work, env=env)
    assert demo.returncode == 1, demo.stderr  # rows skipped and failed on purpose (README: exit 1)
    assert "Using the built-in sandbox tenant (seeded now, state in .license-batch/sandbox.db)" in demo.stderr
    assert "Applying the sample onboarding wave " in demo.stderr
    assert f"{env_dir}" in demo.stderr  # the sample sheet comes from the installed package
    assert "Results: reports/" in demo.stderr
    import json

    summary = json.loads(demo.stdout)
    assert summary["rows"] == 198 and summary["applied"] == 179  # the onboarding wave
    assert summary["addons"]["rows"] == 10  # then the add-on allocations, also shipped in the package
    assert (work / summary["report"]).exists() and (work / summary["addons"]["report"]).exists()

    users = _sh(env_dir / "bin" / "license-batch", "sandbox", "users", "--filter", "upn=adele.vance", cwd=work,
                env=env)
    assert users.returncode == 0, users.stderr
    assert "adele.vance@contoso.onmicrosoft.com" in users.stdout and users.stdout.rstrip().endswith("1 user")
