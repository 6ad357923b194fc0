"""Every way a catalog can be wrong gives file, line, field and a fix; none gives a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.catalog import Catalog, CatalogError
from planner.catalog.loader import CatalogIssue
from tests.conftest import CATALOGS

GOOD_MODEL = """\
  - id: tiny-llama
    name: Tiny
    hf_repo: local/tiny
    license: mit
    architecture:
      model_type: llama
      num_layers: 2
      hidden_size: 64
      intermediate_size: 128
      num_attention_heads: 4
      num_kv_heads: 2
      head_dim: 16
      vocab_size: 1000
      tie_word_embeddings: false
      max_context_tokens: 2048
    source:
      citation: written by the test
      checked_at: 2026-11-29
"""


def user_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "user"
    for name, text in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return d


def issues_for(tmp_path: Path, files: dict[str, str]) -> list[CatalogIssue]:
    return Catalog([CATALOGS, user_dir(tmp_path, files)]).validate()


def only(issues: list[CatalogIssue]) -> CatalogIssue:
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def test_bundled_catalog_is_valid() -> None:
    assert Catalog([CATALOGS]).validate() == []


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    issue = only(issues_for(tmp_path, {"models.yaml": "schema_version: 1\nmodels:\n  - id: [unclosed\n"}))
    assert issue.path.endswith("models.yaml")
    assert issue.line in (3, 4)
    assert "YAML syntax" in issue.message


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace(
        "    license: mit\n", "    license: mit\n    license: x\n"
    )
    issue = only(issues_for(tmp_path, {"models.yaml": text}))
    assert "duplicate key 'license'" in issue.message


def test_missing_schema_version_says_what_to_add(tmp_path: Path) -> None:
    issue = only(issues_for(tmp_path, {"models.yaml": "models:\n" + GOOD_MODEL}))
    assert "missing 'schema_version: 1'" in issue.message


def test_newer_schema_version_is_refused_not_misread(tmp_path: Path) -> None:
    issue = only(issues_for(tmp_path, {"gpus.yaml": "schema_version: 2\ngpus: []\n"}))
    assert "schema version 2" in issue.message
    assert "Upgrade selfhost-planner" in issue.message


def test_top_level_must_be_a_mapping_with_the_list(tmp_path: Path) -> None:
    assert "expected a mapping" in only(issues_for(tmp_path, {"models.yaml": "- just a list\n"})).message
    assert (
        "expected a list under models:"
        in only(issues_for(tmp_path, {"models.yaml": "schema_version: 1\nmodels: 3\n"})).message
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    issue = only(issues_for(tmp_path, {"models.yaml": "schema_version: 1\nmodel: []\nmodels: []\n"}))
    assert issue.where == "model"


def test_unknown_nested_field_suggests_the_right_name(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace("num_kv_heads: 2", "num_kv_head: 2")
    issues = issues_for(tmp_path, {"models.yaml": text})
    extra = next(i for i in issues if "unknown field" in i.message)
    assert extra.line == 13  # the line of the misspelled key
    assert "architecture.num_kv_head" in extra.where
    assert "did you mean 'num_kv_heads'" in extra.message
    assert any("missing required field 'num_kv_heads'" in i.message for i in issues)


def test_wrong_type_and_bad_value_show_what_was_given(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace("num_layers: 2", "num_layers: two")
    issue = only(issues_for(tmp_path, {"models.yaml": text}))
    assert issue.line == 9
    assert "'two'" in issue.message
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace("hidden_size: 64", "hidden_size: -64")
    assert "greater than 0" in only(issues_for(tmp_path, {"models.yaml": text})).message


def test_inconsistent_heads_are_explained(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace("num_kv_heads: 2", "num_kv_heads: 3")
    assert "multiple of num_kv_heads" in only(issues_for(tmp_path, {"models.yaml": text})).message


def test_bad_id_explains_the_id_rules(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace("id: tiny-llama", "id: Tiny Llama")
    issue = only(issues_for(tmp_path, {"models.yaml": text}))
    assert "lowercase" in issue.message
    assert issue.line == 3


def test_duplicate_ids_in_one_file(tmp_path: Path) -> None:
    issue = only(
        issues_for(tmp_path, {"models.yaml": "schema_version: 1\nmodels:\n" + GOOD_MODEL + GOOD_MODEL})
    )
    assert "duplicate models entry (first at line 3)" in issue.message


def test_row_that_is_not_a_mapping(tmp_path: Path) -> None:
    issue = only(issues_for(tmp_path, {"gpus.yaml": "schema_version: 1\ngpus:\n  - h100\n"}))
    assert "expected a mapping" in issue.message


def test_published_size_far_from_architecture_is_flagged(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace(
        "license: mit", "license: mit\n    published_params_b: 7"
    )
    issue = only(issues_for(tmp_path, {"models.yaml": text}))
    assert "published_params_b is 7" in issue.message


def test_bundled_ids_out_of_order_say_where_to_move(bundled_copy: Path) -> None:
    path = bundled_copy / "gpus.yaml"
    text = path.read_text()
    first, rest = text.split("\n  - id: a100-40gb", 1)
    block, tail = rest.split("\n  - id: ", 1)
    path.write_text(first + "\n  - id: " + tail.rstrip("\n") + "\n\n  - id: a100-40gb" + block + "\n")
    issue = only(Catalog([bundled_copy]).validate())
    assert "out of order" in issue.message
    assert "move it before" in issue.message


def test_offer_with_unknown_gpu_gets_close_matches(tmp_path: Path) -> None:
    offers = """\
schema_version: 1
offers:
  - provider: mycloud
    instance: big
    region: eu
    gpu: h100sxm
    gpu_count: 8
    usd_per_hour: {on_demand: 20.0}
    checked_at: 2026-11-01
    source_url: https://example.com/prices
"""
    issue = only(issues_for(tmp_path, {"cloud_offers.yaml": offers}))
    assert issue.line == 3
    assert "did you mean 'h100-sxm'" in issue.message


def test_offer_needs_a_price(tmp_path: Path) -> None:
    offers = (
        "schema_version: 1\noffers:\n  - {provider: x, instance: i, region: r, gpu: l4, gpu_count: 1, "
        "usd_per_hour: {}, checked_at: 2026-11-01, source_url: https://example.com}\n"
    )
    assert "at least one price" in only(issues_for(tmp_path, {"cloud_offers.yaml": offers})).message


def test_api_override_with_unknown_open_model(tmp_path: Path) -> None:
    text = (
        "schema_version: 1\nprices:\n  - {provider: acme, model: m, input_usd_per_mtok: 1,"
        " output_usd_per_mtok: 2, open_model: llama-3.1-8b, checked_at: 2026-11-01, source: contract}\n"
    )
    issue = only(issues_for(tmp_path, {"api_overrides.yaml": text}))
    assert "llama-3.1-8b-instruct" in issue.message


def _record(**changes: object) -> dict:
    rec = {
        "id": "rec-1",
        "basis": "measured",
        "model": "llama-3.1-8b-instruct",
        "quant": "bf16",
        "engine": {"name": "vllm", "version": "0.11.0"},
        "device": "cuda",
        "gpu": "h100-sxm",
        "mode": "offline",
        "batch_size": 8,
        "input_tokens": 512,
        "output_tokens": 128,
        "output_tokens_per_s": 1000.0,
        "measured_at": "2026-11-29T10:00:00Z",
        "env": {"gpus": ["NVIDIA H100 80GB HBM3"]},
    }
    rec.update(changes)
    return rec


def _jsonl(*records: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def test_measurement_errors_each_on_their_line(tmp_path: Path) -> None:
    text = _jsonl(
        _record(),
        "{not json",
        _record(id="rec-2", model="llama-3.1-8b"),
        _record(id="rec-3", schema_version=9),
        _record(id="rec-4", basis="published"),
        _record(id="rec-5", device="cpu"),
        _record(id="rec-6", status="oom"),
    )
    issues = issues_for(tmp_path, {"measurements/mine.jsonl": text})
    by_line = {i.line: i.message for i in issues}
    assert "not valid JSON" in by_line[2]
    assert "llama-3.1-8b-instruct" in by_line[3]
    assert "schema_version 9" in by_line[4]
    assert "needs a citation" in by_line[5]
    assert "device=cpu cannot name a gpu" in by_line[6]
    assert "needs an error message" in by_line[7]
    assert len(issues) == 6


def test_failed_config_is_a_valid_record(tmp_path: Path) -> None:
    text = _jsonl(_record(status="oom", error="CUDA out of memory", output_tokens_per_s=None))
    assert issues_for(tmp_path, {"measurements/mine.jsonl": text}) == []


def test_non_utf8_file(tmp_path: Path) -> None:
    d = user_dir(tmp_path, {})
    d.mkdir(parents=True, exist_ok=True)
    (d / "gpus.yaml").write_bytes(b"schema_version: 1\ngpus: []\n# \xff\xfe\n")
    assert "not UTF-8" in only(Catalog([CATALOGS, d]).validate()).message


def test_loading_a_broken_kind_raises_one_error_listing_its_problems(tmp_path: Path) -> None:
    text = "schema_version: 1\nmodels:\n" + GOOD_MODEL.replace("num_layers: 2", "num_layers: 0")
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"models.yaml": text})])
    with pytest.raises(CatalogError) as err:
        _ = cat.models
    assert "models.yaml:9" in str(err.value)
    assert "planner catalog validate" in str(err.value)
    assert len(cat.gpus) >= 11  # other kinds still load


def test_user_row_overrides_bundled_row(tmp_path: Path) -> None:
    text = (
        "schema_version: 1\nprices:\n  - {provider: openai, model: gpt-4o-mini, input_usd_per_mtok: 0.1,"
        " output_usd_per_mtok: 0.4, checked_at: 2026-11-01, source: our contract}\n"
    )
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"api_overrides.yaml": text})])
    price = cat.api_price("gpt-4o-mini")
    assert (price.input_usd_per_mtok, price.source) == (0.1, "our contract")


OFFER = """\
  - provider: mycloud
    instance: big
    region: eu
    gpu: h100-sxm
    gpu_count: 8
    usd_per_hour: {on_demand: 20.0}
    checked_at: 2026-11-01
    source_url: https://example.com/prices
"""


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("2026-13-45", "month must be in 1..12"),
        ("2026-02-30", "day is out of range for month"),
        ("2026-11-01 25:00:00", "hour must be in 0..23"),
    ],
)
def test_impossible_yaml_dates_are_row_errors_not_tracebacks(tmp_path: Path, bad: str, reason: str) -> None:
    text = "schema_version: 1\noffers:\n" + OFFER.replace("checked_at: 2026-11-01", f"checked_at: {bad}")
    issue = only(issues_for(tmp_path, {"cloud_offers.yaml": text}))
    assert (issue.line, issue.where) == (9, "offers[0] (mycloud/big/eu) checked_at")
    assert f"'{bad}' is not a valid date ({reason}); write YYYY-MM-DD" in issue.message


def test_a_bad_date_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    bad_date = OFFER.replace("checked_at: 2026-11-01", "checked_at: 2026-13-45")
    bad_gpu = OFFER.replace("instance: big", "instance: other").replace("gpu: h100-sxm", "gpu: h100sxm")
    model = GOOD_MODEL.replace("checked_at: 2026-11-29", "checked_at: 2026-02-30")
    issues = issues_for(
        tmp_path,
        {
            "cloud_offers.yaml": "schema_version: 1\noffers:\n" + bad_date + bad_gpu,
            "models.yaml": "schema_version: 1\nmodels:\n" + model,
        },
    )
    messages = sorted(f"{Path(i.path).name}:{i.line}: {i.message}" for i in issues)
    assert len(messages) == 3, messages
    assert any(m.startswith("cloud_offers.yaml:9:") and "2026-13-45" in m for m in messages)
    assert any(m.startswith("cloud_offers.yaml:11:") and "h100-sxm" in m for m in messages)
    assert any(m.startswith("models.yaml:20:") and "2026-02-30" in m for m in messages)


def test_a_date_and_time_where_a_date_is_expected(tmp_path: Path) -> None:
    text = "schema_version: 1\noffers:\n" + OFFER.replace("2026-11-01", "2026-11-01 10:00:00")
    assert "got a date and time" in only(issues_for(tmp_path, {"cloud_offers.yaml": text})).message


def test_unhashable_yaml_key_names_the_line(tmp_path: Path) -> None:
    text = "schema_version: 1\ngpus:\n  - id: x\n    ? [a, b]\n    : 1\n"
    issue = only(issues_for(tmp_path, {"gpus.yaml": text}))
    assert issue.line == 4
    assert "a key must be a plain value" in issue.message


def test_explicit_yaml_tag_that_cannot_be_read(tmp_path: Path) -> None:
    issue = only(issues_for(tmp_path, {"gpus.yaml": "schema_version: 1\ngpus:\n  - id: !!int abc\n"}))
    assert issue.line == 3
    assert "cannot read this value" in issue.message


@pytest.mark.parametrize(
    ("change", "line", "expected"),
    [
        (("gpu_count: 8", 'gpu_count: "8"'), 7, "valid integer, got str '8' (write it without quotes)"),
        (("gpu_count: 8", "gpu_count: 8.0"), 7, "valid integer"),
        (("gpu_count: 8", "gpu_count: true"), 7, "valid integer, got bool True"),
        (("{on_demand: 20.0}", '{on_demand: "2.5"}'), 8, "valid number, got str '2.5'"),
        (("source_url:", 'history: "yes"\n    source_url:'), 10, "valid boolean, got str 'yes'"),
        (("checked_at: 2026-11-01", "checked_at: 20261101"), 9, "valid date, got int 20261101"),
    ],
)
def test_catalog_types_are_strict(tmp_path: Path, change: tuple[str, str], line: int, expected: str) -> None:
    text = "schema_version: 1\noffers:\n" + OFFER.replace(*change)
    issue = only(issues_for(tmp_path, {"cloud_offers.yaml": text}))
    assert issue.line == line
    assert expected in issue.message


def test_strict_but_an_int_is_a_number_and_quoted_iso_dates_are_dates(tmp_path: Path) -> None:
    text = "schema_version: 1\noffers:\n" + OFFER.replace("20.0", "20").replace(
        "checked_at: 2026-11-01", "checked_at: '2026-11-01'"
    )
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"cloud_offers.yaml": text})])
    assert cat.validate() == []
    offer = next(o for o in cat.offers if o.provider == "mycloud")
    assert offer.usd_per_hour.on_demand == 20.0
    assert str(offer.checked_at) == "2026-11-01"


def test_jsonl_dates_are_text_and_bad_ones_are_explained(tmp_path: Path) -> None:
    text = _jsonl(_record(), _record(id="rec-2", measured_at="2026-13-29T10:00:00Z"))
    issue = only(issues_for(tmp_path, {"measurements/mine.jsonl": text}))
    assert issue.line == 2
    assert "is not a valid date and time" in issue.message


P5_USER_ROW = """\
schema_version: 1
offers:
  - provider: aws
    instance: p5.48xlarge
    region: us-east-1
    gpu: h100-sxm
    gpu_count: 8
    usd_per_hour: {on_demand: 40.0}
    checked_at: 2026-11-20
    source_url: https://example.com/our-aws-private-pricing
"""


def test_user_offer_replaces_the_bundled_current_row(tmp_path: Path) -> None:
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"cloud_offers.yaml": P5_USER_ROW})])
    assert cat.validate() == []
    current = [o for o in cat.current_offers() if (o.provider, o.instance) == ("aws", "p5.48xlarge")]
    assert [(o.usd_per_hour.on_demand, str(o.checked_at)) for o in current] == [(40.0, "2026-11-20")]


def test_the_replaced_bundled_offer_stays_as_history(tmp_path: Path) -> None:
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"cloud_offers.yaml": P5_USER_ROW})])
    history = [o for o in cat.offers if (o.instance, o.history) == ("p5.48xlarge", True)]
    by_date = {str(o.checked_at): o for o in history}
    assert set(by_date) == {"2023-09-18", "2026-02-09"}  # the bundled history row and the replaced row
    assert by_date["2026-02-09"].usd_per_hour.on_demand == 55.04
    assert "replaced by" in by_date["2026-02-09"].note
    assert "cloud_offers.yaml:3" in by_date["2026-02-09"].note


def test_a_user_offer_older_than_the_bundled_one_still_wins_and_says_so(tmp_path: Path) -> None:
    old = P5_USER_ROW.replace("2026-11-20", "2025-01-01")
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"cloud_offers.yaml": old})])
    current = next(o for o in cat.current_offers() if o.instance == "p5.48xlarge")
    assert current.usd_per_hour.on_demand == 40.0
    replaced = next(o for o in cat.offers if o.history and str(o.checked_at) == "2026-02-09")
    assert "newer than the row that replaced it" in replaced.note


def test_two_current_rows_for_one_instance_in_one_file_are_a_duplicate(tmp_path: Path) -> None:
    rows = P5_USER_ROW + P5_USER_ROW.split("offers:\n", 1)[1].replace("2026-11-20", "2026-11-21")
    issue = only(issues_for(tmp_path, {"cloud_offers.yaml": rows}))
    assert "duplicate offers entry (first at line 3)" in issue.message


MINIMAL_OVERRIDE = """\
schema_version: 1
prices:
  - provider: openai
    model: gpt-4o-mini
    input_usd_per_mtok: 0.12
    output_usd_per_mtok: 0.48
    checked_at: 2026-11-01
    source: "our enterprise agreement, signed 2026-10"
"""


def test_api_override_keeps_every_field_it_does_not_state(tmp_path: Path) -> None:
    bundled = Catalog([CATALOGS]).api_price("gpt-4o-mini")
    cat = Catalog([CATALOGS, user_dir(tmp_path, {"api_overrides.yaml": MINIMAL_OVERRIDE})])
    assert cat.validate() == []
    price = cat.api_price("gpt-4o-mini")
    assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == (0.12, 0.48)
    assert price.pinned_version == "gpt-4o-mini-2024-07-18" == bundled.pinned_version
    assert price.cached_input_usd_per_mtok == bundled.cached_input_usd_per_mtok == 0.075
    assert price.batch_discount == bundled.batch_discount == 0.5
    assert price.context_limit_tokens == bundled.context_limit_tokens
    assert cat.api_price("gpt-4o-mini-2024-07-18").input_usd_per_mtok == 0.12
    assert str(price.price_date) == "2026-11-01"  # the genai-prices date dated other prices
    assert set(price.overrides) == {"input_usd_per_mtok", "output_usd_per_mtok", "price_date"}
    assert "our enterprise agreement" in price.overrides["input_usd_per_mtok"]
    assert price.base_source.startswith("genai-prices")


def test_overrides_layer_field_by_field(tmp_path: Path) -> None:
    first = user_dir(tmp_path, {"api_overrides.yaml": MINIMAL_OVERRIDE})
    second = tmp_path / "second"
    second.mkdir()
    (second / "api_overrides.yaml").write_text(
        MINIMAL_OVERRIDE.replace("source: ", "cached_input_usd_per_mtok: 0.05\n    source: ").replace(
            "our enterprise agreement, signed 2026-10", "cache addendum"
        )
    )
    price = Catalog([CATALOGS, first, second]).api_price("gpt-4o-mini")
    assert price.cached_input_usd_per_mtok == 0.05
    assert "cache addendum" in price.overrides["cached_input_usd_per_mtok"]
    assert price.base_source.startswith("genai-prices")


def test_loader_fields_may_not_be_written_in_a_file(tmp_path: Path) -> None:
    text = MINIMAL_OVERRIDE + "    overrides: {input_usd_per_mtok: me}\n"
    issue = only(issues_for(tmp_path, {"api_overrides.yaml": text}))
    assert issue.line == 9
    assert "set by the loader" in issue.message


def test_api_prices_json_rows_have_their_lines(tmp_path: Path) -> None:
    row = '{"provider": "acme", "model": "m", "input_usd_per_mtok": 1, "output_usd_per_mtok": 2, '
    row += '"checked_at": "2026-11-01", "source": "contract"}'
    text = '{"schema_version": 1, "prices": [\n' + f"{row},\n{row},\n" + '{"provider": "acme"},\n7\n]}\n'
    issues = issues_for(tmp_path, {"api_prices.json": text})
    by_line = {i.line: i.message for i in issues}
    assert "duplicate api entry (first at line 2)" in by_line[3]
    assert "missing required field" in by_line[4]
    assert "expected a mapping" in by_line[5]


def test_the_bundled_api_prices_json_reports_real_lines(bundled_copy: Path) -> None:
    path = bundled_copy / "api_prices.json"
    lines = path.read_text().splitlines()
    lines[9] = lines[9].replace('"input_usd_per_mtok": ', '"input_usd_per_mtok": -', 1)
    path.write_text("\n".join(lines) + "\n")
    issue = only(Catalog([bundled_copy]).validate())
    assert issue.line == 10
    assert "input_usd_per_mtok" in issue.where


def test_bundled_offers_cover_mi300x_spot_reserved_and_every_hyperscaler() -> None:
    cat = Catalog([CATALOGS])
    current = cat.current_offers()
    assert any(o.gpu == "mi300x" for o in current)  # else MI300X can never be planned
    assert sum(1 for o in current if o.usd_per_hour.spot) >= 10
    assert sum(1 for o in current if o.usd_per_hour.reserved_1y and o.usd_per_hour.reserved_3y) >= 5
    assert {"aws", "azure", "gcp"} <= {o.provider for o in current}
    assert sum(1 for o in current if o.provider == "azure") >= 5
    for o in current:  # a row's reserved price undercuts its on-demand price, spot too
        p = o.usd_per_hour
        if p.on_demand:
            assert all(x is None or x < p.on_demand for x in (p.spot, p.reserved_1y, p.reserved_3y)), o.key


def test_runpod_secure_prices_follow_the_newest_source_and_keep_the_old_as_history() -> None:
    offers = [o for o in Catalog([CATALOGS]).offers if o.instance == "1x-h100-sxm-secure"]
    seen = {o.history: (o.usd_per_hour.on_demand, str(o.checked_at)) for o in offers}
    assert seen == {False: (3.99, "2026-11-09"), True: (3.49, "2026-09-25")}


def test_undated_gcp_prices_are_history_only() -> None:
    for o in Catalog([CATALOGS]).offers:
        if "kubernetes/autoscaler" in o.source_url:
            assert o.history, o.key
            assert "carries no date" in o.note
