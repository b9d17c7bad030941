"""Go time.Time values for the Sprig date functions: layouts, zones, String()."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["GoTime", "format_layout", "load_location", "local_zone", "parse_layout"]

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_ZERO = datetime(1, 1, 1, tzinfo=UTC)


class GoTime:
    """A Go time.Time: an aware datetime plus nanoseconds beyond microseconds."""

    go_type = "time.Time"
    __slots__ = ("dt", "nanos")

    def __init__(self, dt: datetime, nanos: int = 0) -> None:
        self.dt = dt
        self.nanos = nanos  # 0..999 extra nanoseconds

    @classmethod
    def zero(cls) -> GoTime:
        return cls(_ZERO)

    def unix(self) -> int:
        return int((self.dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1))

    def go_string(self) -> str:
        return format_layout(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    def rfc3339nano(self) -> str:
        return format_layout(self, "2006-01-02T15:04:05.999999999Z07:00")

    def in_zone(self, tz: tzinfo) -> GoTime:
        return GoTime(self.dt.astimezone(tz), self.nanos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoTime) and (self.dt, self.nanos) == (other.dt, other.nanos)

    def __hash__(self) -> int:
        return hash((self.dt, self.nanos))


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """Go's time.Local: $TZ, else /etc/localtime, else UTC."""
    tz = os.environ.get("TZ")
    if tz is not None:
        return load_location(tz.lstrip(":")) or UTC
    try:
        return _etc_localtime()
    except (OSError, ZoneInfoNotFoundError, ValueError):
        return UTC


def _etc_localtime() -> tzinfo:
    with open("/etc/localtime", "rb") as f:
        return ZoneInfo.from_file(f, key="Local")


def load_location(name: str) -> tzinfo | None:
    """time.LoadLocation: "" and "UTC" are UTC, "Local" is local; None if unknown."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# ------------------------------------------------------------------ layout chunks

_CHUNK = re.compile(
    r"January|Jan|Monday|Mon|MST|01|02|03|04|05|06|002|15|1|2006|2|_2006|__2|_2|3|4|5|PM|pm"
    r"|-070000|-07:00:00|-0700|-07:00|-07|Z070000|Z07:00:00|Z0700|Z07:00|Z07"
    r"|[.,](?:0+|9+)(?!\d)"
)


def _chunks(layout: str) -> list[tuple[bool, str]]:
    """Split a layout into (is_std, text) pieces like Go's nextStdChunk."""
    out: list[tuple[bool, str]] = []
    i = 0
    lit = []
    while i < len(layout):
        m = _CHUNK.match(layout, i)
        if m is None:
            lit.append(layout[i])
            i += 1
            continue
        tok = m.group()
        if tok == "_2006":
            lit.append("_")
            tok = "2006"
            i += 1
        if lit:
            out.append((False, "".join(lit)))
            lit = []
        out.append((True, tok))
        i += len(tok)
    if lit:
        out.append((False, "".join(lit)))
    return out


def _offset(t: GoTime) -> int:
    off = t.dt.utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def _zone_name(t: GoTime) -> str:
    name = t.dt.tzname() or ""
    if t.dt.tzinfo is UTC:
        return "UTC"
    if isinstance(t.dt.tzinfo, timezone) and name.startswith("UTC"):
        return ""
    return name


def _tz(t: GoTime, tok: str) -> str:
    off = _offset(t)
    if tok.startswith("Z") and off == 0:
        return "Z"
    sign = "-" if off < 0 else "+"
    off = abs(off)
    h, m, s = off // 3600, off // 60 % 60, off % 60
    body = tok.lstrip("Z-")
    if body == "07":
        return f"{sign}{h:02d}"
    if body == "0700":
        return f"{sign}{h:02d}{m:02d}"
    if body == "07:00":
        return f"{sign}{h:02d}:{m:02d}"
    if body == "070000":
        return f"{sign}{h:02d}{m:02d}{s:02d}"
    return f"{sign}{h:02d}:{m:02d}:{s:02d}"


def format_layout(t: GoTime, layout: str) -> str:  # noqa: C901
    """time.Time.Format."""
    d = t.dt
    out: list[str] = []
    for std, tok in _chunks(layout):
        if not std:
            out.append(tok)
            continue
        if tok == "2006":
            out.append(f"{d.year:04d}")
        elif tok == "06":
            out.append(f"{d.year % 100:02d}")
        elif tok == "January":
            out.append(_MONTHS[d.month - 1])
        elif tok == "Jan":
            out.append(_MONTHS[d.month - 1][:3])
        elif tok == "1":
            out.append(str(d.month))
        elif tok == "01":
            out.append(f"{d.month:02d}")
        elif tok == "Monday":
            out.append(_DAYS[d.weekday()])
        elif tok == "Mon":
            out.append(_DAYS[d.weekday()][:3])
        elif tok == "2":
            out.append(str(d.day))
        elif tok == "_2":
            out.append(f"{d.day:2d}")
        elif tok == "02":
            out.append(f"{d.day:02d}")
        elif tok == "__2":
            out.append(f"{d.timetuple().tm_yday:3d}")
        elif tok == "002":
            out.append(f"{d.timetuple().tm_yday:03d}")
        elif tok == "15":
            out.append(f"{d.hour:02d}")
        elif tok in ("3", "03"):
            h = d.hour % 12 or 12
            out.append(str(h) if tok == "3" else f"{h:02d}")
        elif tok in ("4", "04"):
            out.append(str(d.minute) if tok == "4" else f"{d.minute:02d}")
        elif tok in ("5", "05"):
            out.append(str(d.second) if tok == "5" else f"{d.second:02d}")
        elif tok in ("PM", "pm"):
            s = "PM" if d.hour >= 12 else "AM"
            out.append(s if tok == "PM" else s.lower())
        elif tok == "MST":
            name = _zone_name(t)
            if name:
                out.append(name)
            else:
                off = _offset(t) // 60
                out.append(f"{'-' if off < 0 else '+'}{abs(off) // 60:02d}{abs(off) % 60:02d}")
        elif tok[0] in "-Z":
            out.append(_tz(t, tok))
        else:  # fractional seconds
            ns = f"{d.microsecond * 1000 + t.nanos:09d}"[: len(tok) - 1]
            if tok[1] == "9":
                ns = ns.rstrip("0")
                if ns:
                    out.append(tok[0] + ns)
            else:
                out.append(tok[0] + ns)
    return "".join(out)


# ------------------------------------------------------------------ parsing

class LayoutError(ValueError):
    pass


def _num(value: str, width: int, fixed: bool) -> tuple[int, str]:
    m = re.match(rf"\d{{{width}}}" if fixed else rf"\d{{1,{width}}}", value)
    if not m:
        raise LayoutError("bad number")
    return int(m.group()), value[m.end() :]


def parse_layout(layout: str, value: str, loc: tzinfo) -> GoTime:  # noqa: C901
    """time.ParseInLocation for the common layout elements; raises LayoutError."""
    year, month, day, hour, minute, sec, nanos = 1, 1, 1, 0, 0, 0, 0
    pm: bool | None = None
    tz: tzinfo | None = None
    chunks = _chunks(layout)
    for ci, (std, tok) in enumerate(chunks):
        frac_next = ci + 1 < len(chunks) and chunks[ci + 1][0] and chunks[ci + 1][1][0] in ".,"
        if not std:
            if not value.startswith(tok):
                raise LayoutError("literal mismatch")
            value = value[len(tok) :]
            continue
        if tok == "2006":
            year, value = _num(value, 4, True)
        elif tok == "06":
            y, value = _num(value, 2, True)
            year = y + (1900 if y >= 69 else 2000)
        elif tok in ("January", "Jan"):
            names = _MONTHS if tok == "January" else [m[:3] for m in _MONTHS]
            for i, nm in enumerate(names):
                if value.lower().startswith(nm.lower()):
                    month, value = i + 1, value[len(nm) :]
                    break
            else:
                raise LayoutError("bad month")
        elif tok in ("Monday", "Mon"):
            names = _DAYS if tok == "Monday" else [d[:3] for d in _DAYS]
            for nm in names:
                if value.lower().startswith(nm.lower()):
                    value = value[len(nm) :]
                    break
            else:
                raise LayoutError("bad weekday")
        elif tok in ("1", "01"):
            month, value = _num(value, 2, tok == "01")
        elif tok in ("2", "02", "_2"):
            if tok == "_2" and value.startswith(" "):
                value = value[1:]
            day, value = _num(value, 2, tok == "02")
        elif tok in ("002", "__2"):
            _, value = _num(value.lstrip(" "), 3, tok == "002")
        elif tok == "15":
            hour, value = _num(value, 2, False)
        elif tok in ("3", "03"):
            hour, value = _num(value, 2, tok == "03")
        elif tok in ("4", "04"):
            minute, value = _num(value, 2, tok == "04")
        elif tok in ("5", "05"):
            sec, value = _num(value, 2, tok == "05")
            m = None if frac_next else re.match(r"[.,](\d+)", value)
            if m:
                nanos = int(m.group(1)[:9].ljust(9, "0"))
                value = value[m.end() :]
        elif tok in ("PM", "pm"):
            ap = value[:2].upper()
            if ap not in ("AM", "PM"):
                raise LayoutError("bad am/pm")
            pm, value = ap == "PM", value[2:]
        elif tok == "MST":
            m = re.match(r"[A-Z]{3,5}|[+-]\d{4}", value)
            if not m:
                raise LayoutError("bad zone")
            abbr, value = m.group(), value[m.end() :]
            tz = UTC if abbr in ("UTC", "GMT") else _abbr_zone(abbr, loc)
        elif tok[0] in "-Z":
            if tok[0] == "Z" and value.startswith("Z"):
                tz, value = UTC, value[1:]
                continue
            pat = {"07": r"[+-]\d\d", "0700": r"[+-]\d{4}", "07:00": r"[+-]\d\d:\d\d",
                   "070000": r"[+-]\d{6}", "07:00:00": r"[+-]\d\d:\d\d:\d\d"}[tok.lstrip("Z-")]
            m = re.match(pat, value)
            if not m:
                raise LayoutError("bad offset")
            digits = m.group()[1:].replace(":", "").ljust(6, "0")
            secs = int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6])
            tz = timezone((-1 if m.group()[0] == "-" else 1) * timedelta(seconds=secs))
            value = value[m.end() :]
        else:
            m = re.match(r"[.,](\d+)", value)
            if not m:
                raise LayoutError("bad fraction")
            nanos = int(m.group(1)[:9].ljust(9, "0"))
            value = value[m.end() :]
    if value:
        raise LayoutError("extra text")
    if pm is not None:
        if hour > 12:
            raise LayoutError("bad hour")
        hour = hour % 12 + (12 if pm else 0)
    try:
        naive = datetime(year, month, day, hour, minute, sec, nanos // 1000)
    except ValueError as e:
        raise LayoutError(str(e)) from None
    dt = naive.replace(tzinfo=tz if tz is not None else loc)
    if tz is None and isinstance(loc, ZoneInfo):
        dt = dt.replace(fold=0)
    return GoTime(dt, nanos % 1000)


def _abbr_zone(abbr: str, loc: tzinfo) -> tzinfo:
    """A zone abbreviation: the location's if it matches, else a zero offset named abbr."""
    now = datetime.now(loc)
    for probe in (now, now.replace(month=1), now.replace(month=7)):
        if probe.tzname() == abbr:
            off = probe.utcoffset() or timedelta(0)
            return timezone(off, abbr)
    return timezone(timedelta(0), abbr)
