from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.errors import PlannerError
from planner.units import format_count, parse_count, parse_int_count, parse_int_list


@pytest.mark.parametrize(
    ("text", "value"),
    [("500k", 5e5), ("5M", 5e6), ("1.5B", 1.5e9), ("2e6", 2e6), ("1200", 1200), ("5m", 5e6), ("1,000", 1000)],
)
def test_parse_count_reads_suffixes(text: str, value: float) -> None:
    assert parse_count(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "5X", "-5M", "0", "nan", "1..2"])
def test_parse_count_rejects_bad_input_with_the_fix(text: str) -> None:
    with pytest.raises(PlannerError) as err:
        parse_count(text, "--tokens-per-day")
    assert "--tokens-per-day" in str(err.value)


def test_parse_int_count_rejects_fractions() -> None:
    assert parse_int_count("8k") == 8000
    with pytest.raises(PlannerError, match="whole number"):
        parse_int_count("1.5")


def test_parse_int_list() -> None:
    assert parse_int_list("1,8, 32") == [1, 8, 32]
    with pytest.raises(PlannerError, match="comma-separated"):
        parse_int_list(" , ")


@given(st.floats(min_value=1, max_value=1e14, allow_nan=False))
def test_format_count_round_trips_to_three_significant_digits(value: float) -> None:
    assert parse_count(format_count(value)) == pytest.approx(value, rel=5e-3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5M", "must be positive, got '-5M'"),
        ("-0.5", "must be positive"),
        ("0", "must be positive"),
        ("1e400", "too large (not a finite number)"),
        ("lots", "cannot read 'lots' as a number"),
        (float("nan"), "is not a number"),
    ],
)
def test_parse_count_says_what_is_wrong(text, message: str) -> None:
    with pytest.raises(PlannerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_count(text, "--tokens-per-day")


def test_the_engine_vocabulary_is_the_performance_models() -> None:
    from planner.perf.predict import STATIC_BATCH_ENGINES
    from planner.perf.roofline import CONTINUOUS_ENGINES
    from planner.vocab import ENGINES

    assert set(ENGINES) == {*CONTINUOUS_ENGINES, *STATIC_BATCH_ENGINES}


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("8k", 8192), ("8.5k", 8704), ("128k", 131072), ("1M", 1048576), ("100k", 102400), ("4096", 4096)],
)
def test_context_lengths_count_in_powers_of_two_with_or_without_a_fraction(text: str, tokens: int) -> None:
    from planner.units import parse_context

    assert parse_context(text) == tokens


def test_a_context_that_is_no_whole_number_of_tokens_is_refused() -> None:
    from planner.units import parse_context

    with pytest.raises(PlannerError, match="whole, positive"):
        parse_context("8.0001k")
