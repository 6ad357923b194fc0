"""Run a case set against models (and a judge), politely and resumably; write QualityRecords.

- Every model runs its cases at `concurrency` requests in flight (the judge has its own limit).
- Pacing is per (endpoint URL, model, key variable), as providers limit requests per model and
  key: a 429 (or 5xx, timeout, dropped connection) pauses *every* request to that model there
  until the server's Retry-After, or an exponential backoff with jitter, has passed; the request
  is retried up to `max_retries` times and then recorded as failed. `max_rps` caps its rate. A
  judge that is also an evaluated model at the same URL shares that model's pacing.
- 401/403/404 stop that model at once (a wrong key or model name fails every case the same way);
  so does an endpoint that cannot be connected to before it has answered anything (nothing
  listens there), and one that stops accepting connections for `max_retries` retries.
- Each case is appended (fsynced) to a progress file beside `--out`; an interrupted run started
  again with the same cases, model and settings skips the cases answered. When a model has every
  case, its QualityRecord is appended to `--out` and its progress lines are dropped.
- Failed cases (the request failed after every retry, or the judge's did) are tried again by the
  next run of the same command: the answered cases are carried over from the record (or the
  progress file), only the failed ones are sent (a failed judge request: only the judge), and a
  new record is appended; readers take the newest record per model and case file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_bench.eval.cases import Case, CaseSet
from gpu_bench.eval.judge import DEFAULT_RUBRIC, judge_messages, parse_verdict, retry_message, rubric_sha256
from gpu_bench.eval.scorers import score as score_case
from gpu_bench.eval.targets import Target, public_endpoint
from gpu_bench.store import RecordStore
from planner.catalog.files import atomic_write_text
from planner.errors import PlannerError

RETRYABLE = {
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "timeout",
    "disconnected",
    "connect_error",
}
FATAL = {"http_401": "the key was refused", "http_403": "access denied", "http_404": "no such model or path"}
BACKOFF_CAP_S = 60.0
JUDGE_FAILED = "judge request failed"


def failed(case: dict[str, Any]) -> bool:
    """A case to try again: its request failed after every retry, or its judge's request did.
    (An unreadable judge reply is a result, unscored: it is not tried again.)"""
    return case.get("error") is not None or str(case.get("unscored_reason") or "").startswith(JUDGE_FAILED)


@dataclass
class EvalSettings:
    max_tokens: int = 512
    concurrency: int = 4
    judge_concurrency: int = 4
    max_rps: float | None = None
    max_retries: int = 6
    backoff_base_s: float = 1.0
    timeout_s: float = 300.0
    judge_retries: int = 2
    judge_max_tokens: int = 256
    rubric: str = DEFAULT_RUBRIC
    pass_threshold: float = 0.7
    confidence: float = 0.95
    resamples: int = 2000


class Throttle:
    """One endpoint's pace: a shared pause after 429s, and an optional requests-per-second cap."""

    def __init__(self, max_rps: float | None, backoff_base_s: float):
        self.interval = 1.0 / max_rps if max_rps else 0.0
        self.base = backoff_base_s
        self.resume_at = 0.0
        self.next_slot = 0.0
        self.rate_limited = 0  # 429s seen
        self.retried = 0

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            delay = max(self.resume_at, self.next_slot if self.interval else 0.0) - now
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        if self.interval:
            self.next_slot = max(now, self.next_slot) + self.interval

    def back_off(self, attempt: int, retry_after_s: float | None) -> None:
        if retry_after_s is not None:
            delay = min(retry_after_s, BACKOFF_CAP_S * 5)
        else:
            delay = min(BACKOFF_CAP_S, self.base * 2**attempt) * (0.5 + random.random() / 2)
        self.resume_at = max(self.resume_at, time.monotonic() + delay)


class FatalEndpointError(Exception):
    pass


@dataclass
class Endpoint:
    """A client and its throttle, shared by every request to one (URL, model, key variable)."""

    client: Any  # OpenAIClient
    throttle: Throttle
    settings: EvalSettings
    option: str = "--endpoint"  # how the user gave it: named in messages
    answered: bool = False  # a request has succeeded: a refused connection now is a hiccup, retried

    def _where(self) -> str:
        return f"{self.client.model} at {public_endpoint(self.client.base_url)}"

    async def ask(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[Any, int]:
        """Send with retries; -> (the last RequestResult, attempts)."""
        from gpu_bench.serving.client import RequestSpec

        spec = RequestSpec(prompt=messages, max_tokens=max_tokens)
        attempt = 0
        while True:
            await self.throttle.wait()
            result = await self.client.send(spec)
            attempt += 1
            if result.ok:
                self.answered = True
                return result, attempt
            if result.error_type in FATAL:
                what = f"{result.error_type.replace('_', ' ')} ({FATAL[result.error_type]})"
                raise FatalEndpointError(f"{self._where()}: {what}: {result.error or ''}"[:400])
            if result.error_type == "connect_error" and not self.answered:
                raise FatalEndpointError(
                    f"{self._where()}: unreachable ({(result.error or 'connection failed')[:160]}): "
                    f"is the server running there? check {self.option} (e.g. http://127.0.0.1:8000/v1)"
                )
            if result.error_type not in RETRYABLE or attempt > self.settings.max_retries:
                if result.error_type == "connect_error":
                    raise FatalEndpointError(
                        f"{self._where()}: stopped accepting connections ({attempt} tries: "
                        f"{(result.error or '')[:160]}); restart the server and run again to resume"
                    )
                return result, attempt
            if result.error_type == "http_429":
                self.throttle.rate_limited += 1
            self.throttle.retried += 1
            self.throttle.back_off(attempt - 1, result.retry_after_s)


def open_endpoint(
    url: str, model: str, key_env: str | None, settings: EvalSettings, option: str = "--endpoint"
) -> Endpoint:
    import os

    from gpu_bench.serving.client import OpenAIClient

    if key_env and not os.environ.get(key_env):
        raise PlannerError(f"--api-key-env {key_env}: the variable is not set; export {key_env}=... first")
    client = OpenAIClient(
        url, model, api="chat", timeout_s=settings.timeout_s, api_key_env=key_env, max_connections=256
    )
    client.send_extras = False  # natural answers: no ignore_eos/min_tokens
    return Endpoint(client, Throttle(settings.max_rps, settings.backoff_base_s), settings, option)


# -- progress (resume) --------------------------------------------------------------------------


def run_key(cases: CaseSet, target: Target, judge: Target | None, s: EvalSettings) -> str:
    """Same cases, model, endpoint and answer/scoring settings -> same key: what resume matches."""
    ident = {
        "cases": cases.sha256,
        "endpoint": public_endpoint(target.endpoint),
        "model": target.model,
        "max_tokens": s.max_tokens,
        "temperature": 0.0,
        "judge": None
        if judge is None
        else [public_endpoint(judge.endpoint), judge.model, rubric_sha256(s.rubric), s.judge_retries],
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


class Progress:
    """Finished cases, one fsynced JSON line each: {"run": KEY, "case": CaseResult fields}."""

    def __init__(self, path: Path):
        self.path = path
        self.store = RecordStore(path)  # a line torn by a crash is skipped: that case runs again

    def cases(self, key: str) -> dict[str, dict[str, Any]]:
        """The latest line of each case of this run (failed ones too: see `failed`)."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.store.rows():
            if row.get("run") == key and isinstance(row.get("case"), dict):
                out[row["case"]["case_id"]] = row["case"]
        return out

    def add(self, key: str, case: dict[str, Any]) -> None:
        self.store.append({"run": key, "case": case})

    def drop(self, key: str) -> None:
        rest = [r for r in self.store.rows() if r.get("run") != key]
        if rest:
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rest))
        elif self.path.exists():
            self.path.unlink()


def progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".progress")


def latest_records(out: Path) -> dict[str, dict[str, Any]]:
    """run key -> the newest record in --out with that key (the file is append-only: the last)."""
    found: dict[str, dict[str, Any]] = {}
    for row in RecordStore(out).rows():
        if row.get("run_key") and isinstance(row.get("results"), list):
            found[row["run_key"]] = row
    return found


# -- one case -----------------------------------------------------------------------------------


@dataclass
class RunState:
    target: Target
    key: str
    endpoint: Endpoint
    judge: Endpoint | None
    judge_target: Target | None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # answered cases
    rejudge: dict[str, dict[str, Any]] = field(default_factory=dict)  # answered, the judge's request failed
    carried_from: str | None = None  # the record the answered cases came from
    fatal: str | None = None
    fingerprints: Counter[str] = field(default_factory=Counter)
    judge_served: Counter[str] = field(default_factory=Counter)


ANSWER_FIELDS = (
    "attempts", "output", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "tokens_source",
    "served_model", "cost_usd",
)  # fmt: skip


async def run_case(
    state: RunState, case: Case, s: EvalSettings, judge_sem: asyncio.Semaphore
) -> dict[str, Any]:
    t = state.target
    row: dict[str, Any] = {"case_id": case.id, "tags": list(case.tags), "scorer": case.scorer["type"]}
    answered = state.rejudge.get(case.id)
    if answered is not None and case.scorer["type"] == "judge":  # only the judge's request failed
        row |= {k: answered[k] for k in ANSWER_FIELDS if k in answered}
    else:
        result, attempts = await state.endpoint.ask(case.messages, case.max_tokens or s.max_tokens)
        row["attempts"] = attempts
        if not result.ok:
            row["error"] = f"{result.error_type}: {result.error or ''}".strip()[:300]
            return row
        if result.system_fingerprint:
            state.fingerprints[result.system_fingerprint] += 1
        row |= {
            "output": result.text,
            "latency_ms": round(result.e2e_s * 1000, 3) if result.e2e_s is not None else None,
            "ttft_ms": round(result.ttft_s * 1000, 3) if result.ttft_s is not None else None,
            "input_tokens": result.prompt_tokens,
            "output_tokens": result.output_tokens,
            "tokens_source": result.tokens_source,
            "served_model": result.served_model,
            "cost_usd": t.cost_usd(result.prompt_tokens, result.output_tokens),
        }
    if case.scorer["type"] == "judge":
        async with judge_sem:
            try:
                row |= await judge_case(state, case, row["output"], s)
            except FatalEndpointError as exc:  # the judge is unusable: keep the answer, stop the model
                row |= {"unscored_reason": f"{JUDGE_FAILED}: {exc}"[:300], "judge_fatal": str(exc)}
    else:
        verdict = score_case(case.scorer, result.text, case.expected)
        row |= {"score": verdict.value, "detail": verdict.detail}
    if row.get("score") is not None:
        row["passed"] = row["score"] >= s.pass_threshold
    return {k: v for k, v in row.items() if v is not None}


async def judge_case(state: RunState, case: Case, answer: str, s: EvalSettings) -> dict[str, Any]:
    assert state.judge is not None
    assert state.judge_target is not None
    rubric = case.scorer.get("rubric", s.rubric)
    messages = judge_messages(case.messages, answer, case.expected, rubric)
    usage = {"judge_input_tokens": 0, "judge_output_tokens": 0}
    cost: float | None = 0.0
    attempts = 0
    problem = ""

    def spent() -> dict[str, Any]:
        out: dict[str, Any] = {"judge_attempts": attempts}
        if attempts and (usage["judge_input_tokens"] or usage["judge_output_tokens"]):
            out |= usage | {"judge_cost_usd": cost}
        return out

    for _ in range(s.judge_retries + 1):
        reply, sent = await state.judge.ask(messages, s.judge_max_tokens)
        attempts += sent
        if not reply.ok:
            why = f"{JUDGE_FAILED}: {reply.error_type}: {reply.error or ''}"[:300]
            return {"unscored_reason": why} | spent()
        if reply.served_model:
            state.judge_served[reply.served_model] += 1
        usage["judge_input_tokens"] += reply.prompt_tokens or 0
        usage["judge_output_tokens"] += reply.output_tokens or 0
        c = state.judge_target.cost_usd(reply.prompt_tokens, reply.output_tokens)
        cost = None if cost is None or c is None else cost + c
        verdict = parse_verdict(reply.text)
        if verdict.score is not None:
            return {"score": verdict.score, "detail": verdict.reason[:500]} | spent()
        problem = verdict.reason
        messages = [*messages, {"role": "assistant", "content": reply.text}, retry_message(problem)]
    why = f"judge reply unreadable after {s.judge_retries + 1} tries: {problem}"[:500]
    return {"unscored_reason": why} | spent()


# -- the run ------------------------------------------------------------------------------------


def report_line(done: int, total: int, label: str, errors: int, throttle: Throttle, started: float) -> str:
    rate = done / max(time.monotonic() - started, 1e-9)
    eta = (total - done) / rate if rate > 0 else float("inf")
    extra = f", 429s {throttle.rate_limited}" if throttle.rate_limited else ""
    return f"[{label}] {done}/{total} cases, {errors} failed{extra}" + (
        f", ETA {eta:,.0f} s" if done < total and eta != float("inf") else ""
    )


async def run_target(
    state: RunState,
    cases: CaseSet,
    s: EvalSettings,
    progress: Progress,
    judge_sem: asyncio.Semaphore,
    log: Callable[[str], None],
) -> None:
    todo = [c for c in cases.cases if c.id not in state.results]
    if len(todo) < len(cases.cases):
        n = len(cases.cases)
        again = sum(c.id in state.rejudge for c in todo)
        log(
            f"[{state.target.label}] resuming: {n - len(todo)} of {n} cases done"
            + (f" (from {state.carried_from})" if state.carried_from else "")
            + (f"; {again} answered case(s) to judge again" if again else "")
        )
    sem = asyncio.Semaphore(s.concurrency)
    started = time.monotonic()
    finished = 0
    errors = 0
    last_log = 0.0

    async def one(case: Case) -> None:
        nonlocal finished, errors, last_log
        if state.fatal:
            return
        async with sem:
            if state.fatal:
                return
            try:
                row = await run_case(state, case, s, judge_sem)
            except FatalEndpointError as exc:
                state.fatal = str(exc)
                return
        if judge_fatal := row.pop("judge_fatal", None):
            state.fatal = f"the judge: {judge_fatal}"
        progress.add(state.key, row)
        state.results[case.id] = row
        finished += 1
        errors += failed(row)
        now = time.monotonic()
        if now - last_log > 2.0 or finished == len(todo):
            last_log = now
            log(
                report_line(finished, len(todo), state.target.label, errors, state.endpoint.throttle, started)
            )

    await asyncio.gather(*(one(c) for c in todo))


def build_record(state: RunState, cases: CaseSet, s: EvalSettings, env: Any) -> Any:
    from gpu_bench import __version__
    from planner.quality.stats import by_tag, summarize
    from planner.records import CaseResult, QualityRecord

    t = state.target
    results = [
        CaseResult.model_validate({k: v for k, v in state.results[c.id].items() if k != "carried"})
        for c in cases.cases
    ]
    kw = {"pass_threshold": s.pass_threshold, "confidence": s.confidence, "resamples": s.resamples}
    served = Counter(r.served_model for r in results if r.served_model)
    fingerprint = state.fingerprints.most_common(1)[0][0] if state.fingerprints else None
    notes = []
    if any(r.tokens_source not in (None, "usage") for r in results):
        notes.append(
            "some token counts are not the server's usage (counted from stream chunks): costs estimated"
        )
    if state.carried_from:
        carried = sum(1 for c in cases.cases if state.results[c.id].get("carried"))
        notes.append(f"{carried} answered case(s) carried over from record {state.carried_from}")
    if len(served) > 1:
        notes.append(
            "the endpoint reported several models: "
            + ", ".join(f"{m} ({n})" for m, n in served.most_common())
        )
    judge = None
    if state.judge is not None and state.judge_target is not None:
        jt = state.judge_target
        judge = {
            "endpoint": public_endpoint(jt.endpoint),
            "model": jt.model,
            "served_model": state.judge_served.most_common(1)[0][0] if state.judge_served else None,
            "rubric_sha256": rubric_sha256(s.rubric),
            "price": jt.price,
        }
    now = dt.datetime.now(dt.UTC)
    slug = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in t.model.lower()).strip("-")[:60]
    return QualityRecord.model_validate(
        {
            "id": f"{slug}-{now:%Y%m%dT%H%M%S}-{state.key[:8]}",
            "run_key": state.key,
            "cases_file": cases.path.name,
            "cases_sha256": cases.sha256,
            "endpoint": public_endpoint(t.endpoint),
            "model": t.model,
            "served_model": served.most_common(1)[0][0] if served else None,
            "system_fingerprint": fingerprint,
            "hosting": t.hosting,
            "catalog_model": t.catalog_model,
            "quant": t.quant,
            "price": t.price,
            "judge": judge,
            "max_tokens": s.max_tokens,
            "temperature": 0.0,
            "pass_threshold": s.pass_threshold,
            "confidence": s.confidence,
            "bootstrap_resamples": s.resamples,
            "summary": summarize(results, **kw),
            "by_tag": by_tag(results, **kw),
            "results": [r.model_dump(exclude_none=True) for r in results],
            "measured_at": now,
            "env": env,
            "gpu_bench_version": __version__,
            "notes": "; ".join(notes) or None,
        }
    )


async def evaluate(
    cases: CaseSet,
    targets: list[Target],
    judge: Target | None,
    s: EvalSettings,
    out: Path,
    force: bool = False,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> tuple[list[Any], list[str]]:
    """Run every target; -> (the QualityRecords written now, messages of targets that stopped)."""
    from gpu_bench.env import capture
    from planner.records import Environment

    if cases.needs_judge and judge is None:
        n = sum(c.scorer["type"] == "judge" for c in cases.cases)
        raise PlannerError(
            f"{n} case(s) are scored by a judge: give --judge-endpoint and --judge-model "
            "(or give those cases 'expected' and a scorer)"
        )
    progress = Progress(progress_path(out))
    previous = latest_records(out)
    endpoints: dict[tuple[str, str, str | None], Endpoint] = {}

    def endpoint(t: Target, option: str) -> Endpoint:
        key = (public_endpoint(t.endpoint), t.model, t.api_key_env)
        if key not in endpoints:
            endpoints[key] = open_endpoint(t.endpoint, t.model, t.api_key_env, s, option)
        return endpoints[key]

    judge_ep = endpoint(judge, "--judge-endpoint") if judge and cases.needs_judge else None
    states = []
    for t in targets:
        key = run_key(cases, t, judge if cases.needs_judge else None, s)
        before = None if force else previous.get(key)
        if before is not None and not any(failed(r) for r in before["results"]):
            log(
                f"[{t.label}] already evaluated on these cases with these settings (in {out}); "
                "--force runs it again"
            )
            continue
        state = RunState(t, key, endpoint(t, "--endpoint"), judge_ep, judge if judge_ep else None)
        if before is not None:
            state.carried_from = before.get("id")
            for r in before["results"]:
                place = state.rejudge if failed(r) else state.results
                place[r["case_id"]] = {**r, "carried": True}
        for case_id, r in progress.cases(key).items():  # newer than any record
            state.results.pop(case_id, None)
            state.rejudge.pop(case_id, None)
            (state.rejudge if failed(r) else state.results)[case_id] = r
        state.rejudge = {k: v for k, v in state.rejudge.items() if v.get("output") is not None}
        states.append(state)
    judge_sem = asyncio.Semaphore(s.judge_concurrency)
    env: Environment = capture()
    written, stopped = [], []
    try:
        await asyncio.gather(*(run_target(st, cases, s, progress, judge_sem, log) for st in states))
        for st in states:
            if st.fatal:
                stopped.append(st.fatal)
                continue
            record = build_record(st, cases, s, env)
            RecordStore(out).append(record)
            progress.drop(st.key)
            written.append(record)
    finally:
        for ep in endpoints.values():
            await ep.client.aclose()
    return written, stopped
