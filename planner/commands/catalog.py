"""`planner catalog ...`: list, show, validate, add-model, import-vllm-bench."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from planner.commands.common import AppContext, format_option
from planner.errors import PlannerError
from planner.report.render import Column, render_csv, render_mapping, render_rows, to_json

KIND_ALIASES = {
    "models": "models",
    "model": "models",
    "gpus": "gpus",
    "gpu": "gpus",
    "offers": "offers",
    "offer": "offers",
    "api": "api",
    "apis": "api",
    "measurements": "measurements",
    "measurement": "measurements",
    "quality": "quality",
}


def _kind(value: str) -> str:
    kind = KIND_ALIASES.get(value.lower())
    if kind is None:
        raise PlannerError(
            f"unknown kind {value!r}; use one of: models, gpus, offers, api, measurements, quality"
        )
    return kind


def _usd(value: float) -> str:
    """Prices with at least cents and no false precision: 0.40, 0.075, 12.29."""
    if value >= 1:
        return f"{value:,.2f}"
    text = f"{value:.4f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.split(".")[1]))


# -- rows per kind: plain dicts, so json/csv carry every field and tables pick columns ---------


def _model_row(m: Any) -> dict[str, Any]:
    from planner.perf.params import param_counts

    p = param_counts(m.architecture)
    row = m.model_dump(mode="json")
    row["params_b"] = round(p.total / 1e9, 3)
    row["active_params_b"] = round(p.active / 1e9, 3)
    return row


MODEL_COLUMNS = [
    Column("id", "id"),
    Column("params_b", "params (B)", ".2f"),
    Column("active_params_b", "active (B)", ".2f"),
    Column("architecture.num_layers", "layers"),
    Column("architecture.num_kv_heads", "kv heads"),
    Column("architecture.max_context_tokens", "context", ","),
    Column("license", "license"),
    Column("hf_repo", "hf repo"),
]
GPU_COLUMNS = [
    Column("id", "id"),
    Column("memory_gib", "exposed GiB", ".2f"),
    Column("datasheet_memory_gb", "datasheet GB", "g"),
    Column("bandwidth_gb_per_s", "bandwidth (GB/s)", ",.0f"),
    Column("bf16_dense_tflops", "bf16 TFLOPS", "g"),
    Column("fp8_dense_tflops", "fp8 TFLOPS", "g"),
    Column("interconnect.kind", "link"),
    Column("interconnect.bandwidth_gb_per_s", "link GB/s", "g"),
    Column("tdp_w", "TDP (W)", "g"),
    Column("source.checked_at", "checked"),
]
OFFER_COLUMNS = [
    Column("provider", "provider"),
    Column("instance", "instance"),
    Column("region", "region"),
    Column("gpu", "gpu"),
    Column("gpu_count", "GPUs"),
    Column("usd_per_hour.on_demand", "on-demand $/h", _usd),
    Column("usd_per_hour.spot", "spot $/h", _usd),
    Column("usd_per_hour.reserved_1y", "1y $/h", _usd),
    Column("usd_per_hour.reserved_3y", "3y $/h", _usd),
    Column("usd_per_gpu_hour_on_demand", "$/GPU-h", _usd),
    Column("checked_at", "checked"),
]
API_COLUMNS = [
    Column("provider", "provider"),
    Column("model", "model"),
    Column("input_usd_per_mtok", "input $/1M", _usd),
    Column("cached_input_usd_per_mtok", "cached $/1M", _usd),
    Column("output_usd_per_mtok", "output $/1M", _usd),
    Column("batch_discount", "batch off", lambda v: f"{v:.0%}"),
    Column("context_limit_tokens", "context", ","),
    Column("price_date", "price date"),
    Column("open_model", "open model"),
]
MEASUREMENT_COLUMNS = [
    Column("id", "id"),
    Column("basis", "basis"),
    Column("status", "status"),
    Column("model", "model"),
    Column("quant", "quant"),
    Column("engine.name", "engine"),
    Column("device", "device"),
    Column("gpu", "gpu"),
    Column("gpu_count", "GPUs"),
    Column("load", "load"),
    Column("input_tokens", "in", ".0f"),
    Column("output_tokens", "out", ".0f"),
    Column("output_tokens_per_s", "out tok/s", ",.0f"),
    Column("ttft_ms.p50", "TTFT p50 ms", ",.0f"),
    Column("tpot_ms.p50", "TPOT p50 ms", ",.1f"),
]


QUALITY_COLUMNS = [
    Column("id", "id"),
    Column("model", "model"),
    Column("hosting", "hosting"),
    Column("served_model", "served as"),
    Column("cases_file", "cases"),
    Column("summary.cases", "n"),
    Column("summary.mean_score", "mean", ".3f"),
    Column("summary.pass_rate", "pass", ".0%"),
    Column("summary.cost_per_case_usd", "$/case", ".6f"),
    Column("measured_at", "measured"),
]


def _quality_row(q: Any) -> dict[str, Any]:
    row = q.model_dump(mode="json", exclude={"env", "results"})
    row["measured_at"] = row["measured_at"][:10]
    return row


def _offer_row(o: Any) -> dict[str, Any]:
    row = o.model_dump(mode="json")
    row["usd_per_gpu_hour_on_demand"] = o.usd_per_gpu_hour("on_demand")
    return row


def _measurement_row(m: Any) -> dict[str, Any]:
    row = m.model_dump(mode="json", exclude={"env"})
    load = "batch" if m.batch_size else ("conc" if m.concurrency else "rate")
    row["load"] = f"{load} {m.load:g}"
    return row


def _matches(row: dict[str, Any], text: str | None) -> bool:
    if not text:
        return True
    hay = " ".join(
        str(row.get(k, "")) for k in ("id", "name", "model", "provider", "instance", "gpu", "hf_repo")
    )
    return text.lower() in hay.lower()


@click.group()
def catalog() -> None:
    """Browse, validate and extend the catalogs (models, GPUs, cloud offers, API prices, measurements)."""


@catalog.command("list")
@click.argument("kind", required=False)
@click.option("--search", help="Only rows whose id, name, model, provider or GPU contains this text.")
@click.option("--provider", help="Only this provider (offers, api).")
@click.option("--gpu", help="Only this GPU (offers, measurements).")
@click.option("--history", is_flag=True, help="Offers: include old prices kept as history.")
@click.option("--deprecated", is_flag=True, help="API: include models the provider deprecated.")
@format_option
@click.pass_obj
def list_cmd(
    app: AppContext,
    kind: str | None,
    search: str | None,
    provider: str | None,
    gpu: str | None,
    history: bool,
    deprecated: bool,
    fmt: str,
) -> None:
    """List KIND: models, gpus, offers, api, measurements or quality (without KIND: a summary)."""
    cat = app.catalog
    if kind is None:
        rows = [
            {"kind": "models", "count": len(cat.models)},
            {"kind": "gpus", "count": len(cat.gpus)},
            {"kind": "offers", "count": len(cat.current_offers())},
            {"kind": "api", "count": len(cat.api_prices)},
            {"kind": "measurements", "count": len(cat.measurements)},
            {"kind": "quality", "count": len(cat.quality)},
        ]
        click.echo(render_rows(rows, [Column("kind", "kind"), Column("count", "rows")], fmt))
        if fmt == "table":
            click.echo("\nfrom: " + ", ".join(str(d) for d in cat.directories))
        return
    kind = _kind(kind)
    _check_filters(cat, kind, provider, gpu)
    if kind == "models":
        rows, cols = [_model_row(m) for m in cat.models.values()], MODEL_COLUMNS
    elif kind == "gpus":
        rows, cols = [g.model_dump(mode="json") for g in cat.gpus.values()], GPU_COLUMNS
    elif kind == "offers":
        offers = cat.offers if history else cat.current_offers()
        rows = [
            _offer_row(o)
            for o in offers
            if (not gpu or o.gpu == gpu) and (not provider or o.provider == provider)
        ]
        cols = OFFER_COLUMNS + ([Column("history", "history")] if history else [])
    elif kind == "api":
        prices = [p for p in cat.api_prices if (deprecated or not p.deprecated)]
        rows = [p.model_dump(mode="json") for p in prices if not provider or p.provider == provider]
        cols = API_COLUMNS
    elif kind == "quality":
        rows, cols = [_quality_row(q) for q in cat.quality], QUALITY_COLUMNS
    else:
        rows = [_measurement_row(m) for m in cat.measurements if not gpu or m.gpu == gpu]
        cols = MEASUREMENT_COLUMNS
    rows = [r for r in rows if _matches(r, search)]
    if fmt == "csv" and not rows:
        click.echo(render_csv([], cols))  # a header, so a CSV reader sees the columns, not a blank line
    else:
        click.echo(render_rows(rows, cols, fmt))
    if fmt == "table" and not rows:
        click.echo("(no rows match)", err=True)


_FILTERS = {"provider": ("offers", "api"), "gpu": ("offers", "measurements")}


def _check_filters(cat: Any, kind: str, provider: str | None, gpu: str | None) -> None:
    """A filter on an id nobody has is a typo, not an empty answer: say so, with close matches."""
    from planner.errors import UnknownIdError

    for name, value in (("provider", provider), ("gpu", gpu)):
        if value is not None and kind not in _FILTERS[name]:
            raise PlannerError(f"--{name} filters {' and '.join(_FILTERS[name])}, not {kind}")
    if gpu is not None and gpu not in cat.gpus:
        raise UnknownIdError("GPU", gpu, cat.gpus, "planner catalog list gpus")
    if provider is not None:
        known = {o.provider for o in cat.offers} if kind == "offers" else {p.provider for p in cat.api_prices}
        if provider not in known:
            raise UnknownIdError(f"{'cloud' if kind == 'offers' else 'API'} provider", provider, known)


def _show_pairs(kind: str, obj: Any) -> list[tuple[str, str]]:
    if kind == "api":
        from planner.catalog.api_names import dated_versions

        dated = dated_versions(obj.model, obj.aliases, getattr(obj, "name_prefixes", None) or ())
        pinned = obj.pinned_version or (
            f"one of {', '.join(dated)} (same price; the data does not say which the name points to)"
            if dated
            else "not known to the price data"
        )
        pct = f"{obj.batch_discount:.0%} off input and output" if obj.batch_discount else "-"
        overrides = obj.overrides or {}

        def mark(text: str, *fields: str) -> str:
            return f"{text}  [override]" if any(f in overrides for f in fields) else text

        pairs = [
            ("provider", obj.provider),
            ("model", obj.model),
            ("pinned version", pinned),
            ("input $/1M tokens", mark(f"{obj.input_usd_per_mtok:.2f}", "input_usd_per_mtok")),
            (
                "cached input $/1M tokens",
                mark(
                    "-" if obj.cached_input_usd_per_mtok is None else f"{obj.cached_input_usd_per_mtok:g}",
                    "cached_input_usd_per_mtok",
                ),
            ),
            ("output $/1M tokens", mark(f"{obj.output_usd_per_mtok:.2f}", "output_usd_per_mtok")),
            ("batch discount", mark(pct, "batch_discount")),
            (
                "context limit",
                mark(
                    "-" if obj.context_limit_tokens is None else f"{obj.context_limit_tokens:,} tokens",
                    "context_limit_tokens",
                ),
            ),
            (
                "long-context tier",
                "-"
                if obj.long_context_threshold_tokens is None
                else f"prompts over {obj.long_context_threshold_tokens:,} tokens pay more (not applied)",
            ),
            ("hosted open model", obj.open_model or "-"),
            (
                "price date",
                mark(str(obj.price_date) if obj.price_date else "not dated in the price data", "price_date"),
            ),
            ("checked at", str(obj.checked_at)),
            ("source", obj.source),
        ]
        by_source: dict[str, list[str]] = {}
        for field, where in overrides.items():
            by_source.setdefault(where, []).append(field)
        pairs += [(f"override of {', '.join(fields)}", where) for where, fields in by_source.items()]
        if obj.base_source:
            pairs.append(("other fields from", obj.base_source))
        return pairs
    flat = _flatten_pairs(obj.model_dump(mode="json", exclude_none=True))
    if kind == "models":
        from planner.perf.params import param_counts

        p = param_counts(obj.architecture)
        flat += [
            ("params (computed)", f"{p.total / 1e9:.3f} B"),
            ("active params (computed)", f"{p.active / 1e9:.3f} B"),
            ("embedding + lm_head", f"{(p.embedding + p.lm_head) / 1e9:.3f} B"),
        ]
    return flat


def _flatten_pairs(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.extend(_flatten_pairs(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            out.append((f"{prefix}{key}", ", ".join(str(v) for v in value) or "-"))
        else:
            out.append((f"{prefix}{key}", str(value)))
    return out


@catalog.command("show")
@click.argument("kind")
@click.argument("item_id", metavar="ID")
@format_option
@click.pass_obj
def show_cmd(app: AppContext, kind: str, item_id: str, fmt: str) -> None:
    """Show one row: `show model llama-3.1-8b-instruct`, `show gpu h100-sxm`, `show api gpt-4o-mini`,
    `show measurement ID`, `show offer PROVIDER/INSTANCE`."""
    cat = app.catalog
    kind = _kind(kind)
    if kind == "models":
        obj = cat.model(item_id)
    elif kind == "gpus":
        obj = cat.gpu(item_id)
    elif kind == "api":
        obj = cat.api_price(item_id)
    elif kind == "measurements":
        obj = cat.measurement(item_id)
    else:
        provider, _, instance = item_id.partition("/")
        found = [o for o in cat.current_offers() if o.provider == provider and o.instance == instance]
        if not found:
            from planner.errors import UnknownIdError

            known = [f"{o.provider}/{o.instance}" for o in cat.current_offers()]
            raise UnknownIdError("offer", item_id, known, "give PROVIDER/INSTANCE")
        if fmt == "json":
            click.echo(to_json([o.model_dump(mode="json") for o in found]))
            return
        for o in found:
            click.echo(render_mapping(_show_pairs(kind, o), fmt))
        return
    pairs = _show_pairs(kind, obj)
    if kind == "api" and item_id.rpartition("/")[2].lower() != obj.model.lower():
        pairs.insert(2, ("asked for", item_id))  # a dated version or alias resolved to this row
    click.echo(render_mapping(pairs, fmt, obj.model_dump(mode="json")))


@catalog.command("validate")
@click.argument("directories", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def validate_cmd(app: AppContext, directories: tuple[Path, ...]) -> None:
    """Check every catalog file (bundled, user, and DIRECTORIES) and report every problem at once.

    Exit code 0 when all is well, 2 when anything is wrong.
    """
    from planner.catalog.catalog import Catalog, bundled_catalog_dir, user_catalog_dirs

    dirs = [
        bundled_catalog_dir(),
        *user_catalog_dirs(app.catalog_dirs),
        *user_catalog_dirs(directories, origin="the DIRECTORIES of catalog validate", environment=False),
    ]
    cat = Catalog(dirs)
    issues = cat.validate()
    for issue in issues:
        click.echo(str(issue), err=True)
    if issues:
        raise PlannerError(
            f"{len(issues)} problem{'s' if len(issues) != 1 else ''} in the catalog (listed above)"
        )
    counts = {
        k: len(cat.load(k).rows) for k in ("models", "gpus", "offers", "api", "measurements", "quality")
    }
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    click.echo(f"catalog OK: {summary}")
    click.echo("from: " + ", ".join(str(d) for d in dirs))


def _target_dir(app: AppContext, to: Path | None) -> Path:
    if to is not None:
        return to
    from planner.catalog.catalog import user_catalog_dirs

    dirs = user_catalog_dirs(app.catalog_dirs)
    if not dirs:
        raise PlannerError(
            "no user catalog directory: pass --to DIR (it is created), --catalog DIR, "
            "or set $SELFHOST_PLANNER_CATALOG"
        )
    return dirs[-1]


@catalog.command("add-model")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--id", "model_id", help="Catalog id (default: from --hf-repo, _name_or_path, or the folder).")
@click.option("--name", help="Display name.")
@click.option("--license", "license_", default="unknown", show_default=True)
@click.option(
    "--hf-repo", help="Hugging Face repository (default: the config's _name_or_path; else left unset)."
)
@click.option(
    "--to", type=click.Path(file_okay=False, path_type=Path), help="User catalog directory to add to."
)
@click.option("--replace", is_flag=True, help="Replace a model with the same id in that directory.")
@click.pass_obj
def add_model_cmd(
    app: AppContext,
    config: Path,
    model_id: str | None,
    name: str | None,
    license_: str,
    hf_repo: str | None,
    to: Path | None,
    replace: bool,
) -> None:
    """Add a model from a Hugging Face CONFIG (config.json, or its folder) to a user catalog."""
    import yaml

    from planner.catalog.catalog import Catalog, bundled_catalog_dir
    from planner.catalog.files import atomic_write_text
    from planner.catalog.hf_config import model_from_config
    from planner.perf.params import param_counts

    spec = model_from_config(config, model_id, name, license_, hf_repo)
    target = _target_dir(app, to)
    path = target / "models.yaml"
    existing = Catalog([target]).load("models") if path.exists() else None
    if existing and existing.issues:
        raise PlannerError(
            f"{path} has problems; fix them first:\n" + "\n".join(f"  {i}" for i in existing.issues)
        )
    if existing and spec.id in existing.rows and not replace:
        raise PlannerError(f"{path} already has a model {spec.id!r}; pass --replace or choose another --id")
    if spec.id in Catalog([bundled_catalog_dir()]).models:
        click.echo(f"note: {spec.id!r} overrides the bundled model of that id", err=True)
    rows = [] if existing is None else [m for k, m in existing.rows.items() if k != spec.id]
    rows = sorted([*rows, spec], key=lambda m: m.id)
    doc = {"schema_version": 1, "models": [m.model_dump(mode="json", exclude_none=True) for m in rows]}
    header = "# User model catalog (planner catalog add-model). Schema: catalogs/schemas/models.schema.json\n"
    atomic_write_text(path, header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    p = param_counts(spec.architecture)
    click.echo(f"added {spec.id} ({p.total / 1e9:.2f}B params, {spec.architecture.model_type}) to {path}")
    if spec.source.note:
        click.echo(f"notes: {spec.source.note}")


@catalog.command("import-vllm-bench")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--gpu", required=True, help="Catalog GPU id the benchmark ran on (e.g. h100-sxm).")
@click.option("--gpu-count", default=1, show_default=True, type=click.IntRange(1))
@click.option("--tp", "tensor_parallel", default=1, show_default=True, type=click.IntRange(1))
@click.option("--quant", default="bf16", show_default=True, help="Quantization format of the served model.")
@click.option(
    "--model", "model_id", help="Catalog model id (default: matched by the file's model_id = hf_repo)."
)
@click.option("--engine-version", help="vLLM version that served the benchmark.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSONL to append to.")
@click.option("--to", type=click.Path(file_okay=False, path_type=Path), help="User catalog directory.")
@format_option
@click.pass_obj
def import_vllm_bench_cmd(
    app: AppContext,
    files: tuple[Path, ...],
    gpu: str,
    gpu_count: int,
    tensor_parallel: int,
    quant: str,
    model_id: str | None,
    engine_version: str | None,
    out: Path | None,
    to: Path | None,
    fmt: str,
) -> None:
    """Turn `vllm bench serve --save-result` FILES into measurement records (basis=imported).

    Records go to --out, or to DIR/measurements/imported-vllm-bench.jsonl of a user catalog.
    """
    from planner.catalog.files import append_jsonl
    from planner.catalog.vllm_bench import ImportContext, record_from_vllm_bench
    from planner.records import QUANT_FORMATS

    cat = app.catalog
    cat.gpu(gpu)
    if model_id:
        cat.model(model_id)
    if quant not in QUANT_FORMATS:
        from planner.errors import UnknownIdError

        raise UnknownIdError("quantization format", quant, QUANT_FORMATS)
    ctx = ImportContext(gpu, gpu_count, tensor_parallel, quant, model_id, engine_version)
    by_repo = {m.hf_repo.lower(): m.id for m in cat.models.values() if m.hf_repo}
    records = [record_from_vllm_bench(f, ctx, by_repo) for f in files]
    target = out or _target_dir(app, to) / "measurements" / "imported-vllm-bench.jsonl"
    # Never append a record twice: not one the catalog has, one already in the target file
    # (which need not be a --catalog directory), or the same file given twice.
    known = {m.id for m in cat.measurements} | _ids_in_jsonl(target)
    fresh = []
    for r in records:
        if r.id not in known:
            known.add(r.id)
            fresh.append(r)
    append_jsonl(target, [r.model_dump(mode="json", exclude_none=True) for r in fresh])
    click.echo(render_rows([_measurement_row(r) for r in records], MEASUREMENT_COLUMNS, fmt))
    skipped = len(records) - len(fresh)
    click.echo(
        f"appended {len(fresh)} record(s) to {target}"
        + (f"; {skipped} already there or in the catalog" if skipped else ""),
        err=True,
    )


def _ids_in_jsonl(path: Path) -> set[str]:
    """Record ids already in a JSONL file (lines that do not parse are left to catalog validate)."""
    from planner.catalog.files import CatalogFileError, read_jsonl_rows

    if not path.is_file():
        return set()
    try:
        return {str(row.data["id"]) for row in read_jsonl_rows(path) if "id" in row.data}
    except CatalogFileError as exc:
        raise PlannerError(str(exc)) from None
