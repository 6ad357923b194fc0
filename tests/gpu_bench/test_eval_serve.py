"""gpu-bench eval against a real server: `transformers serve` on a tiny random-weight model.

Its answers are noise, so the scores are mostly 0; what is checked is that the pipeline is exact:
each score is the scorer applied to the answer recorded, each cost is the catalog's price times
the usage the server reported, and a judge that cannot produce a score leaves cases unscored.
The same server then serves as planner route's model classifier (non-streaming requests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_bench.eval.scorers import score
from tests.conftest import require
from tests.gpu_bench.conftest import gpu_bench
from tests.gpu_bench.test_transformers_serve import free_port, tiny_model, transformers_cli

pytestmark = pytest.mark.slow
__all__ = ["tiny_model"]  # the fixture, imported for this module

CASES = [
    {"id": "exact", "input": "Say hello.", "expected": "hello", "tags": ["simple"]},
    {"id": "contains", "input": "Name a colour.", "expected": ["red", "blue"], "scorer": "contains"},
    {"id": "regex", "input": "Any word.", "expected": r"\w+", "scorer": "regex", "tags": ["simple"]},
    {"id": "numeric", "input": "What is 2+2?", "expected": 4, "scorer": "numeric", "tags": ["complex"]},
    {"id": "json", "input": "Reply in JSON.", "scorer": "json"},
    {"id": "judged", "input": "Explain DNS in one line.", "scorer": "judge", "tags": ["complex"]},
]


def test_eval_against_transformers_serve(tmp_path: Path, tiny_model: Path, invoke) -> None:
    require("fastapi")  # transformers[serving], in the serve extra
    from gpu_bench.serving.launcher import ServerProcess
    from planner.catalog import Catalog
    from tests.conftest import CATALOGS
    from tests.gpu_bench.scripted_server import ScriptedServer

    row = Catalog([CATALOGS]).api_price("gpt-4o-mini")

    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    out = tmp_path / "q.jsonl"
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = f"{transformers_cli()} serve {tiny_model} --device cpu --port {port}"
    with ServerProcess(command, url, tmp_path / "server.log", ready_timeout_s=300):
        result = gpu_bench(
            "eval", str(cases), "--endpoint", url, "--model", str(tiny_model),
            "--price", "openai/gpt-4o-mini", "--judge-model", str(tiny_model), "--judge-retries", "1",
            "--max-tokens", "8",
            "--concurrency", "2", "--out", str(out), "--format", "json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        # A second model on the same cases (scripted, always right on the deterministic ones) and
        # the tiny model as the router's classifier: its replies name no class, so everything goes
        # to the large tier, and the router's tokens are what transformers serve reported.
        with ScriptedServer(answer=lambda model, messages: "hello") as other:
            second = gpu_bench(
                "eval", str(cases), "--endpoint", other.url, "--model", "big", "--price", "1/4",
                "--judge-endpoint", other.url, "--judge-model", "judge", "--judge-retries", "0",
                "--out", str(out),
            )  # fmt: skip
        assert second.returncode == 0, second.stderr[-3000:]
        routed = invoke(
            "route", "--quality", str(out), "--small", str(tiny_model), "--large", "big",
            "--cases", str(cases),
            "--classify", "model", "--classifier-endpoint", url, "--classifier-model", str(tiny_model),
            "--classifier-price", "0.5/1", "--tokens-per-day", "1M", "--format", "json",
        )  # fmt: skip
    assert routed.exit_code == 0, routed.output
    plan = json.loads(routed.output)
    option = next(o for o in plan["options"] if o["option"] == plan["routed"])
    assert option["to_large"] == 1.0  # unlabeled -> the large tier
    assert option["router_usd_per_month"] > 0
    assert any("did not label" in a for a in plan["assumptions"])
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["summary"]["errors"] == 0, rec["results"]
    assert rec["served_model"]  # what the server said answered
    assert rec["judge"]["served_model"]  # and what it said judged
    by_id = {r["case_id"]: r for r in rec["results"]}
    for case in CASES:
        r = by_id[case["id"]]
        assert r["tokens_source"] == "usage"
        assert 0 < r["output_tokens"] <= 8
        assert r["input_tokens"] > 0
        expect = r["input_tokens"] * row.input_usd_per_mtok + r["output_tokens"] * row.output_usd_per_mtok
        assert r["cost_usd"] == pytest.approx(expect / 1e6, rel=1e-12)  # catalog price x reported usage
        assert r["latency_ms"] > 0
        if case.get("scorer") != "judge":
            spec = {"type": case.get("scorer", "exact")}
            assert r["score"] == score(spec, r["output"], case.get("expected")).value
    judged = by_id["judged"]
    # A random model cannot write {"score": x}: unscored with its reply quoted, never a silent 0 or 1.
    if judged.get("score") is None:
        assert "judge reply unreadable after 2 tries" in judged["unscored_reason"]
        assert judged["judge_attempts"] == 2
        assert rec["summary"]["unscored"] == 1
    else:  # noise that happens to read as a score is taken, and said so in the detail
        assert 0 <= judged["score"] <= 1
        assert judged["detail"]
    s = rec["summary"]
    assert s["cases"] == 6
    assert s["scored"] + s["unscored"] == 6
