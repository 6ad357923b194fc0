"""`planner catalog ...` through click's CliRunner: outputs, formats and every error path."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ISSUE_MODELS = {
    "llama-3.1-8b-instruct",
    "llama-3.1-70b-instruct",
    "llama-3.3-70b-instruct",
    "llama-3.1-405b-instruct",
    "mistral-7b-instruct-v0.3",
    "mixtral-8x7b-instruct",
    "qwen2.5-7b-instruct",
    "qwen2.5-72b-instruct",
    "qwen3-8b",
    "qwen3-32b",
    "phi-3-mini-4k-instruct",
    "phi-4",
    "gemma-2-9b-it",
    "gemma-2-27b-it",
}
ISSUE_GPUS = {
    "h200",
    "h100-sxm",
    "h100-pcie",
    "a100-80gb",
    "a100-40gb",
    "l40s",
    "l4",
    "a10g",
    "rtx-4090",
    "mi300x",
    "b200",
}


def test_list_models_json_has_every_model_with_computed_params(invoke) -> None:
    result = invoke("catalog", "list", "models", "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {r["id"] for r in rows} >= ISSUE_MODELS
    mixtral = next(r for r in rows if r["id"] == "mixtral-8x7b-instruct")
    assert (mixtral["params_b"], mixtral["active_params_b"]) == (46.703, 12.88)


def test_list_gpus_as_csv_and_markdown(invoke) -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("catalog", "list", "gpus", "--format", "csv").stdout)))
    assert {r["id"] for r in rows} >= ISSUE_GPUS
    assert "source.checked_at" in rows[0]  # nested fields flattened, never stringified dicts
    md = invoke("catalog", "list", "gpus", "--format", "markdown").stdout
    assert md.splitlines()[0].startswith("| id |")


def test_show_api_gpt_4o_mini_prices_and_date(invoke) -> None:
    out = invoke("catalog", "show", "api", "gpt-4o-mini").stdout
    assert "input $/1M tokens         0.15" in out
    assert "output $/1M tokens        0.60" in out
    assert "gpt-4o-mini-2024-07-18" in out
    assert "price date" in out
    assert "checked at" in out
    assert "genai-prices" in out
    data = json.loads(invoke("catalog", "show", "api", "openai/gpt-4o-mini", "--format", "json").stdout)
    assert (data["input_usd_per_mtok"], data["output_usd_per_mtok"]) == (0.15, 0.6)


def test_show_model_gpu_and_offer(invoke) -> None:
    out = invoke("catalog", "show", "model", "llama-3.1-8b-instruct").stdout
    assert "params (computed)" in out
    assert "8.030 B" in out
    assert "h100-sxm" in invoke("catalog", "show", "gpu", "h100-sxm").stdout
    assert invoke("catalog", "show", "offer", "aws/p5.48xlarge").exit_code == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("catalog", "show", "model", "llama-3-8b"), "did you mean 'llama-3.1-8b-instruct'"),
        (("catalog", "show", "gpu", "h100"), "'h100-pcie'"),
        (("catalog", "show", "api", "gpt-4o-mnii"), "did you mean"),
        (("catalog", "show", "offer", "aws/p5.48xl"), "did you mean 'aws/p5.48xlarge'"),
        (("catalog", "list", "modls"), "unknown kind 'modls'"),
        (("--catalog", "/nonexistent/dir", "catalog", "list"), "does not exist"),
        (("catalog", "list", "offers", "--gpu", "h100"), "unknown GPU 'h100'; did you mean"),
        (("catalog", "list", "measurements", "--gpu", "h200x"), "unknown GPU 'h200x'; did you mean 'h200'"),
        (
            ("catalog", "list", "api", "--provider", "opena"),
            "unknown API provider 'opena'; did you mean 'openai'",
        ),
        (
            ("catalog", "list", "offers", "--provider", "awz"),
            "unknown cloud provider 'awz'; did you mean 'aws'",
        ),
        (
            ("catalog", "list", "models", "--gpu", "h100-sxm"),
            "--gpu filters offers and measurements, not models",
        ),
        (("catalog", "list", "api", "--gpu", "h100-sxm"), "--gpu filters offers and measurements, not api"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(invoke, args: tuple[str, ...], expected: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_validate_reports_every_problem_and_exits_2(invoke, tmp_path: Path) -> None:
    (tmp_path / "gpus.yaml").write_text("schema_version: 1\ngpus:\n  - id: x1\n  - id: X 2\n")
    result = invoke("catalog", "validate", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.count("gpus.yaml:") >= 2
    assert "problems in the catalog" in result.stderr
    assert invoke("catalog", "validate").exit_code == 0


def test_user_catalog_from_environment_variable(invoke, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "api_overrides.yaml").write_text(
        "schema_version: 1\nprices:\n  - {provider: openai, model: gpt-4o-mini, input_usd_per_mtok: 0.11,"
        " output_usd_per_mtok: 0.44, checked_at: 2026-11-01, source: negotiated}\n"
    )
    monkeypatch.setenv("SELFHOST_PLANNER_CATALOG", str(tmp_path))
    assert "0.11" in invoke("catalog", "show", "api", "gpt-4o-mini").stdout


QWEN_CONFIG = {
    "_name_or_path": "acme/Qwen2.5-7B-support-ft",
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": False,
    "sliding_window": 131072,
    "use_sliding_window": False,
}


def test_add_model_from_config_json(invoke, tmp_path: Path) -> None:
    cfg = tmp_path / "ft" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps(QWEN_CONFIG))
    user = tmp_path / "user"
    result = invoke("catalog", "add-model", str(cfg.parent), "--to", str(user))
    assert result.exit_code == 0, result.output
    assert "qwen2.5-7b-support-ft (7.62B params" in result.stdout
    out = invoke(
        "--catalog", str(user), "catalog", "show", "model", "qwen2.5-7b-support-ft", "--format", "json"
    )
    arch = json.loads(out.stdout)["architecture"]
    assert arch["attention_bias"] is True
    assert arch["sliding_window_tokens"] is None
    assert invoke("--catalog", str(user), "catalog", "validate").exit_code == 0
    again = invoke("catalog", "add-model", str(cfg), "--to", str(user))
    assert again.exit_code == 2
    assert "--replace" in again.stderr
    assert invoke("catalog", "add-model", str(cfg), "--to", str(user), "--replace").exit_code == 0


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({k: v for k, v in QWEN_CONFIG.items() if k != "hidden_size"}, "no 'hidden_size'"),
        ({**QWEN_CONFIG, "num_key_value_heads": 5}, "multiple of num_kv_heads"),
        ("not json", "not a JSON file"),
        ({**QWEN_CONFIG, "num_attention_heads": "abc"}, "'num_attention_heads' must be a whole number"),
        ({**QWEN_CONFIG, "num_attention_heads": 0}, "'num_attention_heads' must be greater than 0"),
        ({**QWEN_CONFIG, "num_hidden_layers": 2.5}, "'num_hidden_layers' must be a whole number, got 2.5"),
        ({**QWEN_CONFIG, "vocab_size": True}, "'vocab_size' must be a whole number, got True"),
        ({**QWEN_CONFIG, "tie_word_embeddings": "false"}, "'tie_word_embeddings' must be true or false"),
        ({**QWEN_CONFIG, "quantization_config": "awq"}, "'quantization_config' must be an object"),
        ({**QWEN_CONFIG, "hidden_size": 3585}, "not a multiple of num_attention_heads"),
        ({**QWEN_CONFIG, "num_key_value_heads": None, "num_attention_heads": -4}, "greater than 0"),
    ],
)
def test_add_model_rejects_bad_configs(invoke, tmp_path: Path, config: object, expected: str) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(config if isinstance(config, str) else json.dumps(config))
    result = invoke("catalog", "add-model", str(cfg), "--to", str(tmp_path / "user"))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_add_model_without_name_or_path_leaves_hf_repo_unset(invoke, tmp_path: Path) -> None:
    cfg = tmp_path / "my-finetune" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({k: v for k, v in QWEN_CONFIG.items() if k != "_name_or_path"}))
    user = tmp_path / "user"
    result = invoke("catalog", "add-model", str(cfg), "--to", str(user))
    assert result.exit_code == 0, result.output
    assert "hf_repo unknown" in result.stdout
    shown = json.loads(
        invoke("--catalog", str(user), "catalog", "show", "model", "my-finetune", "--format", "json").stdout
    )
    assert shown["hf_repo"] is None
    assert shown["name"] == "my-finetune"
    assert invoke("--catalog", str(user), "catalog", "validate").exit_code == 0
    named = invoke(
        "catalog", "add-model", str(cfg), "--to", str(user), "--hf-repo", "acme/ft-7b", "--id", "ft-7b"
    )
    assert named.exit_code == 0, named.output
    shown = json.loads(
        invoke("--catalog", str(user), "catalog", "show", "model", "ft-7b", "--format", "json").stdout
    )
    assert shown["hf_repo"] == "acme/ft-7b"


def test_quantized_config_is_noted(invoke, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**QWEN_CONFIG, "quantization_config": {"quant_method": "awq", "bits": 4}}))
    result = invoke("catalog", "add-model", str(cfg), "--to", str(tmp_path / "user"))
    assert result.exit_code == 0, result.output
    assert "checkpoint is quantized (awq)" in result.stdout


def test_add_model_needs_a_target_directory(invoke, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(QWEN_CONFIG))
    result = invoke("catalog", "add-model", str(cfg))
    assert result.exit_code == 2
    assert "--to DIR" in result.stderr
    assert (
        "Bad --id"
        not in invoke("catalog", "add-model", str(cfg), "--id", "Bad Id", "--to", str(tmp_path)).stderr
    )
    assert invoke("catalog", "add-model", str(cfg), "--id", "Bad Id", "--to", str(tmp_path)).exit_code == 2


def vllm_bench_result(**changes: object) -> dict:
    """A result in the layout `vllm bench serve --save-result` writes (vllm/benchmarks/serve.py)."""
    doc = {
        "date": "20261120-101500",
        "endpoint_type": "openai-chat",
        "backend": "openai-chat",
        "label": None,
        "model_id": "meta-llama/Llama-3.1-8B-Instruct",
        "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct",
        "num_prompts": 200,
        "request_rate": "inf",
        "burstiness": 1.0,
        "max_concurrency": 32,
        "duration": 41.2,
        "completed": 200,
        "failed": 0,
        "total_input_tokens": 102400,
        "total_output_tokens": 25600,
        "request_throughput": 4.85,
        "request_goodput": 4.5,
        "output_throughput": 621.4,
        "total_token_throughput": 3106.8,
        "mean_ttft_ms": 95.1,
        "median_ttft_ms": 88.0,
        "std_ttft_ms": 20.5,
        "p99_ttft_ms": 180.2,
        "mean_tpot_ms": 48.0,
        "median_tpot_ms": 47.5,
        "std_tpot_ms": 2.1,
        "p99_tpot_ms": 55.0,
        "mean_itl_ms": 47.9,
        "median_itl_ms": 46.0,
        "std_itl_ms": 5.0,
        "p99_itl_ms": 70.0,
        "mean_e2el_ms": 6200.0,
        "median_e2el_ms": 6100.0,
        "std_e2el_ms": 300.0,
        "p99_e2el_ms": 7000.0,
    }
    doc.update(changes)
    return doc


def test_import_vllm_bench_writes_valid_records(invoke, tmp_path: Path) -> None:
    src = tmp_path / "vllm-result.json"
    src.write_text(json.dumps(vllm_bench_result()))
    user = tmp_path / "user"
    result = invoke("catalog", "import-vllm-bench", str(src), "--gpu", "h100-sxm", "--to", str(user))
    assert result.exit_code == 0, result.output
    out = user / "measurements" / "imported-vllm-bench.jsonl"
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["basis"] == "imported"
    assert rec["concurrency"] == 32
    assert (rec["input_tokens"], rec["output_tokens"]) == (512.0, 128.0)
    assert rec["ttft_ms"] == {"mean": 95.1, "p50": 88.0, "p99": 180.2, "stdev": 20.5}
    assert invoke("--catalog", str(user), "catalog", "validate").exit_code == 0
    listed = invoke("--catalog", str(user), "catalog", "list", "measurements", "--format", "json").stdout
    # The bundled catalog carries published records too; pick the imported one.
    imported = [r for r in json.loads(listed) if r["basis"] == "imported"]
    assert [r["output_tokens_per_s"] for r in imported] == [621.4]
    # Importing the same file again adds nothing: the id is a hash of its content.
    invoke(
        "--catalog",
        str(user),
        "catalog",
        "import-vllm-bench",
        str(src),
        "--gpu",
        "h100-sxm",
        "--to",
        str(user),
    )
    assert len(out.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("doc", "args", "expected"),
    [
        (vllm_bench_result(completed=None), (), "'completed' missing"),
        (vllm_bench_result(model_id="acme/secret"), (), "pass --model"),
        (vllm_bench_result(), ("--gpu", "h100"), "unknown GPU 'h100'"),
        (vllm_bench_result(), ("--quant", "int3"), "unknown quantization format"),
        ([1, 2], (), "expected a JSON object"),
        (vllm_bench_result(request_rate="fast"), (), "'request_rate' must be a number > 0 or \"inf\""),
        (vllm_bench_result(request_rate=0), (), "'request_rate' must be a number > 0"),
        (vllm_bench_result(failed="x"), (), "'failed' must be a number, got 'x'"),
        (vllm_bench_result(failed=1.5), (), "'failed' must be a whole number"),
        (vllm_bench_result(max_concurrency="32"), (), "'max_concurrency' must be a number"),
        (vllm_bench_result(total_token_throughput="3106.8"), (), "'total_token_throughput' must be a number"),
        (vllm_bench_result(completed=10.5), (), "'completed' must be a whole number"),
    ],
)
def test_import_vllm_bench_errors(invoke, tmp_path: Path, doc: object, args: tuple, expected: str) -> None:
    src = tmp_path / "r.json"
    src.write_text(json.dumps(doc))
    gpu = () if "--gpu" in args else ("--gpu", "h100-sxm")
    result = invoke("catalog", "import-vllm-bench", str(src), *gpu, *args, "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_import_vllm_bench_twice_into_a_dir_that_is_not_a_catalog_appends_once(
    invoke, tmp_path: Path
) -> None:
    src = tmp_path / "result.json"
    src.write_text(json.dumps(vllm_bench_result()))
    user = tmp_path / "user"
    args = ("catalog", "import-vllm-bench", str(src), "--gpu", "h100-sxm", "--to", str(user))
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 0
    assert "appended 0 record(s)" in again.stderr
    assert "1 already there" in again.stderr
    out = user / "measurements" / "imported-vllm-bench.jsonl"
    assert len(out.read_text().splitlines()) == 1
    assert invoke("--catalog", str(user), "catalog", "validate").exit_code == 0
    twice = invoke(
        "catalog",
        "import-vllm-bench",
        str(src),
        str(src),
        "--gpu",
        "h100-sxm",
        "--out",
        str(tmp_path / "o.jsonl"),
    )
    assert "appended 1 record(s)" in twice.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 1


def test_import_vllm_bench_accepts_infinite_rate_and_a_finite_one(invoke, tmp_path: Path) -> None:
    src = tmp_path / "r.json"
    src.write_text(json.dumps(vllm_bench_result(request_rate=8, max_concurrency=None)))
    out = tmp_path / "o.jsonl"
    result = invoke("catalog", "import-vllm-bench", str(src), "--gpu", "h100-sxm", "--out", str(out))
    assert result.exit_code == 0, result.output
    rec = json.loads(out.read_text())
    assert (rec["request_rate_per_s"], rec.get("concurrency")) == (8.0, None)


def test_planner_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys, planner.cli, planner.catalog.catalog, planner.commands.catalog;"
        "print(sorted(m for m in ('torch','transformers','vllm','bitsandbytes','pandas','scipy','matplotlib')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


BAD_DATE_OFFERS = (
    "schema_version: 1\noffers:\n  - provider: mycloud\n    instance: big\n    region: eu\n"
    "    gpu: h100-sxm\n    gpu_count: 8\n    usd_per_hour: {on_demand: 20.0}\n"
    "    checked_at: 2026-13-45\n    source_url: https://example.com/prices\n"
)


@pytest.mark.parametrize("how", ["validate-dir", "--catalog", "env"])
def test_invalid_yaml_date_exits_2_with_file_line_and_field(invoke, tmp_path: Path, monkeypatch, how) -> None:
    (tmp_path / "cloud_offers.yaml").write_text(BAD_DATE_OFFERS)
    if how == "validate-dir":
        result = invoke("catalog", "validate", str(tmp_path))
    elif how == "--catalog":
        result = invoke("--catalog", str(tmp_path), "catalog", "list", "offers")
    else:
        monkeypatch.setenv("SELFHOST_PLANNER_CATALOG", str(tmp_path))
        result = invoke("catalog", "show", "offer", "aws/p5.48xlarge")
    assert result.exit_code == 2
    assert "cloud_offers.yaml:9: offers[0] (mycloud/big/eu) checked_at: '2026-13-45'" in result.stderr
    assert "month must be in 1..12" in result.stderr
    assert "Traceback" not in result.output


def test_user_offer_replaces_bundled_in_listing(invoke, tmp_path: Path) -> None:
    (tmp_path / "cloud_offers.yaml").write_text(
        "schema_version: 1\noffers:\n  - provider: aws\n    instance: p5.48xlarge\n    region: us-east-1\n"
        "    gpu: h100-sxm\n    gpu_count: 8\n    usd_per_hour: {on_demand: 40.0}\n"
        "    checked_at: 2026-11-20\n    source_url: https://example.com/our-aws-private-pricing\n"
    )
    args = ("--catalog", str(tmp_path), "catalog", "list", "offers", "--provider", "aws", "--gpu", "h100-sxm")
    rows = json.loads(invoke(*args, "--format", "json").stdout)
    p5 = [r for r in rows if r["instance"] == "p5.48xlarge"]
    assert [r["usd_per_hour"]["on_demand"] for r in p5] == [40.0]
    with_history = json.loads(invoke(*args, "--history", "--format", "json").stdout)
    p5 = sorted((r["checked_at"], r["history"]) for r in with_history if r["instance"] == "p5.48xlarge")
    assert p5 == [("2023-09-18", True), ("2026-02-09", True), ("2026-11-20", False)]


def test_show_api_with_a_minimal_override_keeps_and_attributes_fields(invoke, tmp_path: Path) -> None:
    (tmp_path / "api_overrides.yaml").write_text(
        "schema_version: 1\nprices:\n  - provider: openai\n    model: gpt-4o-mini\n"
        "    input_usd_per_mtok: 0.12\n    output_usd_per_mtok: 0.48\n    checked_at: 2026-11-01\n"
        '    source: "our enterprise agreement, signed 2026-10"\n'
    )
    out = invoke("--catalog", str(tmp_path), "catalog", "show", "api", "gpt-4o-mini").stdout
    lines = dict(line.split("  ", 1) for line in out.splitlines())
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert lines["pinned version"] == "gpt-4o-mini-2024-07-18"
    assert lines["input $/1M tokens"] == "0.12  [override]"
    assert lines["cached input $/1M tokens"] == "0.075"
    assert lines["batch discount"] == "50% off input and output"
    assert lines["context limit"] == "128,000 tokens"
    overridden = "override of input_usd_per_mtok, output_usd_per_mtok, price_date"
    assert "our enterprise agreement" in lines[overridden]
    assert lines["other fields from"].startswith("genai-prices")
    dated = invoke("--catalog", str(tmp_path), "catalog", "show", "api", "gpt-4o-mini-2024-07-18")
    assert dated.exit_code == 0
    assert "0.12  [override]" in dated.stdout


@pytest.mark.parametrize(
    ("name", "model", "pinned"),
    [
        ("claude-3-haiku", "claude-3-haiku", "claude-3-haiku-20240307"),
        ("claude-3-haiku-20240307", "claude-3-haiku", "claude-3-haiku-20240307"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet", "one of claude-3-5-sonnet-20240620"),
    ],
)
def test_dated_anthropic_names_resolve_to_their_row(invoke, name: str, model: str, pinned: str) -> None:
    result = invoke("catalog", "show", "api", name)
    assert result.exit_code == 0, result.output
    lines = {k.strip(): v.strip() for k, v in (line.split("  ", 1) for line in result.stdout.splitlines())}
    assert (lines["provider"], lines["model"]) == ("anthropic", model)
    assert lines["pinned version"].startswith(pinned)
    if name != model:
        assert lines["asked for"] == name


def test_a_known_filter_with_no_rows_is_an_empty_answer(invoke) -> None:
    result = invoke("catalog", "list", "offers", "--provider", "akash", "--gpu", "a10g", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_validate_names_its_own_argument_when_a_directory_is_missing(invoke) -> None:
    result = invoke("catalog", "validate", "/nonexistent/dir")
    assert result.exit_code == 2
    assert "(from the DIRECTORIES of catalog validate)" in result.stderr
    assert "--catalog" not in result.stderr


@pytest.mark.parametrize("where", ["before", "after", "equals-after"])
def test_catalog_option_before_or_after_the_command(invoke, tmp_path: Path, where: str) -> None:
    (tmp_path / "api_overrides.yaml").write_text(
        "schema_version: 1\nprices:\n  - {provider: openai, model: gpt-4o-mini, input_usd_per_mtok: 0.11,"
        " output_usd_per_mtok: 0.44, checked_at: 2026-11-01, source: negotiated}\n"
    )
    show = ("catalog", "show", "api", "gpt-4o-mini")
    args = {
        "before": ("--catalog", str(tmp_path), *show),
        "after": (*show, "--catalog", str(tmp_path)),
        "equals-after": (*show, f"--catalog={tmp_path}"),
    }[where]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "0.11" in result.stdout


def test_catalog_options_first_leaves_what_follows_a_double_dash() -> None:
    from planner.cli import catalog_options_first

    assert catalog_options_first(["a", "--catalog", "d", "b", "--", "--catalog", "x"]) == [
        "--catalog", "d", "a", "b", "--", "--catalog", "x",
    ]  # fmt: skip


def test_empty_csv_listing_still_has_a_header(invoke) -> None:
    out = invoke("catalog", "list", "quality", "--format", "csv").stdout
    header = out.splitlines()[0]
    assert header.startswith("id,model,hosting")
    assert len(list(csv.reader(io.StringIO(out)))) == 1


def test_pandas_is_neither_imported_nor_a_core_dependency() -> None:
    import re
    import tomllib

    sources = [*(ROOT / "planner").rglob("*.py"), *(ROOT / "gpu_bench").rglob("*.py")]
    importing = [p for p in sources if re.search(r"^\s*(import|from) pandas\b", p.read_text(), re.M)]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (importing, [d for d in deps if d.startswith("pandas")]) == ([], [])
