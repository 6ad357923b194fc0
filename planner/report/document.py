"""Write a capacity report: index.html (self-contained), report.md, plots, CSV tables, inputs,
the catalog digest and the script that reproduces it. Every catalog text is HTML-escaped."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.catalog.files import atomic_write_text
from planner.report.build import ReportData
from planner.report.render import render_csv, render_markdown, to_json
from planner.report.sections import Section, Table, sections


@dataclass(frozen=True)
class Reproduction:
    """How to regenerate the report from its folder: the planner's arguments with every file
    argument pointing into inputs/ and every catalog directory absolute."""

    args: list[str]  # after `planner`, without --out
    copies: dict[str, Path] = field(default_factory=dict)  # inputs/NAME -> the file given
    workload: dict[str, Any] = field(default_factory=dict)  # the resolved inputs as a workload file

    @property
    def command(self) -> str:
        return shlex.join(["planner", *self.args, "--out", "."])


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#1b1f23;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.verdict{background:#f4f8ff;border-left:4px solid #1f77b4;padding:.6em 1em;white-space:pre-wrap;
font-size:.95em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0;width:100%}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.url{overflow-wrap:anywhere;font-size:.9em}
img{max-width:100%;border:1px solid #eee}
caption{caption-side:top;text-align:left;font-weight:600;padding:.2em 0 .3em}
.meta{color:#666;font-size:.85em}code{background:#f6f8fa;padding:.1em .3em;border-radius:3px}
"""


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in t.columns)
    cells = [[c.text(r) for c in t.columns] for r in t.rows]
    # Right-aligned where the whole column is numbers (a '+25%' among '$1,500/mo' stays left).
    numeric = [all(_numeric(row[i]) or row[i] == "-" for row in cells) for i in range(len(t.columns))]
    body = []
    for row in cells:
        tds = []
        for text, num in zip(row, numeric, strict=True):
            cls = ' class="num"' if num else ' class="url"' if text.startswith("http") else ""
            tds.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    caption = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    return (
        f"<table id='t-{html.escape(t.name)}'>{caption}<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _html_intro(text: str, verdict: bool) -> str:
    """A section's text: the verdict as a box, '- ' lines as a list, the rest as paragraphs."""
    if verdict:
        return f"<div class='verdict'>{html.escape(text)}</div>"
    out, items = [], []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        out.append(f"<p>{html.escape(line)}</p>")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(out)


def _numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("$", "").replace("%", "").strip()
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def reproduce_script(repro: Reproduction, digest: str) -> str:
    """A POSIX shell script that regenerates the report from its own folder, whatever the
    current directory: the workload is the copy in inputs/, the catalogs are named by absolute
    path and must still have the digest this report was made from."""
    return f"""#!/bin/sh
# Regenerates this report from its inputs (inputs/), from any directory:
#   sh reproduce.sh [OUT_DIR]     (default: this folder, rewritten in place)
# PLANNER: the command that runs the planner (default: planner).
# The catalogs must be those this report read (digest {digest}; each file's hash is in
# inputs/catalog-digest.txt). If they changed, the planner stops and says so: restore them to
# reproduce this report exactly, or run with ANY_CATALOG=1 to regenerate it from today's catalogs.
set -eu
case "${{1:-}}" in
  "") out= ;;
  /*) out=$1 ;;
  *) out=${{PWD%/}}/$1 ;;
esac
cd "$(dirname "$0")"
out=${{out:-.}}
check="--catalog-digest {digest}"
if [ "${{ANY_CATALOG:-}}" = 1 ]; then check=; fi
unset SELFHOST_PLANNER_CATALOG  # the catalog directories are the ones named here
# shellcheck disable=SC2086  # PLANNER and check are word lists
exec ${{PLANNER:-planner}} {shlex.join(repro.args)} $check --out "$out"
"""


def write_report(data: ReportData, out: Path, plots: dict[str, bytes], repro: Reproduction) -> list[Path]:
    """Every file of the report; returns the paths written (all of them, inputs/ included)."""
    for sub in ("", "plots", "tables", "inputs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def text(path: Path, content: str) -> None:
        atomic_write_text(path, content)
        written.append(path)

    for name, png in plots.items():
        path = out / "plots" / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
    parts = sections(data)
    for section in parts:
        for t in section.tables:
            # Every field of the rows, raw (the table shows a selection, formatted): for spreadsheets.
            text(out / "tables" / f"{t.name}.csv", render_csv(t.rows) + "\n")
    for stale in [*(out / "plots").glob("*.png"), *(out / "tables").glob("*.csv")]:
        if stale not in written:  # from an earlier report in this folder: it would mislead
            stale.unlink()
    for name, source in repro.copies.items():
        dest = out / "inputs" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not (dest.exists() and dest.resolve() == source.resolve()):  # regenerated in place
            shutil.copyfile(source, dest)
        written.append(dest)
    # The same numbers as `planner breakeven --format json --all` for this input, and the inputs.
    text(out / "breakeven.json", to_json(data.breakeven) + "\n")
    text(out / "inputs" / "workload.json", to_json(repro.workload) + "\n")
    digests = [
        f"{hashlib.sha256(Path(f).read_bytes()).hexdigest()[:16]}  {f}"
        for f in data.provenance["catalog_files"]
    ]
    text(
        out / "inputs" / "catalog-digest.txt",
        f"digest {data.provenance['catalog_digest']}\n" + "\n".join(digests) + "\n",
    )
    text(out / "reproduce.sh", reproduce_script(repro, data.provenance["catalog_digest"]))
    (out / "reproduce.sh").chmod(0o755)
    text(out / "report.md", _markdown(data, parts))
    text(out / "index.html", _html(data, parts, plots))
    return written


def _markdown(data: ReportData, parts: list[Section]) -> str:
    lines = [
        f"# {data.name}",
        "",
        data.description,
        "",
        f"Generated {data.generated_at:%Y-%m-%d %H:%M} UTC; "
        f"catalog digest `{data.provenance['catalog_digest']}`; reproduce from any directory with "
        f"`sh reproduce.sh` (in this folder it runs `{data.command}`).",
        "",
    ]
    for s in parts:
        lines += [f"## {s.title}", "", s.intro, ""]
        if s.plot:
            lines += [f"![{s.title}](plots/{s.plot}.png)", ""]
        for t in s.tables:
            lines += [f"**{t.caption}**", ""] if t.caption else []
            lines += [render_markdown(t.rows, t.columns) if t.rows else "(none)", ""]
    return "\n".join(lines)


def _html(data: ReportData, parts: list[Section], plots: dict[str, bytes]) -> str:
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(data.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(data.name)}</h1>",
        f"<p>{html.escape(data.description)}</p>",
        f"<p class='meta'>Generated {data.generated_at:%Y-%m-%d %H:%M} UTC &middot; catalog digest "
        f"<code>{html.escape(data.provenance['catalog_digest'])}</code> &middot; reproduce from any "
        f"directory: <code>sh reproduce.sh</code> (in this folder it runs <code>{html.escape(data.command)}"
        "</code>)</p>",
    ]
    for i, s in enumerate(parts):
        out.append(f"<h2 id='s{i + 1}'>{html.escape(s.title)}</h2>")
        out.append(_html_intro(s.intro, verdict=s.verdict))
        if s.plot and s.plot in plots:
            b64 = base64.b64encode(plots[s.plot]).decode()
            out.append(f"<p><img alt='{html.escape(s.title)}' src='data:image/png;base64,{b64}'></p>")
        for t in s.tables:
            out.append(_html_table(t) if t.rows else f"<p>{html.escape(t.caption)}: (none)</p>")
    out.append(
        "<p class='meta'>Prices are published (with their dates and sources); throughputs are measured, "
        "published or estimated as each row says. Data: "
        + html.escape(json.dumps(data.provenance["versions"]))
        + "</p></body></html>"
    )
    return "\n".join(out)
