"""`planner route`: is routing easy queries to a small model and hard ones to a large one worth it?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from planner.commands.common import AppContext, format_option
from planner.commands.inputs import FLEET_OPTIONS, WORKLOAD_OPTIONS, Inputs, apply, with_inputs
from planner.errors import PlannerError
from planner.quality.inputs import (
    CaseFile,
    mix_shares,
    parse_mix,
    pick,
    read_case_texts,
    read_quality_files,
    read_queries,
)

# -- pricing ----------------------------------------------------------------------------------


# -- the command ------------------------------------------------------------------------------


@click.command("route")
@click.option(
    "--quality",
    "quality_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="QualityRecords (gpu-bench eval --out). [default: the catalog's quality/*.jsonl]",
)
@click.option("--small", help="The small (cheap) model, as evaluated. [default: the lower-scoring of two]")
@click.option("--large", help="The large (strong) model, as evaluated. [default: the higher-scoring of two]")
@click.option(
    "--classify",
    type=click.Choice(["tags", "rules", "model"]),
    help="How queries get their class: the cases' tags, the rule-based classifier, or a model. "
    "[default: rules with --queries or --rules, else the cases' tags]",
)
@click.option(
    "--cases",
    "cases_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The case file that was evaluated (rules and model classify its texts).",
)
@click.option(
    "--queries",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A sample of real queries (JSONL with input, or text lines): the traffic mix. [default: the cases]",
)
@click.option("--mix", help="Traffic shares per class (tags), e.g. simple=0.7,complex=0.3.")
@click.option(
    "--rules",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rule file (YAML: threshold, rules with keywords/patterns/min_words/weight). [default: built-in]",
)
@click.option(
    "--threshold", type=float, help="Rule score at or above which a query is complex. [default: the rules']"
)
@click.option(
    "--tier",
    "tier_specs",
    multiple=True,
    help="CLASS=MODEL: which evaluated model serves a class (repeatable). "
    "[default: simple->--small, complex->--large]",
)
@click.option(
    "--price",
    "price_specs",
    multiple=True,
    help="MODEL=SPEC to (re)price an evaluated model: IN/OUT, PROVIDER/MODEL, self-hosted:ID[:QUANT].",
)
@click.option("--classifier-endpoint", help="--classify model: the classifier's base URL.")
@click.option("--classifier-model", help="--classify model: its model name.")
@click.option("--classifier-api-key-env", help="--classify model: variable holding its API key.")
@click.option(
    "--classifier-price",
    default="auto",
    show_default=True,
    help="--classify model: its price (as --price SPEC); self-hosted tiers carry its load instead.",
)
@click.option(
    "--max-quality-drop",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Recommend the cheapest option within this much mean score of the large model.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the quality-cost curve to this PNG: blended quality vs $/month for every option, "
    "the Pareto frontier and the all-small/all-large baselines marked (needs the report extra).",
)
@apply(WORKLOAD_OPTIONS)
@apply(FLEET_OPTIONS)
@format_option
@click.pass_obj
@with_inputs
def route_cmd(app: AppContext, inputs: Inputs, **o: Any) -> None:
    """Route easy queries to a small model and hard ones to a large one: blended monthly cost
    (each tier sized for its share), blended quality (from your eval records, per class), and
    latency, against all-small and all-large, along the routing threshold; the router's own
    cost included.

    Example: planner route --quality q.jsonl --cases cases.jsonl --queries sample.jsonl
    --tokens-per-day 20M
    """
    from planner.report.route import render, route_payload

    setup = build(app, inputs, o)
    payload = route_payload(setup, inputs, o["max_quality_drop"])
    png = None
    if o["plot"]:
        from planner.report.route import plot_png

        png = plot_png(payload)  # before any output: a missing matplotlib fails cleanly
    render(payload, o["fmt"])
    if png is not None:
        write_plot(o["plot"], png)


def write_plot(path: Path, png: bytes) -> None:
    """Write whole (temp file + rename) and say where; the folder is created if need be."""
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(png)
        os.replace(tmp, path)
    except OSError as exc:
        raise PlannerError(f"cannot write --plot {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote the quality-cost plot to {path} ({len(png) / 1024:,.0f} KiB)", err=True)


@dataclass
class Setup:
    small: str
    large: str
    records: dict[str, Any]  # model -> QualityRecord
    tiers: dict[str, dict[str, Any]]  # model -> hosting, catalog_model, quant, price
    mode: str
    setting: str  # how the routed option routes
    traffic_source: str
    classes: list[dict[str, Any]]  # class, share, cases (ids), tier
    options: list[Any]
    router: Any
    notes: list[str]


def build(app: AppContext, inputs: Inputs, o: dict[str, Any]) -> Setup:
    from planner.quality import route as R
    from planner.quality.pricing import tier_pricer
    from planner.quality.stats import DEFAULT_RESAMPLES

    records = read_quality_files(o["quality_files"]) if o["quality_files"] else list(app.catalog.quality)
    if not records:
        raise PlannerError(
            "no quality records: run gpu-bench eval CASES --model ... --out FILE, then give --quality FILE "
            "(or put FILE in a catalog's quality/ folder)"
        )
    cases = read_case_texts(o["cases_file"]) if o["cases_file"] else None
    if cases is not None and not any(r.cases_sha256 == cases.sha256 for r in records):
        files = sorted({f"{r.cases_file} ({r.cases_sha256[:12]})" for r in records})
        raise PlannerError(
            f"--cases {o['cases_file']} (sha256 {cases.sha256[:12]}) is not the file the records were "
            f"measured on: {', '.join(files)}"
        )
    small, large = _small_large(records, o["small"], o["large"], cases.sha256 if cases else None)
    sha = cases.sha256 if cases else None
    if small == large:
        raise PlannerError(f"--small and --large are both {small!r}: routing needs two different models")
    chosen = {small: pick(records, small, sha), large: pick(records, large, sha)}
    tier_map = {}
    for spec in o["tier_specs"]:
        cls, sep, model = spec.partition("=")
        if not sep or not cls or not model:
            raise PlannerError(f"--tier {spec!r}: expected CLASS=MODEL, e.g. --tier code={large}")
        tier_map[cls] = model
        chosen.setdefault(model, pick(records, model, sha))
    R.check_same_cases(chosen)
    first = chosen[small]
    if cases is not None and cases.sha256 != first.cases_sha256:
        raise PlannerError(
            f"--cases {o['cases_file']} is not the file the records were measured on "
            f"(sha256 {cases.sha256[:12]} vs {first.cases_sha256[:12]} of {first.cases_file})"
        )
    tiers = {m: _tier(app, r, o["price_specs"]) for m, r in chosen.items()}
    ev = R.evidence(chosen)
    case_ids = [r.case_id for r in first.results]
    # The cases' own tags are the classes unless real queries (or rules) ask for a classifier.
    mode = o["classify"] or ("rules" if o["queries"] or o["rules"] else "tags")
    if mode in ("rules", "model") and cases is None:
        raise PlannerError(
            f"--classify {mode} reads the cases' texts: give --cases (the file that was evaluated)"
        )
    if cases is not None and (missing := [c for c in case_ids if c not in cases.texts]):
        raise PlannerError(f"--cases has no case {missing[0]!r}, which the records hold")
    if o["mix"] and mode == "rules":
        raise PlannerError(
            "--mix sets shares per class for --classify tags or model; with rules the traffic shares "
            "come from --queries (or the cases): drop --mix, or give --classify tags"
        )
    queries = read_queries(o["queries"]) if o["queries"] else None
    if queries and mode == "tags":
        raise PlannerError(
            "--queries need a classifier to label them: --classify rules or model (with --cases)"
        )
    notes: list[str] = []
    traffic_source = f"{len(queries)} queries in {o['queries']}" if queries else f"the {len(case_ids)} cases"
    options: list[Any] = []
    if mode == "rules":
        from planner.quality import rules as rules_mod

        assert cases is not None
        ruleset = rules_mod.load(o["rules"])
        threshold = o["threshold"] if o["threshold"] is not None else ruleset.threshold
        case_scores = {c: ruleset.score(cases.texts[c]) for c in case_ids}
        traffic = [ruleset.score(q) for q in queries] if queries else list(case_scores.values())
        routed = R.threshold_option(
            case_scores, traffic, small, large, threshold, f"routed: rule score >= {threshold:g}"
        )
        options += [routed, *R.threshold_options(case_scores, traffic, small, large)]
        template = routed.groups
        router = R.RouterCost("rules", note=f"{ruleset.source}: run in your service, no per-request cost")
        classes = [
            {"class": name, "rule": g.label, "share": g.share, "cases": g.cases, "tier": g.model}
            for name, g in zip(("simple", "complex"), routed.groups, strict=True)
        ]
        setting = f"rule score >= {threshold:g} ({ruleset.source})"
    else:
        if mode == "tags":
            case_class = _tag_classes(first, tier_map)
            traffic_labels = None
            router = R.RouterCost("tags", note="classes come with the requests (your tags): no router cost")
        else:
            assert cases is not None
            case_class, traffic_labels, router, unlabeled = _model_labels(
                app, o, cases, case_ids, queries, tiers
            )
            if unlabeled:
                notes.append(f"{unlabeled} item(s) the classifier did not label went to the complex class")
        if o["mix"]:
            known = sorted(set(case_class.values()))
            shares, mix_notes = mix_shares(parse_mix(o["mix"]), known, o["mix"])
            notes += mix_notes
            traffic_source = f"--mix {o['mix']}"
        else:
            source = traffic_labels or [case_class[c] for c in case_ids]
            counts = Counter(source)
            shares = {c: n / len(source) for c, n in counts.items()}
            if mode == "tags":
                notes.append("traffic shares are the cases' own class mix: give --mix with your traffic's")
        names = sorted(set(case_class.values()) | set(shares))
        groups = {c: (shares.get(c, 0.0), tuple(i for i in case_ids if case_class[i] == c)) for c in names}
        bad = set(tier_map) - set(names)
        if bad:
            raise PlannerError(f"--tier names unknown class(es) {sorted(bad)}; the classes: {names}")
        mapping = {c: tier_map.get(c, large if c == "complex" else small) for c in names}
        if tier_map or set(names) <= {"simple", "complex"}:
            options.append(R.mapping_option("routed: " + ", ".join(f"{c}->{m}" for c, m in mapping.items()),
                                            groups, mapping))  # fmt: skip
        options += R.class_options(groups, small, large, ev)
        template = [R.Group(c, share, ids, small) for c, (share, ids) in groups.items()]
        classes = [
            {"class": c, "share": share, "cases": ids, "tier": mapping[c]}
            for c, (share, ids) in groups.items()
        ]
        setting = "; ".join(f"{c} -> {m}" for c, m in mapping.items())
    options = R.dedupe([R.baseline(small, template), R.baseline(large, template), *options])
    w = inputs.workload
    pricer = tier_pricer(app.catalog, w, inputs.filters, inputs.policy, tiers)
    R.evaluate(
        options, ev, w.tokens_per_day, w.requests_per_day, pricer, router, first.confidence, DEFAULT_RESAMPLES
    )
    return Setup(small, large, chosen, tiers, mode, setting, traffic_source, classes, options, router, notes)


def _small_large(
    records: list[Any], small: str | None, large: str | None, sha: str | None
) -> tuple[str, str]:
    if small and large:
        return small, large
    models = sorted({r.model for r in records if sha is None or r.cases_sha256 == sha})
    if small or large or len(models) != 2:
        raise PlannerError(
            f"which models? give --small and --large (evaluated: {', '.join(models) or 'none'})"
        )
    a, b = (pick(records, m, sha) for m in models)
    if (a.summary.mean_score or 0) > (b.summary.mean_score or 0):
        a, b = b, a
    return a.model, b.model


def _tag_classes(record: Any, tier_map: dict[str, str]) -> dict[str, str]:
    """Each case's class from its tags: the tags named by --tier, else the only tag it has."""
    wanted = set(tier_map)
    out = {}
    for r in record.results:
        tags = [t for t in r.tags if not wanted or t in wanted]
        if len(tags) != 1:
            raise PlannerError(
                f"case {r.case_id!r} has {'no class tag' if not tags else f'several class tags {tags}'}: "
                "give each case exactly one class tag (e.g. simple or complex), name the classes with "
                "--tier CLASS=MODEL, or classify by --classify rules --cases FILE"
            )
        out[r.case_id] = tags[0]
    return out


def _model_labels(app: AppContext, o: dict[str, Any], cases: CaseFile, case_ids: list[str],
                  queries: list[str] | None, tiers: dict[str, dict[str, Any]]):  # fmt: skip
    """Label the cases (and the traffic sample) with a model; what that costs per request."""
    import numpy as np

    from planner.quality.classify import ModelClassifier
    from planner.quality.pricing import resolve_price
    from planner.quality.route import RouterCost

    if not o["classifier_endpoint"] or not o["classifier_model"]:
        raise PlannerError("--classify model needs --classifier-endpoint URL and --classifier-model NAME")
    name = o["classifier_model"]
    clf = ModelClassifier(o["classifier_endpoint"], name, o["classifier_api_key_env"])
    case_labels = clf.label_all([cases.texts[c] for c in case_ids])
    query_labels = clf.label_all(queries) if queries else []
    every = case_labels + query_labels
    unlabeled = sum(x.label == "unlabeled" for x in every)

    def cls(label: str) -> str:
        return "complex" if label == "unlabeled" else label

    answered = [x for x in every if x.input_tokens is not None and x.output_tokens is not None]
    tin = float(np.mean([x.input_tokens for x in answered])) if answered else 0.0
    tout = float(np.mean([x.output_tokens for x in answered])) if answered else 0.0
    lat = [x.latency_ms for x in every if x.latency_ms is not None]
    latency = float(np.median(lat)) if lat else 0.0
    if name in tiers:
        t = tiers[name]
    else:
        hosting, catalog_model, quant, price = resolve_price(app.catalog, name, o["classifier_price"])
        t = {"hosting": hosting, "catalog_model": catalog_model, "quant": quant, "price": price}
    note = (
        f"{name} labels each request first: {tin:.0f} in + {tout:.0f} out tokens, {latency:.0f} ms (median)"
    )
    if t["price"].get("basis") == "self-hosted":
        if name not in tiers:
            raise PlannerError(
                f"the classifier {name} is self-hosted but not a tier: give --classifier-price IN/OUT "
                "(or PROVIDER/MODEL), or classify with one of the tiers"
            )
        router = RouterCost("model", tokens_per_request=tin + tout, model=name, latency_ms=latency,
                            note=note + "; its tokens are added to its own tier's load")  # fmt: skip
    else:
        p = t["price"]
        if p.get("input_usd_per_mtok") is None:
            raise PlannerError(
                f"the classifier {name} has no price: give --classifier-price IN/OUT or PROVIDER/MODEL"
            )
        usd = (tin * p["input_usd_per_mtok"] + tout * p["output_usd_per_mtok"]) / 1e6
        router = RouterCost("model", usd_per_request=usd, tokens_per_request=tin + tout, latency_ms=latency,
                            note=note + f"; ${usd * 1000:.4f} per 1k requests")  # fmt: skip
    case_class = {c: cls(x.label) for c, x in zip(case_ids, case_labels, strict=True)}
    traffic = [cls(x.label) for x in query_labels] or None
    return case_class, traffic, router, unlabeled


def _tier(app: AppContext, record: Any, overrides: tuple[str, ...]) -> dict[str, Any]:
    from planner.quality.pricing import resolve_price

    for spec in overrides:
        name, sep, value = spec.partition("=")
        if not sep:
            raise PlannerError(f"--price {spec!r}: expected MODEL=SPEC, e.g. {record.model}=0.15/0.60")
        if name == record.model:
            hosting, catalog_model, quant, price = resolve_price(app.catalog, record.model, value)
            return {"hosting": hosting, "catalog_model": catalog_model, "quant": quant, "price": price}
    return {
        "hosting": record.hosting,
        "catalog_model": record.catalog_model,
        "quant": record.quant,
        "price": record.price.model_dump(mode="json"),
    }
