"""gpu-bench eval: scorers on hand-made outputs, the judge's parser, case-file errors, and whole runs
against a scripted server (exact answers, a malformed judge, a 429 storm, a kill and resume, a
refused key). tests/gpu_bench/test_eval_serve.py runs it against a real `transformers serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpu_bench.eval.judge import parse_verdict
from gpu_bench.eval.scorers import check_scorer, score
from tests.conftest import ROOT
from tests.gpu_bench.conftest import gpu_bench
from tests.gpu_bench.scripted_server import ScriptedServer

# -- scorers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "output", "expected", "value"),
    [
        ({"type": "exact"}, "  Paris \n", "Paris", 1.0),
        ({"type": "exact"}, "paris", "Paris", 0.0),
        ({"type": "exact", "ignore_case": True}, "PARIS", "Paris", 1.0),
        ({"type": "exact", "normalize_whitespace": True}, "New   York", "New York", 1.0),
        ({"type": "exact"}, "42", 42, 1.0),
        ({"type": "contains"}, "The capital is Paris.", "Paris", 1.0),
        ({"type": "contains"}, "Paris and Rome", ["Paris", "Berlin", "Rome", "Oslo"], 0.5),
        ({"type": "contains", "ignore_case": True}, "PARIS", ["paris"], 1.0),
        ({"type": "regex"}, "order #A-1234 shipped", r"#[A-Z]-\d{4}", 1.0),
        ({"type": "regex", "full": True}, "order #A-1234 shipped", r"#[A-Z]-\d{4}", 0.0),
        ({"type": "regex", "ignore_case": True}, "YES", r"^yes$", 1.0),
        ({"type": "json"}, '{"a": 1}', None, 1.0),
        ({"type": "json"}, '```json\n{"a": 1}\n```', None, 1.0),
        ({"type": "json"}, "{'a': 1}", None, 0.0),
        ({"type": "json"}, '{"a": 1}', {"a": 1}, 1.0),
        ({"type": "json"}, '{"a": 2}', {"a": 1}, 0.0),
        ({"type": "json", "schema": {"type": "object", "required": ["city"]}}, '{"city": "Oslo"}', None, 1.0),
        ({"type": "json", "schema": {"type": "object", "required": ["city"]}}, '{"town": "Oslo"}', None, 0.0),
        ({"type": "numeric"}, "17 * 23 = 391", 391, 1.0),
        ({"type": "numeric"}, "about 1,234.5 dollars", "1234.5", 1.0),
        ({"type": "numeric"}, "3.14", 3.14159, 0.0),
        ({"type": "numeric", "abs_tol": 0.01}, "pi is 3.14", 3.14159, 1.0),
        ({"type": "numeric", "rel_tol": 0.05}, "the answer is 104", 100, 1.0),
        ({"type": "numeric"}, "no digits here", 1, 0.0),
    ],
)
def test_scorers(spec: dict, output: str, expected: object, value: float) -> None:
    check_scorer(spec, expected)
    assert score(spec, output, expected).value == value


@pytest.mark.parametrize(
    ("spec", "expected", "message"),
    [
        ({"type": "exakt"}, "x", "did you mean 'exact'"),
        ({"type": "exact"}, None, "needs 'expected'"),
        ({"type": "regex"}, "(unclosed", "not a valid regular expression"),
        ({"type": "numeric"}, "forty", "needs a number"),
        ({"type": "numeric", "abs_tol": -1}, 1, "non-negative"),
        ({"type": "json", "schema": {"type": "nonsense"}}, None, "not a valid JSON Schema"),
        ({"type": "contains", "tolerance": 1}, "x", "has no option 'tolerance'"),
    ],
)
def test_scorer_misuse_is_a_clear_error(spec: dict, expected: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_scorer(spec, expected)


# -- the judge's replies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ('{"score": 0.8, "reason": "mostly right"}', 0.8),
        ('Sure! ```json\n{"score": 1, "reason": "correct"}\n```', 1.0),
        ('{"score": "0.25"}', 0.25),
        ('{"rating": "7/10"}', 0.7),
        ('{"score": "80%"}', 0.8),
        ("{'score': 0.4}", 0.4),  # not JSON, but a labelled score
        ('{"score": 0.5} and again {"score": 0.5}', 0.5),
        ("0.8", 0.8),  # a bare number in [0, 1]
        ("1", 1.0),
        ("0", 0.0),
        (" `0.75`. ", 0.75),
        ("**0.6**", 0.6),
        ("```\n0.3\n```", 0.3),
        ("8/10", 0.8),
        ("4 out of 5", 0.8),
        ("80%", 0.8),
        ("Score: 0.6", 0.6),
        ("Score: 80%", 0.8),
        ("score = 8/10 because ...", 0.8),
        ("**Rating:** 4 out of 5", 0.8),
        ("Grade: 7 / 10", 0.7),
        ("Score (0-1): 0.9", 0.9),
        ("The answer is 100% correct.\nScore: 0.9", 0.9),  # the labelled score, not the prose's 100%
        ("Reason: 2 of 3 steps are right, 67% of the work.\nscore: 0.5", 0.5),
    ],
)
def test_judge_replies_are_read_robustly(reply: str, value: float) -> None:
    verdict = parse_verdict(reply)
    assert verdict.score == pytest.approx(value), verdict.reason


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("The answer looks good to me.", "no score"),
        ("The answer is 100% correct", "no score"),  # an incidental percentage is not a score
        ("Overall 90%", "no score"),
        ("I'd give it 4 out of 5.", "no score"),  # unlabelled prose: asked again, not guessed
        ("2 of the 3 facts are right", "no score"),
        ("The capital is 0.5 km away", "no score"),
        ('{"score": 7}', "outside 0..1"),
        ("8", "outside 0..1"),  # a bare number outside 0..1 is not read on some other scale
        ("-0.5", "outside 0..1"),
        ("Score: 8", "outside 0..1"),
        ("12/10", "outside 0..1"),
        ('{"score": "high"}', "not a number"),
        ('{"score": 0.2} ... on reflection {"score": 0.9}', "several different scores"),
        ("Score: 0.2. On reflection, score: 0.9", "several different scores"),
        ("", "empty"),
    ],
)
def test_unreadable_judge_replies_are_not_scores(reply: str, why: str) -> None:
    verdict = parse_verdict(reply)
    assert verdict.score is None
    assert why in verdict.reason


# -- case files ------------------------------------------------------------------------------


def test_case_file_problems_are_listed_with_lines(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "input": "hi", "expected": "x"}),
                "{not json",
                json.dumps({"id": "a", "input": "again", "expected": "y"}),
                json.dumps({"input": "x", "expectd": "y"}),
                json.dumps({"input": "x", "scorer": "regex", "expected": "("}),
                json.dumps({"input": [], "expected": "y"}),
            ]
        )
        + "\n"
    )
    result = gpu_bench("eval", str(cases), "--model", "m")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    err = result.stderr
    assert f"{cases}:2: not JSON" in err
    assert f"{cases}:3: id 'a' already used on line 1" in err
    assert f"{cases}:4: unknown field 'expectd'; did you mean 'expected'?" in err
    assert f"{cases}:5: 'expected' is not a valid regular expression" in err
    assert f"{cases}:6: 'input' must be a prompt string" in err


def test_judged_cases_need_a_judge(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"input": "Write a haiku"}) + "\n")
    result = gpu_bench("eval", str(cases), "--model", "m", "--endpoint", "http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert "scored by a judge: give --judge-model" in result.stderr


# -- whole runs against a scripted server ------------------------------------------------------

ANSWERS = {
    "Capital of France?": "Paris",
    "Capital of Italy?": "Milan",  # wrong
    "List two primes.": "2 and 3",
    "Order id?": "It is #B-7788",
    "Give the city as JSON.": '{"city": "Oslo"}',
    "17 * 23?": "17 * 23 = 391",
    "Explain TCP.": "TCP is a reliable ordered byte stream",
    "Explain UDP.": "UDP is fast",
}
CASES = [
    {"id": "fr", "input": "Capital of France?", "expected": "Paris", "tags": ["simple"]},
    {"id": "it", "input": "Capital of Italy?", "expected": "Rome", "tags": ["simple"]},
    {"id": "primes", "input": "List two primes.", "expected": ["2", "3", "5"], "scorer": "contains"},
    {"id": "order", "input": "Order id?", "expected": r"#[A-Z]-\d{4}", "scorer": "regex"},
    {
        "id": "json",
        "input": "Give the city as JSON.",
        "scorer": {"type": "json", "schema": {"type": "object", "required": ["city"]}},
    },
    {"id": "math", "input": "17 * 23?", "expected": 391, "scorer": "numeric", "tags": ["complex"]},
    {"id": "tcp", "input": "Explain TCP.", "scorer": "judge", "tags": ["complex"]},
    {"id": "udp", "input": "Explain UDP.", "scorer": "judge", "tags": ["complex"]},
]
EXPECTED_SCORES = {"fr": 1.0, "it": 0.0, "primes": 2 / 3, "order": 1.0, "json": 1.0, "math": 1.0}


def answer(model: str, messages: list[dict[str, str]]) -> str:
    if model.startswith("judge"):
        judged = messages[1]["content"]
        retried = len(messages) > 2
        if "TCP" in judged:
            # malformed first, then a readable score when asked again
            return '{"score": 0.9, "reason": "accurate"}' if retried else "Looks great to me!"
        return "no idea, really"  # never readable: the case must end up unscored
    return ANSWERS[messages[-1]["content"]]


def write_cases(path: Path, cases: list[dict]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_scores_every_case_exactly(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES)
    out = tmp_path / "quality" / "q.jsonl"
    args = ["eval", str(cases), "--model", "small", "--price", "0.5/2", "--judge-model", "judge-1"]
    args += ["--judge-price", "1/4", "--judge-retries", "1", "--out", str(out)]
    with ScriptedServer(answer=answer) as server:
        result = gpu_bench(*args, "--endpoint", server.url, "--format", "json")
        sent = server.requests
        # The same command again sends nothing: the record is there.
        second = gpu_bench(*args, "--endpoint", server.url)
        assert second.returncode == 0, second.stderr
        assert server.requests == sent
    assert "already evaluated" in second.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote 1 QualityRecord(s) to {out} (created {out.parent})" in result.stderr
    (rec,) = records(out)
    from planner.records import QualityRecord

    QualityRecord.model_validate(rec)  # strict: the file round-trips
    by_id = {r["case_id"]: r for r in rec["results"]}
    for case_id, value in EXPECTED_SCORES.items():
        assert by_id[case_id]["score"] == pytest.approx(value), by_id[case_id]
    # The judge: unreadable, asked again, then scored; and one never readable -> unscored, not 0.
    assert by_id["tcp"]["score"] == 0.9
    assert by_id["tcp"]["judge_attempts"] == 2
    assert by_id["udp"].get("score") is None
    assert "judge reply unreadable after 2 tries" in by_id["udp"]["unscored_reason"]
    s = rec["summary"]
    assert (s["cases"], s["scored"], s["unscored"], s["errors"]) == (8, 7, 1, 0)
    scored = [*EXPECTED_SCORES.values(), 0.9]
    assert s["mean_score"] == pytest.approx(sum(scored) / len(scored), abs=1e-6)
    assert s["ci_low"] <= s["mean_score"] <= s["ci_high"]
    assert s["pass_rate"] == pytest.approx(sum(v >= 0.7 for v in scored) / len(scored))
    # Cost: the given prices times the usage the server reported, case by case.
    for case in CASES:
        r = by_id[case["id"]]
        prompt_words = len(case["input"].split())
        out_words = len(ANSWERS[case["input"]].split())
        assert (r["input_tokens"], r["output_tokens"]) == (prompt_words, out_words)
        assert r["tokens_source"] == "usage"
        assert r["cost_usd"] == pytest.approx((prompt_words * 0.5 + out_words * 2) / 1e6, rel=1e-12)
    # The judge's cost: its usage (both tries) x its price, per case; in total as the evaluation's
    # overhead, never inside the model's cost per case.
    tcp = by_id["tcp"]
    assert tcp["judge_cost_usd"] == pytest.approx(
        (tcp["judge_input_tokens"] * 1 + tcp["judge_output_tokens"] * 4) / 1e6, rel=1e-12
    )
    first_reply, second_reply = "Looks great to me!", '{"score": 0.9, "reason": "accurate"}'
    assert tcp["judge_output_tokens"] == len(first_reply.split()) + len(second_reply.split())
    assert by_id["udp"]["judge_cost_usd"] > 0  # unreadable, but it was paid for
    assert s["judge_cost_usd"] == pytest.approx(tcp["judge_cost_usd"] + by_id["udp"]["judge_cost_usd"])
    assert s["cost_per_case_usd"] == pytest.approx(sum(by_id[c["id"]]["cost_usd"] for c in CASES) / 8)
    # What the endpoints said they were: the pinned versions, the model's and the judge's.
    assert rec["served_model"] == "scripted-2026-01-01"
    assert rec["judge"]["served_model"] == "scripted-2026-01-01"
    assert rec["system_fingerprint"] == "fp_scripted"
    assert rec["by_tag"]["simple"]["mean_score"] == 0.5
    assert rec["by_tag"]["complex"]["cases"] == 3
    # Natural answers: no ignore_eos/min_tokens, temperature 0.
    body = next(b for b in server.bodies if b["model"] == "small")
    assert "ignore_eos" not in body
    assert "min_tokens" not in body
    assert body["temperature"] == 0.0
    payload = json.loads(result.stdout)
    assert payload["models"][0]["mean_score"] == s["mean_score"]


def test_catalog_prices_and_quality_per_dollar_ranking(tmp_path: Path) -> None:
    from planner.catalog import Catalog
    from tests.conftest import CATALOGS

    row = Catalog([CATALOGS]).api_price("gpt-4o-mini")
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:6])
    out = tmp_path / "q.jsonl"
    with ScriptedServer(answer=answer) as server:
        result = gpu_bench(
            "eval", str(cases), "--endpoint", server.url,
            "--model", "gpt-4o-mini", "--model", "llama-3.1-8b-instruct",
            "--out", str(out), "--format", "json",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    recs = {r["model"]: r for r in records(out)}
    api = recs["gpt-4o-mini"]
    assert api["hosting"] == "api"
    assert api["price"]["basis"] == "catalog"
    assert api["price"]["input_usd_per_mtok"] == row.input_usd_per_mtok
    r0 = api["results"][0]
    assert r0["cost_usd"] == pytest.approx(
        (r0["input_tokens"] * row.input_usd_per_mtok + r0["output_tokens"] * row.output_usd_per_mtok) / 1e6
    )
    hosted = recs["llama-3.1-8b-instruct"]
    assert hosted["hosting"] == "self-hosted"
    assert hosted["catalog_model"] == "llama-3.1-8b-instruct"
    assert "cost_usd" not in hosted["results"][0]  # sized by planner route, not per case
    ranked = json.loads(result.stdout)["models"]
    assert [m["model"] for m in ranked] == ["gpt-4o-mini", "llama-3.1-8b-instruct"]
    assert [(m["group"], m["rank"]) for m in ranked] == [("priced", 1), ("self-hosted", 1)]
    assert ranked[0]["score_per_usd"] == pytest.approx(
        api["summary"]["mean_score"] / api["summary"]["cost_per_case_usd"]
    )
    assert ranked[1]["score_per_usd"] is None


def test_free_and_self_hosted_models_are_ranked_in_groups_of_their_own(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:6])
    models = ["gpt-4o-mini", "free", "llama-3.1-8b-instruct", "mystery"]
    prices = ["auto", "0/0", "auto", "none"]
    args = [x for m, p in zip(models, prices, strict=True) for x in ("--model", m, "--price", p)]

    def answers(model: str, messages: list[dict[str, str]]) -> str:
        return "wrong" if model == "mystery" else answer(model, messages)

    with ScriptedServer(answer=answers) as server:
        as_json = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, *args, "--out", str(tmp_path / "a.jsonl"),
            "--format", "json",
        )  # fmt: skip
        table = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, *args, "--out", str(tmp_path / "b.jsonl")
        )
    assert as_json.returncode == 0, as_json.stderr[-3000:]  # $0 a case: no inf, no crash
    ranked = json.loads(as_json.stdout)["models"]
    groups = [(m["model"], m["group"], m["rank"]) for m in ranked]
    assert groups == [
        ("free", "free", 1),  # free first, explicitly
        ("gpt-4o-mini", "priced", 1),
        ("llama-3.1-8b-instruct", "self-hosted", 1),
        ("mystery", "unpriced", 1),
    ]
    free = ranked[0]
    assert free["cost_per_case_usd"] == 0
    assert free["score_per_usd"] is None  # undefined at zero cost, not infinite
    assert table.returncode == 0, table.stderr[-3000:]
    lines = {line.split()[2]: line for line in table.stdout.splitlines() if line.split()[2:3]}
    assert lines["free"].split()[:2] == ["free", "1"]
    assert " free " in lines["free"].split("0.000000", 1)[1]
    assert "by volume" in lines["llama-3.1-8b-instruct"]
    assert "self-hosted: not priced per case" in table.stdout
    assert "give --price IN/OUT" in table.stdout
    assert "planner route --quality FILE" in table.stdout


def test_a_429_storm_is_ridden_out(tmp_path: Path) -> None:
    cases = write_cases(
        tmp_path / "cases.jsonl",
        [{**c, "id": f"{c['id']}-{i}"} for i in range(5) for c in CASES if c.get("scorer") != "judge"],
    )
    out = tmp_path / "q.jsonl"
    with ScriptedServer(answer=answer, storm=12, limit=3, delay_s=0.05) as server:
        result = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, "--model", "small", "--price", "none",
            "--concurrency", "8", "--max-retries", "30", "--backoff-base", "0.01", "--out", str(out),
        )  # fmt: skip
        rejected = server.rejected
        assert server.peak_active <= 3
    assert result.returncode == 0, result.stderr[-3000:]
    (rec,) = records(out)
    assert rec["summary"]["errors"] == 0
    assert rec["summary"]["cases"] == 30
    assert rejected >= 12
    assert sum(r["attempts"] - 1 for r in rec["results"]) == rejected  # every 429 was retried
    assert "429s" in result.stderr


def test_retries_run_out_and_the_case_is_recorded_failed(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:2])
    out = tmp_path / "q.jsonl"
    with ScriptedServer(answer=answer, storm=10**6, retry_after=None) as server:
        result = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, "--model", "small", "--price", "none",
            "--max-retries", "2", "--backoff-base", "0.01", "--out", str(out), "--format", "json",
        )  # fmt: skip
        assert server.requests == 6
        assert result.returncode == 1, result.stderr[-3000:]  # recorded, but not done: scripts notice
        assert "Traceback" not in result.stderr
        assert "small: 2 of 2 case(s) failed (mostly http_429)" in result.stderr
        assert "run the same command again" in result.stderr
        (rec,) = records(out)
        assert rec["summary"]["errors"] == 2
        assert rec["summary"]["scored"] == 0
        assert "mean_score" not in rec["summary"]
        assert all(r["error"].startswith("http_429") and r["attempts"] == 3 for r in rec["results"])
        assert json.loads(result.stdout)["failed"] == ["small: 2 of 2 case(s) failed (mostly http_429)"]
        # The storm is over: the same command tries the failed cases again and records them.
        server.storm = 0
        again = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, "--model", "small", "--price", "none",
            "--max-retries", "2", "--backoff-base", "0.01", "--out", str(out),
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
        assert server.requests == 8
    old, new = records(out)  # the failed record is kept; the newest one is complete
    assert old["id"] == rec["id"]
    assert new["summary"]["errors"] == 0
    assert [r["score"] for r in new["results"]] == [1.0, 0.0]


def test_only_the_failed_cases_are_tried_again(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES)
    out = tmp_path / "q.jsonl"
    args = ["eval", str(cases), "--model", "small", "--price", "0.5/2", "--judge-model", "judge-1"]
    args += ["--judge-price", "1/4", "--max-retries", "0", "--concurrency", "1", "--out", str(out)]
    with ScriptedServer(answer=answer, storm=1, retry_after=None, unavailable={"judge-1"}) as server:
        args += ["--endpoint", server.url]
        first = gpu_bench(*args)
        assert first.returncode == 1, first.stderr[-3000:]
        (rec,) = records(out)
        by_id = {r["case_id"]: r for r in rec["results"]}
        assert by_id["fr"]["error"].startswith("http_429")  # the first request: a 429, no retry left
        assert by_id["tcp"]["unscored_reason"].startswith("judge request failed: http_503")
        assert by_id["tcp"]["output"] == ANSWERS["Explain TCP."]  # the answer is kept
        assert "small: 3 of 8 case(s) failed" in first.stderr
        sent = {m: server.seen.count(m) for m in ("small", "judge-1")}
        server.unavailable.clear()
        second = gpu_bench(*args)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "resuming: 5 of 8 cases done" in second.stderr
        assert "2 answered case(s) to judge again" in second.stderr
        # Only fr is asked again; tcp and udp only of the judge (tcp: malformed, then read; udp:
        # unreadable three times, --judge-retries 2).
        assert server.seen.count("small") - sent["small"] == 1
        assert server.seen.count("judge-1") - sent["judge-1"] == 2 + 3
    _, new = records(out)
    by_id = {r["case_id"]: r for r in new["results"]}
    assert by_id["fr"]["score"] == 1.0
    assert by_id["tcp"]["score"] == 0.9
    assert by_id["tcp"]["attempts"] == 1  # the answer's own request, carried over
    assert "unreadable" in by_id["udp"]["unscored_reason"]  # a result: not tried again
    assert new["summary"]["errors"] == 0
    before = {r["case_id"]: r for r in rec["results"]}
    for case_id in ("it", "primes", "order", "json", "math"):
        assert by_id[case_id] == before[case_id]  # carried over as they were
    assert "5 answered case(s) carried over from record" in new["notes"]
    third = gpu_bench(*args)  # nothing failed any more: nothing to do
    assert "already evaluated" in third.stderr


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_endpoint_stops_that_model_at_once(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:2])
    out = tmp_path / "q.jsonl"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    result = gpu_bench(
        "eval", str(cases), "--endpoint", dead, "--model", "small", "--price", "none", "--out", str(out),
    )  # fmt: skip
    assert time.monotonic() - started < 30  # no backoff: 6 retries would take a minute
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"small at {dead}: unreachable" in result.stderr
    assert "is the server running there? check --endpoint" in result.stderr
    assert not out.exists()  # nothing finished: no record
    again = gpu_bench("eval", str(cases), "--endpoint", dead, "--model", "small", "--price", "none",
                      "--out", str(out))  # fmt: skip
    assert again.returncode == 2  # still stopped, never "already evaluated"
    assert "already evaluated" not in again.stderr


def test_a_server_that_goes_away_mid_run_stops_the_model_and_the_run_resumes(tmp_path: Path) -> None:
    many = [{"id": f"c{i}", "input": "Capital of France?", "expected": "Paris"} for i in range(30)]
    cases = write_cases(tmp_path / "cases.jsonl", many)
    out = tmp_path / "q.jsonl"
    progress = tmp_path / "q.jsonl.progress"
    port = free_port()
    args = ["eval", str(cases), "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "small"]
    args += ["--price", "none", "--concurrency", "1", "--max-retries", "2", "--backoff-base", "0.01"]
    args += ["--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with ScriptedServer(answer=answer, delay_s=0.05, port=port):
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpu_bench.cli", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if progress.exists() and len(progress.read_text().splitlines()) >= 5:
                break
            time.sleep(0.02)
    _, stderr = proc.communicate(timeout=60)  # the server is gone: the model stops, not 30 failures
    assert proc.returncode == 2, stderr[-3000:]
    assert "stopped accepting connections (3 tries" in stderr
    assert not out.exists()
    answered = {json.loads(x)["case"]["case_id"] for x in progress.read_text().splitlines()}
    assert 5 <= len(answered) < 30
    with ScriptedServer(answer=answer, port=port) as server:  # back again: the run resumes
        result = gpu_bench(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.requests == 30 - len(answered)
    (rec,) = records(out)
    assert rec["summary"]["scored"] == 30


def test_an_unreachable_judge_stops_the_model_and_keeps_its_answers(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", [CASES[6]])
    out = tmp_path / "q.jsonl"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with ScriptedServer(answer=answer) as server:
        result = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, "--model", "small", "--price", "none",
            "--judge-endpoint", dead, "--judge-model", "judge-1", "--out", str(out),
        )  # fmt: skip
    assert result.returncode == 2
    assert f"the judge: judge-1 at {dead}: unreachable" in result.stderr
    assert "check --judge-endpoint" in result.stderr
    (line,) = Path(f"{out}.progress").read_text().splitlines()
    assert json.loads(line)["case"]["output"] == ANSWERS["Explain TCP."]


def test_a_refused_key_stops_that_model_with_a_clear_error(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:2])
    out = tmp_path / "q.jsonl"
    with ScriptedServer(answer=answer) as server:
        result = gpu_bench(
            "eval", str(cases), "--endpoint", server.url, "--model", "unauthorized", "--model", "small",
            "--price", "none", "--out", str(out),
        )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "http 401 (the key was refused)" in result.stderr
    assert [r["model"] for r in records(out)] == ["small"]  # the other model still finished


def test_an_unset_key_variable_is_named(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:1])
    result = gpu_bench("eval", str(cases), "--model", "m", "--api-key-env", "NO_SUCH_KEY_VAR_FOR_TEST")
    assert result.returncode == 2
    assert "export NO_SUCH_KEY_VAR_FOR_TEST=" in result.stderr


def test_a_killed_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    many = [{"id": f"c{i}", "input": "Capital of France?", "expected": "Paris"} for i in range(40)]
    cases = write_cases(tmp_path / "cases.jsonl", many)
    out = tmp_path / "q.jsonl"
    progress = tmp_path / "q.jsonl.progress"
    with ScriptedServer(answer=answer, delay_s=0.1) as server:
        args = ["eval", str(cases), "--endpoint", server.url, "--model", "small", "--price", "none"]
        args += ["--concurrency", "2", "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpu_bench.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if progress.exists() and len(progress.read_text().splitlines()) >= 10:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        done_before = len({json.loads(x)["case"]["case_id"] for x in progress.read_text().splitlines()})
        assert 10 <= done_before < 40
        assert not out.exists()
        sent_before = server.requests
        result = gpu_bench(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"resuming: {done_before} of 40 cases done" in result.stderr
        assert server.requests - sent_before == 40 - done_before
    (rec,) = records(out)
    assert [r["case_id"] for r in rec["results"]] == [f"c{i}" for i in range(40)]
    assert rec["summary"]["mean_score"] == 1.0
    assert not progress.exists()


def test_the_quality_record_is_a_catalog_kind(tmp_path: Path, invoke) -> None:
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:2])
    catalog = tmp_path / "cat"
    out = catalog / "quality" / "support.jsonl"
    with ScriptedServer(answer=answer) as server:
        result = gpu_bench(
            "eval",
            str(cases),
            "--endpoint",
            server.url,
            "--model",
            "llama-3.1-8b-instruct",
            "--out",
            str(out),
        )
    assert result.returncode == 0, result.stderr[-3000:]
    listed = invoke("--catalog", str(catalog), "catalog", "validate")
    assert listed.exit_code == 0, listed.output
    from planner.catalog import Catalog
    from tests.conftest import CATALOGS

    for _ in range(2):  # validated from the file, then read back from the snapshot cache
        (q,) = Catalog([CATALOGS, catalog]).quality
        assert q.model == "llama-3.1-8b-instruct"
        assert q.summary.mean_score == 0.5
        assert q.by_tag["simple"].cases == 2
        assert q.results[0].case_id == "fr"
    listed = invoke("--catalog", str(catalog), "catalog", "list", "quality", "--format", "json")
    assert json.loads(listed.output)[0]["model"] == "llama-3.1-8b-instruct"


def test_the_example_cases_and_rules_are_valid() -> None:
    from gpu_bench.eval.cases import read_cases
    from planner.quality.rules import load

    cases = read_cases(ROOT / "examples" / "eval-cases.jsonl")
    assert {c.scorer["type"] for c in cases.cases} == {
        "contains",
        "exact",
        "regex",
        "json",
        "numeric",
        "judge",
    }
    rules = load(ROOT / "examples" / "route-rules.yaml")
    for case in cases.cases:  # the example rules agree with the example tags
        assert rules.label(case.prompt_text) == case.tags[0], case.id
