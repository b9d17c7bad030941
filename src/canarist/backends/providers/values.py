"""The dot a provider template sees for one version: merged values and `elapsedTimeSeconds`.

Rendering for version i merges `values` and `versionValues[i]` (version values win, maps
merge key by key, lists are replaced, a null removes the key) and sets `elapsedTimeSeconds`
from `startingTime` (RFC 3339) or the experiment's start. Values are typed as Iter8's Go code
saw them (see `go_data`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

from canarist.core.errors import ValuesError
from canarist.core.gotemplate.values import Int64
from canarist.core.values import merge_patch

__all__ = ["elapsed_seconds", "go_data", "template_data"]

_RFC3339: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$"
)


def _parse_rfc3339(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone == "Z":
        tz: timezone = UTC
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None


def elapsed_seconds(values: Mapping[str, Any], start_time: datetime, now: datetime) -> int:
    """Whole seconds from `startingTime` (when set) or `start_time` to `now`, truncated."""
    start = start_time
    if "startingTime" in values:
        parsed = _parse_rfc3339(values["startingTime"])
        if parsed is None:
            raise ValuesError(
                f"cannot parse startingTime {values['startingTime']!r}: expected an RFC 3339 time "
                "such as 2023-03-01T10:00:00Z")
        start = parsed
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int((now - start).total_seconds())


def go_data(value: Any, path: str = "") -> Any:
    """Values as an Iter8 template saw them: decoded by encoding/json into interface{}.

    Every number is a float64 (so `{{ eq .n 7 }}` is Go's "incompatible types" and
    `{{ ne .n 7.0 }}` renders, as in Iter8) and times are RFC 3339 text. An `Int64`, a value
    canarist computes itself with Iter8's type (`elapsedTimeSeconds`), stays an int64.
    """
    if isinstance(value, Mapping):
        return {str(k): go_data(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [go_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool | Int64):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ValuesError(f"{path or 'value'}: {value} is too large for a number; "
                              "quote it to pass it as text") from None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def template_data(
    values: Mapping[str, Any],
    version_values: Mapping[str, Any] | None,
    *,
    start_time: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The dot one version's template sees: merged values plus `elapsedTimeSeconds`.

    Numbers have Iter8's types: values are float64, `elapsedTimeSeconds` an int64.
    """
    merged = merge_patch(values, version_values)
    merged["elapsedTimeSeconds"] = Int64(elapsed_seconds(merged, start_time, now))
    data: dict[str, Any] = go_data(merged)
    return data
