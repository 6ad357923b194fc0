"""planner route: routing arithmetic on hand-computed examples, each classifier, self-hosted tiers
sized like planner capacity, and clear errors. Records are built here from known scores."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from planner.quality import route as R
from planner.quality.rules import build as build_rules
from planner.quality.stats import bootstrap_ci, summarize
from planner.records import QualityRecord
from planner.units import DAYS_PER_MONTH

CASES = [
    {"id": "a", "input": "What is the capital of France?", "tags": ["simple"]},
    {"id": "b", "input": "Translate hello to Spanish", "tags": ["simple"]},
    {"id": "c", "input": "Say hi", "tags": ["simple"]},
    {"id": "d", "input": "Explain why the proof fails and compare both approaches", "tags": ["complex"]},
    {"id": "e", "input": "Fix this code: ```def f(x): return x```", "tags": ["complex"]},
]


def write_cases(tmp_path: Path) -> tuple[Path, str]:
    text = "".join(json.dumps(c) + "\n" for c in CASES)
    path = tmp_path / "cases.jsonl"
    path.write_text(text)
    return path, hashlib.sha256(text.encode()).hexdigest()


def record(
    model: str, scores: list[float | None], latency: list[float], sha: str, price: dict
) -> QualityRecord:
    results = []
    for case, score, lat in zip(CASES, scores, latency, strict=True):
        r = {"case_id": case["id"], "tags": case["tags"], "scorer": "judge", "output": "x", "latency_ms": lat}
        r |= {"input_tokens": 10, "output_tokens": 5}
        r |= {"score": score} if score is not None else {"unscored_reason": "judge reply unreadable"}
        results.append(r)
    views = [
        SimpleNamespace(**{"error": None, "cost_usd": None, **r, "score": r.get("score")}) for r in results
    ]
    return QualityRecord.model_validate(
        {
            "id": f"{model}-20261129",
            "run_key": f"{model}-key-0000",
            "cases_file": "cases.jsonl",
            "cases_sha256": sha,
            "endpoint": "http://127.0.0.1:8000/v1",
            "model": model,
            "hosting": "api",
            "price": price,
            "max_tokens": 64,
            "temperature": 0.0,
            "pass_threshold": 0.7,
            "confidence": 0.95,
            "bootstrap_resamples": 2000,
            "summary": summarize(views),
            "results": results,
            "measured_at": dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
        }
    )


SMALL_PRICE = {"basis": "given", "input_usd_per_mtok": 0.1, "output_usd_per_mtok": 0.4}
LARGE_PRICE = {"basis": "given", "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10.0}
SMALL_SCORES = [1.0, 1.0, 0.5, 0.0, 0.2]
LARGE_SCORES = [1.0, 1.0, 1.0, 0.9, 0.8]
SMALL_LAT = [100.0, 110.0, 120.0, 130.0, 140.0]
LARGE_LAT = [500.0, 510.0, 520.0, 530.0, 540.0]


@pytest.fixture
def quality(tmp_path: Path) -> tuple[Path, Path]:
    cases, sha = write_cases(tmp_path)
    path = tmp_path / "q.jsonl"
    recs = [
        record("small", SMALL_SCORES, SMALL_LAT, sha, SMALL_PRICE),
        record("large", LARGE_SCORES, LARGE_LAT, sha, LARGE_PRICE),
    ]
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in recs))
    return path, cases


def api_usd(tokens_per_day: float, p_in: float, p_out: float, inp: float = 1500, out: float = 300) -> float:
    """A month of tokens at per-1M prices, split input/output by the request shape (hand formula)."""
    month = tokens_per_day * DAYS_PER_MONTH
    return month * (inp / (inp + out) * p_in + out / (inp + out) * p_out) / 1e6


def options_by_name(payload: dict) -> dict[str, dict]:
    return {o["option"]: o for o in payload["options"]}


def test_tags_routing_by_hand(invoke, quality) -> None:
    q, _ = quality
    args = ["--tokens-per-day", "10M", "--mix", "simple=0.8,complex=0.2", "--format", "json"]
    result = invoke("route", "--quality", str(q), *args)
    assert result.exit_code == 0, result.output
    p = json.loads(result.output)
    assert (p["small"], p["large"]) == ("small", "large")  # the lower- and higher-scoring of two
    opts = options_by_name(p)
    routed = opts[p["routed"]]
    # quality = 0.8 x mean(small on simple: 1, 1, .5) + 0.2 x mean(large on complex: .9, .8)
    assert routed["quality"] == pytest.approx(0.8 * 2.5 / 3 + 0.2 * 0.85)
    assert routed["to_large"] == pytest.approx(0.2)
    # cost = each tier's share of 10M tokens/day at its price
    expect = api_usd(2e6, 2.5, 10) + api_usd(8e6, 0.1, 0.4)
    assert routed["usd_per_month"] == pytest.approx(expect)
    assert routed["router_usd_per_month"] == 0  # tags come with the requests
    small, large = opts["all small"], opts["all large"]
    assert small["quality"] == pytest.approx(0.8 * 2.5 / 3 + 0.2 * 0.1)  # weighted by traffic, not cases
    assert large["quality"] == pytest.approx(0.8 * 1.0 + 0.2 * 0.85)
    assert large["usd_per_month"] == pytest.approx(api_usd(10e6, 2.5, 10))
    assert routed["saving_vs_large"] == pytest.approx(1 - expect / large["usd_per_month"])
    for o in p["options"]:
        if o["quality"] is not None:
            assert o["ci_low"] <= o["quality"] <= o["ci_high"]
    # Latency: the traffic-weighted mixture: 80% spread over 3 small cases, 20% over 2 large ones.
    assert routed["latency_p50_ms"] == 110.0
    assert routed["latency_p95_ms"] == 540.0
    # Recommended: the cheapest within 0.02 of all-large: routed is 0.8*0.8333+0.17 = 0.837 vs 0.97.
    assert p["recommended"] == "all large"
    classes = {c["class"]: c for c in p["classes"]}
    assert classes["simple"]["quality:small"] == pytest.approx(2.5 / 3)
    assert classes["complex"]["cases"] == 2


def test_the_recommendation_moves_with_the_tolerance(invoke, quality) -> None:
    q, _ = quality
    args = ["route", "--quality", str(q), "--tokens-per-day", "10M", "--mix", "simple=0.8,complex=0.2"]
    p = json.loads(invoke(*args, "--max-quality-drop", "0.2", "--format", "json").output)
    assert p["recommended"] == p["routed"]
    table = invoke(*args, "--max-quality-drop", "0.2").output
    assert "Cheapest option within 0.2 of large's quality: routed" in table
    assert "large 20%: $" in table


def test_rules_routing_with_a_traffic_sample(invoke, quality, tmp_path: Path) -> None:
    q, cases = quality
    queries = tmp_path / "queries.txt"
    # 3 of 4 queries carry code markers (rule weight 2): 75% of traffic scores >= 2.
    queries.write_text("hello\n" + "here: ```x = 1```\n" * 3)
    result = invoke(
        "route", "--quality", str(q), "--cases", str(cases), "--queries", str(queries),
        "--tokens-per-day", "1M", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    p = json.loads(result.output)
    assert p["classify"] == "rules"
    routed = options_by_name(p)[p["routed"]]
    assert routed["to_large"] == pytest.approx(0.75)
    # Built-in rules: only case e (code) scores >= 2; d scores 1 (reasoning words), a-c 0.
    assert routed["quality"] == pytest.approx(0.25 * np.mean([1, 1, 0.5, 0.0]) + 0.75 * 0.8)
    assert routed["usd_per_month"] == pytest.approx(api_usd(0.75e6, 2.5, 10) + api_usd(0.25e6, 0.1, 0.4))
    thresholds = [o["setting"] for o in p["options"] if o["kind"] == "curve"]
    assert ">= 1" in thresholds  # the curve walks the thresholds that change the routing


def test_a_rules_file_and_its_errors(invoke, quality, tmp_path: Path) -> None:
    q, cases = quality
    rules = tmp_path / "rules.yaml"
    rules.write_text("threshold: 1\nrules:\n  - name: greeting\n    keywords: [hi, hello]\n    weight: 1\n")
    p = json.loads(
        invoke("route", "--quality", str(q), "--cases", str(cases), "--rules", str(rules),
               "--tokens-per-day", "1M", "--format", "json").output
    )  # fmt: skip
    routed = options_by_name(p)[p["routed"]]
    assert routed["to_large"] == pytest.approx(2 / 5)  # b ("... hello ...") and c ("Say hi")
    rules.write_text("rules:\n  - name: bad\n    patterns: ['(']\n")
    bad = invoke(
        "route", "--quality", str(q), "--cases", str(cases), "--rules", str(rules), "--tokens-per-day", "1M"
    )
    assert bad.exit_code == 2
    assert "rules[0]: pattern '(' is not a valid regular expression" in bad.output
    rules.write_text("threshold: 1\nrules:\n  - name: a\n    keywords: [hi\n  - name: b\n")
    bad = invoke(
        "route", "--quality", str(q), "--cases", str(cases), "--rules", str(rules), "--tokens-per-day", "1M"
    )
    assert bad.exit_code == 2
    (line,) = bad.output.strip().splitlines()  # one line: file:line: problem
    assert line.startswith(f"error: {rules}:5: not valid YAML: expected ',' or ']'")
    assert "flow sequence that starts on line 4" in line
    rules.write_text("rules:\n  - name: greeting\n    keywords: [hello]\n")
    mixed = invoke(
        "route", "--quality", str(q), "--cases", str(cases), "--rules", str(rules), "--mix", "simple=1",
        "--tokens-per-day", "1M",
    )  # fmt: skip
    assert mixed.exit_code == 2
    assert "--mix sets shares per class for --classify tags or model" in mixed.output


def test_cases_alone_are_classed_by_their_own_tags(invoke, quality) -> None:
    """Without --queries or --rules, the classes are the tags the cases carry (not the rules)."""
    q, cases = quality
    p = json.loads(
        invoke("route", "--quality", str(q), "--cases", str(cases), "--tokens-per-day", "1M",
               "--format", "json").output
    )  # fmt: skip
    assert p["classify"] == "tags"
    with_tags = json.loads(
        invoke("route", "--quality", str(q), "--classify", "tags", "--cases", str(cases),
               "--tokens-per-day", "1M", "--format", "json").output
    )  # fmt: skip
    assert options_by_name(p) == options_by_name(with_tags)


def test_mix_shares_sum_to_one_or_name_every_class(invoke, quality) -> None:
    q, _ = quality

    def route(mix: str) -> dict:
        result = invoke(
            "route", "--quality", str(q), "--tokens-per-day", "10M", "--mix", mix, "--format", "json"
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    weights = route("simple=7,complex=3")  # a weight for every class: normalised, and said
    assert {c["class"]: c["share"] for c in weights["classes"]} == pytest.approx(
        {"simple": 0.7, "complex": 0.3}
    )
    assert any(
        "weights (sum 10) taken as shares: complex 30.0%, simple 70.0%" in a for a in weights["assumptions"]
    )
    only = route("simple=1")  # sums to 1: the class left out gets no traffic, and that is said
    assert {c["class"]: c["share"] for c in only["classes"]} == {"simple": 1.0, "complex": 0.0}
    assert any("--mix simple=1: no traffic for complex" in a for a in only["assumptions"])
    assert route("simple=0.7,complex=0.3")["classes"] == weights["classes"]


def test_dotted_model_names_show_their_numbers(invoke, tmp_path: Path) -> None:
    _, sha = write_cases(tmp_path)
    path = tmp_path / "q.jsonl"
    recs = [
        record("llama-3.1-8b-instruct", SMALL_SCORES, SMALL_LAT, sha, SMALL_PRICE),
        record("gpt-4.1", LARGE_SCORES, LARGE_LAT, sha, LARGE_PRICE),
    ]
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in recs))
    args = ["route", "--quality", str(path), "--tokens-per-day", "10M", "--mix", "simple=0.8,complex=0.2"]
    for fmt in ("table", "markdown"):
        result = invoke(*args, "--format", fmt)
        assert result.exit_code == 0, result.output
        header = next(line for line in result.output.splitlines() if "q llama-3.1-8b-instruct" in line)
        assert "q gpt-4.1" in header
        rows = {
            cells[0]: cells
            for line in result.output.splitlines()
            if (cells := line.replace("|", " ").split()) and cells[0] in ("simple", "complex")
        }
        # class, traffic, cases, served by, q small, q large: the numbers, not "-"
        assert rows["simple"][-2:] == ["0.833", "1.000"], result.output
        assert rows["complex"][-2:] == ["0.100", "0.850"], result.output


def test_a_self_hosted_tier_is_sized_like_planner_capacity(invoke, quality) -> None:
    q, _ = quality
    args = ["--tokens-per-day", "200M", "--gpu", "h100-sxm", "--pricing", "on_demand"]
    result = invoke(
        "route", "--quality", str(q), "--mix", "simple=0.8,complex=0.2",
        "--price", "small=self-hosted:llama-3.1-8b-instruct:bf16", *args, "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    routed = options_by_name(json.loads(result.output))["routed: complex->large, simple->small"]
    small_tier = next(t for t in routed["tiers"] if t["model"] == "small")
    assert small_tier["tokens_per_day"] == pytest.approx(160e6)
    cap = invoke(
        "capacity", "--tokens-per-day", "160M", "--model", "llama-3.1-8b-instruct", "--quant", "bf16",
        "--gpu", "h100-sxm", "--pricing", "on_demand", "--format", "json",
    )  # fmt: skip
    cheapest = json.loads(cap.output)["options"][0]
    assert small_tier["usd_per_month"] == pytest.approx(cheapest["usd_per_month"])
    assert "self-hosted llama-3.1-8b-instruct bf16" in small_tier["how"]


def test_unscored_cases_are_left_out_not_zero(tmp_path: Path) -> None:
    _, sha = write_cases(tmp_path)
    small = record("small", [1.0, None, 0.5, 0.0, 0.2], SMALL_LAT, sha, SMALL_PRICE)
    ev = R.evidence({"small": small})
    group = R.Group("simple", 1.0, ("a", "b", "c"), "small")
    quality, ci, unmeasured = R.blend_quality([group], ev)
    assert quality == pytest.approx(0.75)  # (1 + .5) / 2: b is unscored
    assert not unmeasured
    assert ci is not None
    none = R.Group("complex", 0.5, ("b",), "small")
    assert R.blend_quality([none], ev)[2] == ["complex"]  # no evidence: unmeasured, not 0


def test_frontier_and_recommendation() -> None:
    def opt(name: str, q: float, usd: float) -> R.Option:
        o = R.Option(name, "curve", [], quality=q)
        o.tiers = [R.TierCost("m", 1.0, 1.0, usd, "")]
        return o

    opts = [opt("cheap", 0.6, 10), opt("mid", 0.8, 50), opt("dominated", 0.7, 60), opt("best", 0.9, 100)]
    R.mark_frontier(opts)
    assert [o.name for o in opts if o.frontier] == ["cheap", "mid", "best"]
    assert R.recommend(opts, opts[-1], 0.1).name == "mid"
    assert R.recommend(opts, opts[-1], 0.0).name == "best"


def test_weighted_percentiles_and_bootstrap() -> None:
    v = np.array([1.0, 2.0, 3.0, 4.0])
    assert R.weighted_percentiles(v, np.array([0.7, 0.1, 0.1, 0.1]), (50, 95)) == [1.0, 4.0]
    assert bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)
    lo, hi = bootstrap_ci([0.0, 1.0] * 50)
    assert lo < 0.5 < hi
    assert (lo, hi) == bootstrap_ci([0.0, 1.0] * 50)  # fixed seed: the same interval every run


def test_rule_scores() -> None:
    spec = [{"name": "code", "patterns": ["```"], "weight": 2}, {"name": "long", "min_words": 3}]
    rules = build_rules({"threshold": 2, "rules": spec}, "test")
    assert rules.score("a b") == 0
    assert rules.score("a b c") == 1
    assert rules.label("```x``` y z") == "complex"
    assert rules.matched("```x``` y z") == ["code", "long"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--small", "large", "--large", "large"], "routing needs two different models"),
        (["--small", "smal", "--large", "large"], "unknown evaluated model 'smal'; did you mean 'small'"),
        (["--classify", "rules"], "give --cases"),
        (["--mix", "simple=x"], "expected CLASS=SHARE"),
        (["--mix", "easy=1"], "unknown class(es) ['easy']"),
        (["--mix", "simple=2"], "the shares sum to 2, not 1, and it leaves out complex"),
        (["--mix", "simple=0.5"], "the shares sum to 0.5, not 1, and it leaves out complex"),
        (["--mix", "simple=0.5,simple=0.5"], "class 'simple' is given twice"),
        (["--mix", "simple=0,complex=0"], "must not all be zero"),
        (["--classify", "rules", "--mix", "simple=1"], "give --cases"),
        (["--tier", "code=large"], "case 'a' has no class tag"),
        (["--price", "small=none"], "small has no price: give --price small=IN/OUT"),
    ],
)
def test_bad_input_is_a_clear_error(invoke, quality, extra: list[str], message: str) -> None:
    q, _ = quality
    result = invoke("route", "--quality", str(q), "--tokens-per-day", "1M", *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_records_on_other_cases_are_refused(invoke, tmp_path: Path) -> None:
    _, sha = write_cases(tmp_path)
    path = tmp_path / "q.jsonl"
    recs = [
        record("small", SMALL_SCORES, SMALL_LAT, sha, SMALL_PRICE),
        record("large", LARGE_SCORES, LARGE_LAT, "f" * 64, LARGE_PRICE),
    ]
    path.write_text("".join(r.model_dump_json() + "\n" for r in recs))
    result = invoke("route", "--quality", str(path), "--tokens-per-day", "1M")
    assert result.exit_code == 2
    assert "measured on different case files" in result.output
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zz", "input": "x"}) + "\n")
    recs[1] = record("large", LARGE_SCORES, LARGE_LAT, sha, LARGE_PRICE)
    path.write_text("".join(r.model_dump_json() + "\n" for r in recs))
    result = invoke("route", "--quality", str(path), "--cases", str(other), "--tokens-per-day", "1M")
    assert result.exit_code == 2
    assert "is not the file the records were measured on" in result.output


def test_no_records_says_how_to_make_them(invoke) -> None:
    result = invoke("route", "--tokens-per-day", "1M")
    assert result.exit_code == 2
    assert "run gpu-bench eval" in result.output


def test_records_from_the_catalog(invoke, quality, tmp_path: Path) -> None:
    q, _ = quality
    catalog = tmp_path / "cat"
    (catalog / "quality").mkdir(parents=True)
    (catalog / "quality" / "q.jsonl").write_text(q.read_text())
    result = invoke("--catalog", str(catalog), "route", "--tokens-per-day", "1M", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["large"] == "large"


def test_a_model_as_classifier_labels_and_costs(invoke, quality, tmp_path: Path) -> None:
    from planner.quality.classify import PROMPT
    from tests.gpu_bench.scripted_server import ScriptedServer

    q, cases = quality

    def label(model: str, messages: list[dict[str, str]]) -> str:
        text = messages[-1]["content"]
        if "gibberish" in text:
            return "maybe"  # names no class: unlabeled, sent to the large tier
        return "complex" if ("Explain" in text or "```" in text) else "simple"

    queries = tmp_path / "queries.jsonl"
    sample = ["hi there", "Explain DNS", "Explain TLS", "what time is it", "gibberish"]
    queries.write_text("".join(json.dumps({"input": x}) + "\n" for x in sample))
    args = [
        "route",
        "--quality",
        str(q),
        "--cases",
        str(cases),
        "--queries",
        str(queries),
        "--classify",
        "model",
    ]
    args += ["--classifier-model", "router-1", "--classifier-price", "1/2", "--tokens-per-day", "10M"]
    with ScriptedServer(answer=label) as server:
        args += ["--classifier-endpoint", server.url]
        result = invoke(*args, "--format", "json")
        assert result.exit_code == 0, result.output
        sent = server.requests
        assert sent == len(CASES) + len(sample)
        again = invoke(*args, "--format", "json")  # labels are cached: nothing sent
        assert server.requests == sent
    p = json.loads(result.output)
    assert json.loads(again.output)["options"] == p["options"]
    routed = options_by_name(p)[p["routed"]]
    assert routed["to_large"] == pytest.approx(3 / 5)  # Explain x2 + the unlabeled one
    texts = [c["input"] for c in CASES] + sample
    tin = np.mean([len(PROMPT.format(text=t).split()) for t in texts])
    usd_per_request = (tin * 1 + 1 * 2) / 1e6  # each reply is one word
    requests_per_day = 10e6 / 1800
    assert routed["router_usd_per_month"] == pytest.approx(
        usd_per_request * requests_per_day * DAYS_PER_MONTH
    )
    assert routed["usd_per_month"] == pytest.approx(
        api_usd(6e6, 2.5, 10) + api_usd(4e6, 0.1, 0.4) + routed["router_usd_per_month"]
    )
    assert any("did not label" in a for a in p["assumptions"])
    # Cases: d and e are complex (Explain, code), a-c simple.
    classes = {c["class"]: c for c in p["classes"]}
    assert classes["complex"]["cases"] == 2
    assert routed["latency_p50_ms"] > 110.0  # the classifier's own latency comes first


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    import struct

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_quality_cost_curve_is_drawn(invoke, quality, tmp_path: Path) -> None:
    q, cases = quality
    plot = tmp_path / "plots" / "route.png"  # the folder does not exist yet
    result = invoke(
        "route", "--quality", str(q), "--cases", str(cases), "--tokens-per-day", "10M",
        "--plot", str(plot), "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout stays the JSON; the note goes to stderr
    assert f"wrote the quality-cost plot to {plot}" in result.stderr
    data = plot.read_bytes()
    width, height = png_size(data)
    assert 600 <= width <= 3000
    assert 400 <= height <= 2000
    assert 10_000 < len(data) < 2_000_000
    blocked = tmp_path / "file"
    blocked.write_text("x")
    bad = invoke("route", "--quality", str(q), "--tokens-per-day", "10M", "--mix", "simple=0.8,complex=0.2",
                 "--plot", str(blocked / "route.png"))  # fmt: skip
    assert bad.exit_code == 2
    assert f"cannot write --plot {blocked / 'route.png'}" in bad.output
