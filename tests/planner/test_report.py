"""`planner report`: the files, the sections, embedded images, escaping, reproduction from any
directory, and the numbers the report shows equal to `planner breakeven --format json` and
`planner tco --format json` for the same input."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import ROOT, require

require("matplotlib")
WORKLOAD = ROOT / "examples" / "workload.yaml"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The example's report, made once for the module: (directory, what the command printed)."""
    from click.testing import CliRunner

    from planner.cli import main

    out = tmp_path_factory.mktemp("example") / "report"
    env = {"XDG_CACHE_HOME": str(out.parent / "cache"), "SELFHOST_PLANNER_CATALOG": ""}
    result = CliRunner().invoke(main, ["report", str(WORKLOAD), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def md_tables(md: str) -> dict[str, list[dict[str, str]]]:
    """Markdown tables by their caption (the bold line before each): header -> cell text."""
    out: dict[str, list[dict[str, str]]] = {}
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if not (line.startswith("**") and line.endswith("**")) or i + 2 >= len(lines):
            continue
        table = []
        for row in lines[i + 2 :]:
            if not row.startswith("|"):
                break
            table.append([c.strip() for c in row.strip("|").split(" | ")])
        header, body = table[0], table[2:]
        out[line.strip("*")] = [dict(zip(header, r, strict=True)) for r in body]
    return out


class _Tables(HTMLParser):
    """HTML tables by id: header -> cell text (unescaped)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: str | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.current = dict(attrs).get("id") or ""
            self.tables[self.current] = []
        elif tag == "tr" and self.current is not None:
            self.tables[self.current].append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.current is not None:
            self.tables[self.current][-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def html_tables(page: str) -> dict[str, list[dict[str, str]]]:
    parser = _Tables()
    parser.feed(page)
    return {k: [dict(zip(t[0], r, strict=True)) for r in t[1:]] for k, t in parser.tables.items() if t}


def shown_tables(out: Path) -> list[dict[str, list[dict[str, str]]]]:
    """The report's tables as a reader sees them, once from report.md and once from index.html,
    under the same keys (the HTML table ids)."""
    md = md_tables((out / "report.md").read_text())
    page = html_tables((out / "index.html").read_text())
    by_caption = {
        "t-breakeven": next(v for k, v in md.items() if k.startswith("Break-even against each API")),
        "t-fleet": md["Fleets at the target volume"],
        "t-tco": next(v for k, v in md.items() if k.startswith("Total over")),
        "t-sensitivity": md["One input at a time, widest swing first"],
    }
    return [by_caption, page]


def test_report_files_and_the_count_it_prints(report: tuple[Path, str]) -> None:
    out, printed = report
    for name in (
        "index.html",
        "report.md",
        "breakeven.json",
        "reproduce.sh",
        "inputs/workload.yaml",
        "inputs/workload.json",
        "inputs/catalog-digest.txt",
    ):
        assert (out / name).is_file(), name
    assert (out / "inputs" / "workload.yaml").read_bytes() == WORKLOAD.read_bytes()
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == ["cost-vs-volume.png", "performance.png", "sensitivity.png", "tco.png", "vram.png"]
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    assert {"breakeven", "fleet", "vram", "sensitivity", "tco", "classes", "api_prices", "offers"} <= tables
    assert "digest" in (out / "inputs" / "catalog-digest.txt").read_text().splitlines()[0]
    on_disk = [p for p in out.rglob("*") if p.is_file()]
    assert f"wrote {len(on_disk)} files to" in printed


def test_html_is_self_contained_with_every_section(report: tuple[Path, str]) -> None:
    out, _ = report
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    for network in ("src='http", 'src="http', "href=", "<link", "@import", "url(", "<script", "<iframe"):
        assert network not in html, network
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
    md = (out / "report.md").read_text()
    assert all(f"## {t}" in md for t in titles)
    assert "![2. Cost vs daily volume](plots/cost-vs-volume.png)" in md
    assert "published" in md
    assert "estimated" in md
    assert "genai-prices" in md
    for caption in ("API prices (published)", "Cloud offers behind", "Throughput per replica"):
        assert re.search(f"<caption>{re.escape(caption)}", html), caption
        assert f"**{caption}" in md


def test_numbers_shown_equal_planner_breakeven_and_tco_json(invoke, report: tuple[Path, str]) -> None:
    """What a reader sees in report.md and index.html (break-evens, fleet $/month, paybacks) is what
    `planner breakeven --format json --all` and `planner tco --format json` print for the input."""
    from planner.report.economics import usd
    from planner.units import format_count

    out, _ = report
    result = invoke("breakeven", "--workload", str(WORKLOAD), "--all", "--format", "json")
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    hosted = [o for o in cli["options"] if o["kind"] == "self-hosted"]
    by_label = {o["option"]: (rank, o) for rank, o in enumerate(hosted, start=1)}
    paybacks = {}
    for be in cli["breakeven"]:
        tco = invoke("tco", "--workload", str(WORKLOAD), "--api", be["api"], "--format", "json")
        assert tco.exit_code == 0, tco.output
        paybacks[be["api"]] = json.loads(tco.stdout)["payback_month"]
    assert any(paybacks.values()), "the example has an API self-hosting pays back against (gpt-4o)"
    for shown in shown_tables(out):
        be_rows = shown["t-breakeven"]
        assert [r["API"] for r in be_rows] == [b["api"] for b in cli["breakeven"]]
        for r, b in zip(be_rows, cli["breakeven"], strict=True):
            assert r["self-hosting stays cheaper from"].startswith(
                f"{format_count(b['tokens_per_day'])} tokens/day"
            )
            assert r["API $/1M"] == f"{b['api_usd_per_mtok']:,.3f}"
            assert r["with"] == b["option"]
        fleet = shown["t-fleet"]
        assert len(fleet) >= 9
        for r in fleet:
            rank, option = by_label[r["option"]]
            assert r["$/month"] == usd(option["usd_per_month"])
            assert r["#"] == str(rank)
        tco = {r["option"]: r["self-hosting pays back"] for r in shown["t-tco"] if r["kind"] == "api"}
        assert set(tco) == set(paybacks)
        for api, month in paybacks.items():
            assert tco[api] == (f"month {month}" if month else "not within 12 months"), api
        sens = shown["t-sensitivity"]
        assert [r["input"] for r in sens] == [s["factor"] for s in cli["sensitivity"]]
        for r, s in zip(sens, cli["sensitivity"], strict=True):
            assert r["favourable"] == s["low_setting"]
            assert r["break-even (favourable)"] == (
                format_count(s["tokens_per_day_low"]) if s["tokens_per_day_low"] else "never"
            )
    assert json.loads((out / "breakeven.json").read_text())["breakeven"] == cli["breakeven"]


def test_tco_compares_every_api_and_leads_with_the_paybacks(report: tuple[Path, str]) -> None:
    out, _ = report
    tco = rows(out / "tables" / "tco.csv")
    apis = [r for r in tco if r["kind"] == "api"]
    assert {r["option"] for r in apis} == {
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
        "anthropic/claude-3-haiku",
        "google/gemini-2.5-flash-lite",
    }
    assert apis[0]["option"] == "openai/gpt-4o"  # the one self-hosting beats at 50M/day, first
    assert apis[0]["payback"].startswith("month ")
    assert all(r["payback"] == "not within 12 months" for r in apis[1:])
    md = (out / "report.md").read_text()
    assert "Payback of self-hosting vs openai/gpt-4o: month" in md
    assert "vs the cheapest API" not in md


def test_fleet_shows_the_best_of_every_model_format_and_pricing(report: tuple[Path, str]) -> None:
    out, _ = report
    fleet = rows(out / "tables" / "fleet.csv")
    pairs = {(r["model"], r["quant"]) for r in fleet}
    for model in ("llama-3.1-8b-instruct", "qwen3-32b", "llama-3.3-70b-instruct"):
        for quant in ("bf16", "fp8", "awq-int4"):
            assert (model, quant) in pairs, (model, quant)
        assert (model, "reserved_1y") in {(r["model"], r["pricing"]) for r in fleet}
    assert fleet[0]["listed"] == "best for its model and format"
    assert fleet[-1]["listed"] == "next cheapest"


def test_provenance_covers_every_price_and_throughput_shown(report: tuple[Path, str]) -> None:
    out, _ = report
    offers = {(r["provider"], r["instance"], r["pricing"]) for r in rows(out / "tables" / "offers.csv")}
    basis = {r["configuration"] for r in rows(out / "tables" / "throughput_basis.csv")}
    fleet = rows(out / "tables" / "fleet.csv")
    for r in fleet:
        assert (r["provider"], r["instance"], r["pricing"]) in offers, r["option"]
        assert f"{r['model']} {r['quant']} on {r['tp']} x {r['gpu']} (vllm)" in basis, r["option"]
    assert "reserved_1y" in {p for _, _, p in offers}
    for r in rows(out / "tables" / "classes.csv"):
        m = re.match(r"(\S+) (\S+) on [\d.]+ x (\S+) \((\S+) (\S+), (\S+)\)", r["cheapest"])
        assert m, r["cheapest"]
        model, quant, gpu, provider, instance, pricing = m.groups()
        assert (provider, instance, pricing.replace("-", "_")) in offers, r["cheapest"]
        assert any(b.startswith(f"{model} {quant} on ") and f" x {gpu} " in b for b in basis), r["cheapest"]
    for label in (r["option"] for r in rows(out / "tables" / "breakeven.csv")):
        assert any(f" on {p} {i} (" in label for p, i, _ in offers), label
    prices = {round(float(r["usd_per_gpu_hour"]), 2) for r in rows(out / "tables" / "offers.csv")}
    gpu_price = next(r for r in rows(out / "tables" / "sensitivity.csv") if r["factor"] == "GPU price")
    for setting in (gpu_price["low_setting"], gpu_price["high_setting"]):  # "$0.34/h" (one GPU)
        assert float(setting.strip("$/h")) in prices, setting


def test_vram_has_every_column_the_plot_shows_for_every_gpu_shown(report: tuple[Path, str]) -> None:
    out, _ = report
    vram = rows(out / "tables" / "vram.csv")
    assert {"weights_gib", "overhead_gib", "kv_pool_gib", "unusable_gib"} <= set(vram[0])
    gpus = {r["gpu"] for r in vram}
    assert {r["gpu"] for r in rows(out / "tables" / "fleet.csv")} <= gpus
    for r in rows(out / "tables" / "classes.csv"):
        assert re.search(r" x (\S+) ", r["cheapest"]).group(1) in gpus
    md = (out / "report.md").read_text()
    assert "| activations + CUDA | KV pool | held back |" in md


def test_sensitivity_uses_the_breakeven_labels_and_clean_headers(report: tuple[Path, str]) -> None:
    out, _ = report
    md = (out / "report.md").read_text()
    assert "| input | favourable | break-even (favourable) | unfavourable | break-even (unfavourable) |" in md
    assert not re.search(r"[^ |] \|\|", md)
    assert "break-even  |" not in md
    for r in rows(out / "tables" / "sensitivity.csv"):
        if r["tokens_per_day_low"] and r["tokens_per_day_high"]:
            assert float(r["tokens_per_day_low"]) <= float(r["tokens_per_day_high"]), r


def test_section_4_says_when_no_measured_point_exists(report: tuple[Path, str]) -> None:
    md = (report[0] / "report.md").read_text()
    section = md.split("## 4.")[1].split("## 5.")[0]
    assert "No measured point" in section
    assert "within 10%" in section


def _drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Spy on what the plots draw: scatter points, and every text with whether it lies in its axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    from planner.report import plots

    seen: dict[str, list] = {"scatter": [], "texts": []}
    scatter = Axes.scatter

    def spy_scatter(self, x, y, *args, **kwargs):
        seen["scatter"].extend(zip(x, y, strict=True))
        return scatter(self, x, y, *args, **kwargs)

    png = plots._png

    def spy_png(fig):
        fig.canvas.draw()
        for ax in fig.axes:
            box = ax.get_window_extent()
            for t in ax.texts:
                e = t.get_window_extent()
                inside = (
                    box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1
                )
                seen["texts"].append((t.get_text(), inside))
        return png(fig)

    monkeypatch.setattr(Axes, "scatter", spy_scatter)
    monkeypatch.setattr(plots, "_png", spy_png)
    return seen


def test_plot_labels_are_drawn_inside_their_axes(
    invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _drawn(monkeypatch)
    for volume in ("50M", "3B"):
        result = invoke("report", str(WORKLOAD), "--tokens-per-day", volume, "--out", str(tmp_path / volume))
        assert result.exit_code == 0, result.output
    texts = dict(seen["texts"])
    assert texts["target 50M/day"]
    assert texts["target 3B/day"]
    assert texts["self-hosting pays back (dots):\nvs gpt-4o: month 8"]
    assert all(inside for _, inside in seen["texts"]), [t for t, inside in seen["texts"] if not inside]


def test_measured_serving_points_are_drawn_and_listed(
    invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner.records import EngineInfo, Environment, MeasurementRecord

    user = tmp_path / "user"
    (user / "measurements").mkdir(parents=True)
    recs = [
        MeasurementRecord(
            id=f"mine-4090-c{c}",
            basis="measured",
            model="llama-3.1-8b-instruct",
            quant="fp8",
            engine=EngineInfo(name="vllm", version="0.11.0"),
            weights="real",
            device="cuda",
            gpu="rtx-4090",
            mode="serving",
            concurrency=c,
            input_tokens=1500,
            output_tokens=300,
            output_tokens_per_s=tok_s,
            measured_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            env=Environment(gpus=["NVIDIA GeForce RTX 4090"]),
        )
        for c, tok_s in ((8, 310.0), (32, 905.0))
    ]
    (user / "measurements" / "mine.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in recs))
    seen = _drawn(monkeypatch)
    out = tmp_path / "r"
    args = ("--model", "llama-3.1-8b-instruct", "--quant", "fp8", "--gpu", "rtx-4090,l4", "--api", "gpt-4o")
    result = invoke("--catalog", str(user), "report", "--tokens-per-day", "50M", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (8.0, 310.0) in seen["scatter"]
    assert (32.0, 905.0) in seen["scatter"]
    listed = rows(out / "tables" / "measured.csv")
    assert [r["record"] for r in listed] == ["mine-4090-c8", "mine-4090-c32"]
    section = (out / "report.md").read_text().split("## 4.")[1].split("## 5.")[0]
    assert "mine-4090-c32" in section
    assert "No measured point" not in section
    assert "rtx-4090: measured + calibrated" in section


def test_reproduce_sh_runs_from_any_directory(report: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = report
    script = (out / "reproduce.sh").read_text()
    assert "inputs/workload.yaml" in script
    assert "examples/" not in script
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PLANNER": f"{sys.executable} -m planner.cli",
        "PYTHONPATH": str(ROOT),
        "SELFHOST_PLANNER_CATALOG": str(tmp_path),  # reproduce.sh ignores it: the catalogs are named
    }
    run = subprocess.run(
        ["sh", str(out / "reproduce.sh"), "again"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    first = json.loads((out / "breakeven.json").read_text())
    assert json.loads((elsewhere / "again" / "breakeven.json").read_text()) == first
    # The resolved inputs read back as a workload file, with the same numbers.
    back = subprocess.run(
        [
            sys.executable,
            "-m",
            "planner.cli",
            "report",
            str(out / "inputs" / "workload.json"),
            "--out",
            "back",
        ],
        cwd=elsewhere,
        env=env | {"SELFHOST_PLANNER_CATALOG": ""},
        capture_output=True,
        text=True,
    )
    assert back.returncode == 0, back.stderr
    assert json.loads((elsewhere / "back" / "breakeven.json").read_text()) == first


def test_reproduce_sh_names_catalogs_by_path_and_stops_when_they_changed(
    invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    override = user / "api_overrides.yaml"
    line = "  - {provider: openai, model: gpt-4o-mini, input_usd_per_mtok: %s, output_usd_per_mtok: 0.6, "
    text = "schema_version: 1\nprices:\n" + line + "checked_at: 2026-11-01, source: negotiated}\n"
    override.write_text(text % "0.15")
    out = tmp_path / "r"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "day.txt").write_text("# a business day\n" + "1, " * 8 + "3, " * 10 + "1, " * 5 + "1\n")
    args = ("report", "--tokens-per-day", "20M", "--api", "gpt-4o-mini", "--model", "llama-3.1-8b-instruct")
    args += ("--hourly-profile", "day.txt", "--ha")
    result = invoke("--catalog", "user", *args, "--out", "r")  # relative directories and files
    assert result.exit_code == 0, result.output
    script = (out / "reproduce.sh").read_text()
    assert f"--catalog {user.resolve()}" in script
    assert "--hourly-profile inputs/day.txt" in script
    assert (out / "inputs" / "day.txt").read_text() == (tmp_path / "day.txt").read_text()
    env = {**os.environ, "PLANNER": f"{sys.executable} -m planner.cli", "PYTHONPATH": str(ROOT)}
    back = invoke("--catalog", "user", "report", str(out / "inputs" / "workload.json"), "--out", "back")
    assert back.exit_code == 0, back.output
    assert (tmp_path / "back" / "breakeven.json").read_text() == (out / "breakeven.json").read_text()
    override.write_text(text % "0.10")
    run = subprocess.run(
        ["sh", str(out / "reproduce.sh"), str(tmp_path / "x")], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "the catalogs changed since this report was made" in run.stderr
    assert "ANY_CATALOG=1" in run.stderr
    anyway = subprocess.run(
        ["sh", str(out / "reproduce.sh"), str(tmp_path / "x")],
        env=env | {"ANY_CATALOG": "1"},
        capture_output=True,
        text=True,
    )
    assert anyway.returncode == 0, anyway.stderr
    api = json.loads((tmp_path / "x" / "breakeven.json").read_text())["verdict"]["cheapest_api"]
    assert api["input_usd_per_mtok"] == 0.10  # today's catalog


def test_api_only_report_when_no_self_hosted_option_meets_the_slos(invoke, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = invoke("report", str(WORKLOAD), "--slo-tpot-ms", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "API only" in result.stdout
    md = (out / "report.md").read_text()
    first = md.split("## 1.")[1].split("## 2.")[0]
    assert "No self-hosted option meets the SLOs (TTFT <= 1000 ms and TPOT <= 1 ms)" in first
    best = re.search(r"Best achievable TPOT: ([\d.]+) ms", first)
    assert best
    assert float(best.group(1)) > 1
    assert "The TPOT SLO is out of reach" in first
    apis = rows(out / "tables" / "apis.csv")
    assert {r["option"] for r in apis} >= {"openai/gpt-4o", "google/gemini-2.5-flash-lite"}
    closest = rows(out / "tables" / "closest.csv")
    assert closest
    assert all("TPOT" in r["misses"] for r in closest)
    plots = {p.name for p in (out / "plots").glob("*.png")}
    assert {"cost-vs-volume.png", "tco.png", "vram.png", "performance.png"} <= plots
    assert "sensitivity.png" not in plots
    assert "No break-even to vary" in md


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
        "--title",
        "<b>R&D</b>",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert "<script>" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "&lt;b&gt;R&amp;D&lt;/b&gt;" in html


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


def test_an_unwritable_out_is_one_line_before_any_work(invoke, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = invoke("report", str(ROOT / "examples" / "workload.yaml"), "--out", str(blocker / "sub"))
    assert r.exit_code == 2
    assert r.stderr.strip().startswith(f"error: --out {blocker / 'sub'}: {blocker} is not a folder")
    assert len(r.stderr.strip().splitlines()) == 1


def test_without_matplotlib_the_report_names_the_extra(invoke, tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    r = invoke("report", str(WORKLOAD), "--out", str(tmp_path / "rep"))
    assert r.exit_code == 2
    assert "pip install 'selfhost-planner[report]'" in r.stderr
