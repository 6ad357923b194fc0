"""A plain (non-editable) install finds its catalogs from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_ships_catalogs_and_runs_from_another_directory(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("selfhost_planner-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "planner/catalogs/models.yaml",
        "planner/catalogs/api_prices.json",
        "planner/catalogs/schemas/models.schema.json",
    ):
        assert needed in names
    assert not any(n.startswith("tests/") for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def planner(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from planner.cli import run; sys.exit(run(sys.argv[1:]))"
        return subprocess.run(
            [sys.executable, "-c", code, *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )

    validated = planner("catalog", "validate")
    assert validated.returncode == 0, validated.stderr
    assert str(target / "planner" / "catalogs") in validated.stdout
    models = json.loads(planner("catalog", "list", "models", "--format", "json").stdout)
    assert len(models) >= 14
