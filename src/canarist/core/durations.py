"""Go durations: parsed like `time.ParseDuration`, printed like `time.Duration.String`.

Iter8 declares its duration fields (`ready.timeout`, `http.duration`, the ghz timeouts
...) as strings and hands them to Go, so the accepted text is exactly Go's: an optional
sign, then one or more decimal numbers each with a unit (ns, us, µs, ms, s, m, h),
as in "300ms", "-1.5h" or "2h45m". A bare "0" is the only number without a unit.
Values are whole nanoseconds in the int64 range, as in Go; fractions finer than a
nanosecond are truncated the way Go truncates them.

Numbers are refused: a YAML `timeout: 10` does not decode into Iter8's string field,
and a bare number is ambiguous (Go's time.Duration counts nanoseconds, people usually
mean seconds), so the user is asked to write "10s".
"""

from __future__ import annotations

import math
from typing import Final

from canarist.core.errors import DurationError
from canarist.core.validation import show_value

__all__ = ["format_duration", "format_duration_ns", "parse_duration", "parse_duration_ns"]

_NS_PER_UNIT: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_LIMIT: Final = 1 << 63
_DIGITS: Final = frozenset("0123456789")


def parse_duration(text: object, *, field: str) -> float:
    """Seconds in a Go duration string; DurationError naming `field` if it is not one."""
    return parse_duration_ns(text, field=field) / 1e9


def parse_duration_ns(text: object, *, field: str) -> int:
    """Nanoseconds in a Go duration string (exact, unlike the float seconds)."""
    problem = duration_problem(text)
    if problem is not None:
        raise DurationError(f"{field}: {problem}" if field else problem)
    assert isinstance(text, str)
    nanoseconds = _parse(text)
    assert nanoseconds is not None
    return nanoseconds


def duration_problem(text: object) -> str | None:
    """What is wrong with `text` as a Go duration, without naming a field; None if nothing."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return (f"expected a Go duration such as {text}s, got the number {text} "
                "(a number has no unit)")
    if not isinstance(text, str) or _parse(text) is None:
        return f"expected a Go duration such as 30s, 1m30s or 500ms, got {show_value(text)}"
    return None


def _parse(text: str) -> int | None:
    """time.ParseDuration; None where Go returns an error."""
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        return None
    total = 0
    while rest:
        parsed = _component(rest)
        if parsed is None:
            return None
        value, rest = parsed
        total += value
        if total > _LIMIT:
            return None
    if negative:
        return -total
    return total if total < _LIMIT else None


def _component(text: str) -> tuple[int, str] | None:
    """One `<number><unit>` at the start of `text`: (nanoseconds, what follows)."""
    if text[0] != "." and text[0] not in _DIGITS:
        return None
    end = _digits_end(text, 0)
    whole_digits = text[:end].lstrip("0")
    if len(whole_digits) > 19 or int(whole_digits or "0") > _LIMIT:
        return None
    whole = int(whole_digits or "0")
    has_whole, has_fraction = end > 0, False
    fraction, scale = 0, 1.0
    if text[end : end + 1] == ".":
        stop = _digits_end(text, end + 1)
        fraction, scale = _fraction(text[end + 1 : stop])
        has_fraction = stop > end + 1
        end = stop
    if not (has_whole or has_fraction):
        return None
    unit_end = end
    while unit_end < len(text) and text[unit_end] != "." and text[unit_end] not in _DIGITS:
        unit_end += 1
    unit = _NS_PER_UNIT.get(text[end:unit_end])
    if unit is None or whole > _LIMIT // unit:
        return None
    value = whole * unit
    if fraction > 0:
        value += int(float(fraction) * (float(unit) / scale))
        if value > _LIMIT:
            return None
    return value, text[unit_end:]


def _digits_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return end


def _fraction(digits: str) -> tuple[int, float]:
    """Go's leadingFraction: digits past int64 precision are read but ignored."""
    value, scale = 0, 1.0
    for digit in digits:
        if value > (_LIMIT - 1) // 10:
            break
        candidate = value * 10 + int(digit)
        if candidate > _LIMIT:
            break
        value, scale = candidate, scale * 10
    return value, scale


def format_duration(seconds: float) -> str:
    """Go's Duration.String for a number of seconds, e.g. "1m30s", "500ms", "0s"."""
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format {seconds} as a duration")
    return format_duration_ns(round(seconds * 1e9))


def format_duration_ns(nanoseconds: int) -> str:
    """Go's Duration.String for a number of nanoseconds."""
    if not -_LIMIT <= nanoseconds < _LIMIT:
        raise ValueError(f"{nanoseconds}ns is outside the range of a Go duration")
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    magnitude = abs(nanoseconds)
    if magnitude < 1_000:
        return f"{sign}{magnitude}ns"
    if magnitude < 1_000_000:
        return f"{sign}{_decimal(magnitude, 3)}µs"
    if magnitude < 1_000_000_000:
        return f"{sign}{_decimal(magnitude, 6)}ms"
    seconds, fraction = divmod(magnitude, 1_000_000_000)
    text = f"{_decimal(seconds % 60 * 1_000_000_000 + fraction, 9)}s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes >= 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _decimal(value: int, places: int) -> str:
    """value / 10**places without trailing zeros (nor the point when it is whole)."""
    whole, fraction = divmod(value, 10**places)
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:0{places}d}".rstrip("0")
