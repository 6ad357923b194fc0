"""Renderers: column keys are dotted paths into nested rows, or labels that contain dots themselves."""

from __future__ import annotations

from planner.report.render import Column, lookup, render_rows


def test_lookup_follows_a_dotted_path_into_nested_rows() -> None:
    assert lookup({"ttft_ms": {"p50": 12.5}}, "ttft_ms.p50") == 12.5
    assert lookup({"ttft_ms": {"p50": 12.5}}, "ttft_ms.p99") is None


def test_a_key_with_dots_in_its_name_is_found_as_it_is() -> None:
    row = {"llama-3.1-8b-instruct": 0.833, "openai/gpt-4.1": 0.9}
    assert lookup(row, "llama-3.1-8b-instruct") == 0.833
    table = render_rows(
        [row], [Column("llama-3.1-8b-instruct", "q", ".2f"), Column("openai/gpt-4.1", "q2")], "table"
    )
    assert "0.83" in table
    assert "0.9" in table
    assert "-" not in table.splitlines()[-1]


def test_two_close_prices_are_printed_apart() -> None:
    from planner.report.economics import usd_pair

    assert usd_pair(0.1211, 0.1172) == ("$0.121", "$0.117")
    assert usd_pair(0.12001, 0.12004) == ("$0.12001", "$0.12004")
    assert usd_pair(0.0339, 0.025) == ("$0.0339", "$0.025")


def test_an_error_band_is_printed_as_the_factor_it_is() -> None:
    from planner.perf.estimate import band_text

    assert band_text(0.25) == "-20%/+25%"  # 100 -> 80 to 125
    assert band_text(0.5) == "-33%/+50%"
