"""`planner report`: the files, the sections, embedded images, escaping, and the same numbers as
`planner breakeven --format json` for the same input."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, require

require("matplotlib")
WORKLOAD = ROOT / "examples" / "workload.yaml"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def report(invoke, tmp_path: Path) -> Path:
    out = tmp_path / "report"
    result = invoke("report", str(WORKLOAD), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_report_files(report: Path) -> None:
    for name in (
        "index.html",
        "report.md",
        "breakeven.json",
        "reproduce.sh",
        "inputs/workload.json",
        "inputs/catalog-digest.txt",
    ):
        assert (report / name).is_file(), name
    plots = sorted(p.name for p in (report / "plots").glob("*.png"))
    assert plots == ["cost-vs-volume.png", "performance.png", "sensitivity.png", "tco.png", "vram.png"]
    for png in (report / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = {p.stem for p in (report / "tables").glob("*.csv")}
    assert {"breakeven", "fleet", "vram", "sensitivity", "tco", "classes", "api_prices", "offers"} <= tables
    assert "digest" in (report / "inputs" / "catalog-digest.txt").read_text().splitlines()[0]


def test_html_is_self_contained_with_every_section(report: Path) -> None:
    html = (report / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "src='http" not in html
    assert 'src="http' not in html
    assert "<script" not in html
    titles = [
        "1. Recommendation",
        "2. Cost vs daily volume",
        "3. The fleet per option",
        "4. Throughput and latency",
        "5. Memory fit",
        "6. Sensitivity",
        "7. Total cost of ownership",
        "8. The size classes",
        "9. Assumptions and provenance",
    ]
    positions = [html.index(t) for t in titles]
    assert positions == sorted(positions)  # the recommendation first, provenance last
    md = (report / "report.md").read_text()
    assert all(f"## {t}" in md for t in titles)
    assert "![2. Cost vs daily volume](plots/cost-vs-volume.png)" in md
    assert "published" in md
    assert "estimated" in md
    assert "genai-prices" in md


def test_numbers_equal_planner_breakeven_json(invoke, report: Path) -> None:
    cli = json.loads(invoke("breakeven", "--workload", str(WORKLOAD), "--all", "--format", "json").stdout)
    data = json.loads((report / "breakeven.json").read_text())
    assert data["verdict"] == cli["verdict"]
    assert data["breakeven"] == cli["breakeven"]
    assert data["options"] == cli["options"]
    with (report / "tables" / "breakeven.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["api"] for r in rows] == [r["api"] for r in cli["breakeven"]]
    with (report / "tables" / "fleet.csv").open() as fh:
        fleet = list(csv.DictReader(fh))
    hosted = [o for o in cli["options"] if o["kind"] == "self-hosted"]
    assert float(fleet[0]["usd_per_month"]) == pytest.approx(hosted[0]["usd_per_month"])


def test_catalog_text_is_escaped(invoke, tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "api_overrides.yaml").write_text(
        "schema_version: 1\nprices:\n  - {provider: openai, model: gpt-4o-mini, input_usd_per_mtok: 0.15,"
        " output_usd_per_mtok: 0.6, checked_at: 2026-11-01, source: '<script>alert(1)</script> & co'}\n"
    )
    out = tmp_path / "r"
    result = invoke(
        "--catalog",
        str(user),
        "report",
        "--tokens-per-day",
        "20M",
        "--api",
        "gpt-4o-mini",
        "--model",
        "llama-3.1-8b-instruct",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_reproduce_command_regenerates_the_same_numbers(invoke, report: Path, tmp_path: Path) -> None:
    command = (report / "reproduce.sh").read_text().splitlines()[-1]
    args = shlex.split(command)
    assert args[0] == "planner"
    assert "report" in args
    out_index = args.index("--out")
    args[out_index + 1] = str(tmp_path / "again")
    result = invoke(*args[1:])
    assert result.exit_code == 0, result.output
    first = json.loads((report / "breakeven.json").read_text())
    second = json.loads((tmp_path / "again" / "breakeven.json").read_text())
    assert first == second


def test_report_bad_input(invoke, tmp_path: Path) -> None:
    result = invoke("report", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "no such file" in result.stderr
    result = invoke("report", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "give --tokens-per-day" in result.stderr


def test_quality_section_when_records_exist(invoke, tmp_path: Path) -> None:
    from tests.planner.test_route import LARGE_LAT, LARGE_PRICE, LARGE_SCORES, record, write_cases

    _, sha = write_cases(tmp_path)
    catalog = tmp_path / "cat"
    (catalog / "quality").mkdir(parents=True)
    rec = record("large", LARGE_SCORES, LARGE_LAT, sha, LARGE_PRICE)
    (catalog / "quality" / "q.jsonl").write_text(rec.model_dump_json(exclude_none=True) + "\n")
    out = tmp_path / "report"
    result = invoke("--catalog", str(catalog), "report", "--tokens-per-day", "10M", "--out", str(out))
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    assert "## 9. Quality on your cases" in md
    assert "## 10. Assumptions and provenance" in md
    assert (out / "plots" / "quality-vs-cost.png").read_bytes().startswith(b"\x89PNG")
    (row,) = list(csv.DictReader((out / "tables" / "quality.csv").open()))
    assert row["model"] == "large"
    assert float(row["mean_score"]) == pytest.approx(sum(LARGE_SCORES) / 5)
    month = 10e6 * 365 / 12  # 1500 in + 300 out per request, at 2.5 and 10 $/1M
    assert float(row["usd_per_month"]) == pytest.approx(month * (1500 / 1800 * 2.5 + 300 / 1800 * 10) / 1e6)
    page = (out / "index.html").read_text()
    assert "9. Quality on your cases" in page
    assert page.count("data:image/png;base64,") == 6  # the quality plot embedded too
