"""Go durations: time.ParseDuration grammar and Duration.String output."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canarist.core.durations import (
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)
from canarist.core.errors import DurationError, InputError

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000
M = 60 * S
H = 60 * M
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

VALID = [
    ("0", 0),
    ("-0", 0),
    ("+0", 0),
    ("0s", 0),
    ("5s", 5 * S),
    ("30s", 30 * S),
    ("1478s", 1478 * S),
    ("-5s", -5 * S),
    ("+5s", 5 * S),
    ("-0s", 0),
    ("300ms", 300 * MS),
    ("-1.5h", -(H + 30 * M)),
    ("2h45m", 2 * H + 45 * M),
    ("1m30s", 90 * S),
    ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS),
    ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
    ("1ns", 1),
    ("1us", US),
    ("1µs", US),  # micro sign U+00B5
    ("1μs", US),  # Greek mu U+03BC
    ("1.5s", 1500 * MS),
    ("1.s", S),
    (".5s", 500 * MS),
    ("1.0s", S),
    ("1.00000000000000000000001s", S),
    ("0.1234567891s", 123_456_789),
    ("0.3333333333333333333h", 1_200_000_000_000),
    ("100.00100s", 100 * S + MS),
    ("52763797000ns", 52_763_797_000),
    ("10m10m", 20 * M),  # units may repeat and come in any order
    ("1s1h", H + S),
    ("9223372036854775807ns", INT64_MAX),
    ("-9223372036854775808ns", INT64_MIN),
    ("9223372036854775.807us", INT64_MAX),
    ("2562047h47m16.854775807s", INT64_MAX),
    ("-2562047h47m16.854775808s", INT64_MIN),
    ("0.000000001s", 1),
    ("0.0000000009s", 0),  # finer than a nanosecond is truncated
    ("00001s", S),
]


@pytest.mark.parametrize(("text", "nanoseconds"), VALID)
def test_valid_durations(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text, field="f") == nanoseconds
    assert parse_duration(text, field="f") == nanoseconds / 1e9


INVALID = [
    "",
    "3",
    "10",
    "-",
    "+",
    "s",
    ".",
    ".s",
    "-.",
    "1.5",
    "00",
    "+-3s",
    "-+3s",
    "1h-2m",
    "1 s",
    " 1s",
    "1s ",
    "1S",
    "1H",
    "1d",
    "1sec",
    "1e3s",
    "1.2.3s",
    "1s.",
    "3000000h",
    "9223372036854775808ns",
    "-9223372036854775809ns",
    "2562047h47m16.854775808s",
    "99999999999999999999ns",
    "1" + "0" * 5000 + "s",
    "0x10s",
    "1_000s",
    "١s",  # a non-ASCII digit
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_durations(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text, field="ready.timeout")
    message = str(caught.value)
    assert message.startswith("ready.timeout: expected a Go duration such as 30s, 1m30s or 500ms, "
                              'got "')
    assert len(message) < 150  # a long value is shortened, the line stays readable
    assert text[:20] in message


def test_duration_errors_are_input_errors() -> None:
    with pytest.raises(InputError):
        parse_duration("soon", field="http.duration")


def test_quotes_in_the_message_are_escaped() -> None:
    with pytest.raises(DurationError, match=r'got "a\\"b\\nc"'):
        parse_duration('a"b\nc', field="f")


@pytest.mark.parametrize("value", [10, 0, 1.5, -2])
def test_numbers_are_refused(value: float) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value, field="ready.timeout")
    assert str(caught.value) == (
        f"ready.timeout: expected a Go duration such as {value}s, got the number {value} "
        "(a number has no unit)"
    )


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), (None, "null"), ([1], "a list")])
def test_other_types_are_refused(value: object, shown: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(value, field="grpc.timeout")
    assert str(caught.value) == (
        f"grpc.timeout: expected a Go duration such as 30s, 1m30s or 500ms, got {shown}")


FORMATTED = [
    (0, "0s"),
    (1, "1ns"),
    (999, "999ns"),
    (1_000, "1µs"),
    (1_100, "1.1µs"),
    (2_200 * US, "2.2ms"),
    (500 * MS, "500ms"),
    (S, "1s"),
    (1_500 * MS, "1.5s"),
    (3 * S + 300 * MS, "3.3s"),
    (59 * S, "59s"),
    (M, "1m0s"),
    (90 * S, "1m30s"),
    (4 * M + 5 * S + 1, "4m5.000000001s"),
    (H, "1h0m0s"),
    (5 * H + 6 * M + 7 * S + 1 * MS, "5h6m7.001s"),
    (8 * H + 1, "8h0m0.000000001s"),
    (-1, "-1ns"),
    (-1_500 * MS, "-1.5s"),
    (-(H + 30 * M), "-1h30m0s"),
    (INT64_MAX, "2562047h47m16.854775807s"),
    (INT64_MIN, "-2562047h47m16.854775808s"),
]


@pytest.mark.parametrize(("nanoseconds", "text"), FORMATTED)
def test_format_like_go(nanoseconds: int, text: str) -> None:
    assert format_duration_ns(nanoseconds) == text
    assert parse_duration_ns(text, field="f") == nanoseconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.0, "0s"), (90, "1m30s"), (0.5, "500ms"), (0.3, "300ms"), (1e-9, "1ns"),
     (-2.25, "-2.25s"), (3600.5, "1h0m0.5s"), (0.1 + 0.2, "300ms")],
)  # fmt: skip
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -float("inf"), 1e10, -1e10])
def test_format_refuses_what_go_cannot_represent(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_duration(seconds)


@given(st.integers(INT64_MIN, INT64_MAX))
def test_format_then_parse_round_trips_exactly(nanoseconds: int) -> None:
    text = format_duration_ns(nanoseconds)
    assert parse_duration_ns(text, field="f") == nanoseconds


@given(st.integers(-(2**50), 2**50))
def test_seconds_round_trip(nanoseconds: int) -> None:
    text = format_duration_ns(nanoseconds)
    seconds = parse_duration(text, field="f")
    assert format_duration(seconds) == text


UNITS = {"ns": NS, "us": US, "µs": US, "μs": US, "ms": MS, "s": S, "m": M, "h": H}
# fraction digits that keep the value a whole number of nanoseconds
EXACT_DIGITS = {"ns": 0, "us": 3, "µs": 3, "μs": 3, "ms": 6, "s": 9, "m": 9, "h": 9}


@st.composite
def components(draw: st.DrawFn) -> tuple[str, Fraction]:
    unit = draw(st.sampled_from(sorted(UNITS)))
    whole = draw(st.integers(0, 10**5))
    digits = draw(st.text("0123456789", max_size=EXACT_DIGITS[unit]))
    number = f"{whole}.{digits}" if digits or draw(st.booleans()) else str(whole)
    return number + unit, Fraction(f"{whole}.{digits or 0}") * UNITS[unit]


@given(st.lists(components(), min_size=1, max_size=5), st.sampled_from(["", "+", "-"]))
def test_generated_durations_parse_to_their_sum(parts: list[tuple[str, Fraction]], sign: str) -> None:
    text = sign + "".join(part for part, _ in parts)
    total = sum((value for _, value in parts), Fraction(0))
    assert total.denominator == 1
    expected = -int(total) if sign == "-" else int(total)
    assert parse_duration_ns(text, field="f") == expected


@settings(max_examples=500)
@given(st.text(alphabet="0123456789.+-nsuµμmh x", max_size=16) | st.text(max_size=16))
def test_any_text_parses_or_raises_duration_error(text: str) -> None:
    try:
        value = parse_duration_ns(text, field="f")
    except DurationError as exc:
        assert "\n" not in str(exc)
    else:
        assert INT64_MIN <= value <= INT64_MAX
