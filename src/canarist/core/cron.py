"""CronJob schedules, checked by the rules the Kubernetes API server applies.

Kubernetes validates `spec.schedule` with robfig/cron v3's standard parser and refuses any
schedule that contains `TZ` (a CronJob's time zone is `spec.timeZone`). That parser takes:

* a descriptor: `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`),
  `@hourly`, or `@every <Go duration>`;
* or exactly five fields, minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
  jan-dec) and day of week (0-6 or sun-sat, 0 is Sunday). A field is a comma-separated list
  of `*` or `?`, `n`, `a-b` (a <= b), each optionally followed by `/step` (step >= 1; `n/step`
  means `n-max/step`). Names are three letters, any case.

Nothing else: no `L`, `W`, `#`, no sixth field, no `7` for Sunday.

canarist is stricter than the API server in a few places where what it accepts can only be
a typo: a step so large that it selects a single value (`*/1000`, Kubernetes runs minute 0
only), `@every` below one second (Kubernetes runs it every second), a field with no value
(`,`), and `*-5` (Kubernetes ignores the `-5`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from canarist.core.durations import duration_problem, parse_duration

__all__ = ["DESCRIPTORS", "cron_problem", "every_seconds"]

DESCRIPTORS: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                      "@hourly")
EVERY: Final = "@every "
_NUMBER = re.compile(r"\+?[0-9]+")  # Go's strconv.Atoi, less the sign a range cannot hold


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is low + i


_FIELDS: Final = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                            "oct", "nov", "dec")),
    _Field("day-of-week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def every_seconds(schedule: str) -> float | None:
    """The interval of an `@every <duration>` schedule, in seconds; None for other schedules."""
    text = schedule.strip()
    if not text.startswith(EVERY) or duration_problem(text[len(EVERY):]) is not None:
        return None
    return parse_duration(text[len(EVERY):], field="")


def cron_problem(schedule: str) -> str | None:
    """Why Kubernetes (or canarist, see above) refuses `schedule` as a CronJob schedule, in
    a few words; None if it is valid. Leading and trailing blanks are ignored."""
    text = schedule.strip()
    if not text:
        return "empty; expected 5 fields (minute hour day-of-month month day-of-week) or " \
               "a descriptor such as @hourly"
    if "TZ" in text:
        return "Kubernetes refuses TZ= and CRON_TZ= in a schedule (a CronJob's time zone is " \
               "its spec.timeZone)"
    if text.startswith("@"):
        return _descriptor_problem(text)
    fields = text.split()
    if len(fields) != len(_FIELDS):
        return (f"expected 5 fields (minute hour day-of-month month day-of-week), got "
                f"{len(fields)}" + (" (Kubernetes has no seconds field)"
                                    if len(fields) == 6 else ""))
    for spec, field in zip(fields, _FIELDS, strict=True):
        problem = _field_problem(spec, field)
        if problem is not None:
            return f"{field.name} {_quoted(spec)}: {problem}"
    return None


def _descriptor_problem(text: str) -> str | None:
    if text in DESCRIPTORS:
        return None
    if text.startswith(EVERY):
        duration = text[len(EVERY):]
        if duration_problem(duration) is not None:
            return f"@every needs a Go duration such as 10m or 1h30m, got {_quoted(duration)}"
        if parse_duration(duration, field="") < 1:
            return f"@every needs at least 1s (Kubernetes runs shorter ones every second), " \
                   f"got {_quoted(duration)}"
        return None
    return (f"unknown descriptor {_quoted(text.split()[0])}; expected one of "
            f"{', '.join(DESCRIPTORS)} or @every <duration>")


def _field_problem(spec: str, field: _Field) -> str | None:
    items = [item for item in spec.split(",") if item]  # robfig skips empty list items
    if not items:
        return "no value"
    for item in items:
        problem = _item_problem(item, field)
        if problem is not None:
            return problem if len(items) == 1 else f"{_quoted(item)}: {problem}"
    return None


def _item_problem(item: str, field: _Field) -> str | None:
    range_part, *steps = item.split("/")
    if len(steps) > 1:
        return "too many slashes"
    bounds = range_part.split("-")
    if len(bounds) > 2:
        return "too many hyphens"
    if bounds[0] in ("*", "?"):
        if len(bounds) == 2:
            return f"{bounds[0]} cannot start a range; write {field.low}-{bounds[1]}"
        start, end = field.low, field.high
    else:
        values: list[int] = []
        for bound in bounds:
            value = _value(bound, field)
            if value is None:
                return _expected(field, bound or item)
            values.append(value)
        start, end = values[0], values[-1]
    if steps:
        if not _NUMBER.fullmatch(steps[0]):
            return f"step {_quoted(steps[0])} is not a whole number"
        step = int(steps[0])
        if step == 0:
            return "a step must be at least 1"
        if len(bounds) == 1:
            end = field.high  # "n/step" is "n-high/step"
    else:
        step = 1
    if start < field.low:
        return f"{start} is below {field.low}, the lowest {field.name}"
    if end > field.high:
        return f"{end} is above {field.high}, the highest {field.name}"
    if start > end:
        return f"the range starts after it ends ({start} > {end})"
    if step > 1 and start + step > end:
        return (f"step {step} selects only {start} (the range {start}-{end} is shorter than "
                f"the step); write {start}")
    return None


def _value(text: str, field: _Field) -> int | None:
    lowered = text.lower()
    if lowered in field.names:
        return field.low + field.names.index(lowered)
    if _NUMBER.fullmatch(text):
        return int(text) if len(text) <= 18 else 10**18  # far out of any field's range
    return None


def _expected(field: _Field, got: str) -> str:
    names = f" or {field.names[0]}-{field.names[-1]}" if field.names else ""
    return f"expected a number {field.low}-{field.high}{names}, got {_quoted(got)}"


def _quoted(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[:limit - 1] + "…"
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
