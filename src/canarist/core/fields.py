"""One type per kind of value that users give canarist, shared by every task's inputs.

Each type checks its value once and, when the value is wrong, says what was expected in
the user's terms ("a Go duration such as 30s"), never in the validation library's. The
messages carry no key: `core.validation` puts the key the user typed in front of them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from canarist.core.durations import duration_problem, parse_duration
from canarist.core.metrics import NAME_RULE, is_valid_name
from canarist.core.stats.compare import Allowance
from canarist.core.validation import show_value

__all__ = [
    "AllowanceText",
    "Confidence",
    "Duration",
    "FiniteNumber",
    "HeaderName",
    "HeaderValue",
    "MetricName",
    "Percentile",
    "PositiveInt",
    "RequestBody",
    "Text",
    "grpc_target_problem",
    "header_value_problem",
    "url_problem",
]

MIN_DURATION_S = 0.001
"""The shortest duration any input accepts (1ms): less is a unit typo (ns or us for s)."""


def scalar_text(value: Any) -> Any:
    """A YAML scalar as the text Go would read into a string: true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(scalar_text)]
"""Text; a number or true/false (as `--set` types them) is taken as the text it was."""


def _duration(value: Any) -> Any:
    problem = duration_problem(value)
    if problem is not None:
        raise ValueError(problem)
    seconds = parse_duration(value, field="")
    if seconds <= 0:
        raise ValueError(f"expected a positive Go duration such as 30s, got {show_value(value)}")
    if seconds < MIN_DURATION_S:
        raise ValueError(f"expected a Go duration of at least 1ms such as 30s, got "
                         f"{show_value(value)}")
    return value


Duration = Annotated[str, BeforeValidator(_duration)]
"""A Go duration of at least 1ms (`30s`, `1m30s`, `500ms`), kept as the text the user wrote."""

PositiveInt = Annotated[int, Field(ge=1)]
"""A whole number of at least 1."""


def _percentile(value: float) -> float:
    if not 0 < value <= 100:
        raise ValueError(f"expected a percentile above 0 and at most 100, got {value:g}")
    return value


Percentile = Annotated[float, AfterValidator(_percentile)]
"""A percentile in (0, 100]."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


FiniteNumber = Annotated[float, AfterValidator(_finite)]


def _metric_name(value: str) -> str:
    if not is_valid_name(value):
        raise ValueError(f"invalid metric name {show_value(value)}; {NAME_RULE}")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
"""`provider/metric` or `provider/metric/aggregation`."""


def _body(value: Any) -> Any:
    """Text as it is; a JSON object (from a values file or `--set-json`) serialized."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, list):
        raise ValueError(
            "expected text or a JSON object, got a list (--set reads {...} as a list): give "
            "JSON with --set-json, or put the body in a file and set payloadFile")
    raise ValueError(f"expected text or a JSON object, got {show_value(value)}")


RequestBody = Annotated[str, BeforeValidator(_body)]
"""A request body: text, or a JSON object sent serialized."""


def _allowance(value: Any) -> Any:
    try:
        return Allowance.parse(value).text
    except ValueError as exc:
        raise ValueError(str(exc)) from None


AllowanceText = Annotated[str, BeforeValidator(_allowance)]
"""How much worse a candidate may be than its baseline: `20%` or a plain number (`5`),
kept as the user wrote it."""


def _confidence(value: float) -> float:
    if not 0.5 <= value < 1:
        raise ValueError(f"expected a confidence level of at least 0.5 and below 1, such as "
                         f"0.95, got {value:g}")
    return value


Confidence = Annotated[float, AfterValidator(_confidence)]
"""A confidence level in [0.5, 1)."""


# -- where requests go, and what they carry -------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_GRPC_RESOLVERS = frozenset({"dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock", "xds",
                             "google-c2p"})


def url_problem(value: str, *, echo: bool = True) -> str | None:
    """Why `value` is not an http:// or https:// URL with a host (and a valid port) that a
    request can be sent to; None if it is one. `echo=False` leaves the value out (a URL that
    is a secret, such as a Slack webhook)."""
    expected = "expected an http:// or https:// URL with a host, such as " \
               "http://localhost:8080/path"
    got = f"; got {show_value(value)}" if echo else ""
    if _CONTROL.search(value):
        return f"{expected}{got} (it has control characters)"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"{expected}{got} ({exc})"
    if " " in parts.netloc:  # a space in the path or query is sent encoded; in a host, never
        return f"{expected}{got} (a space in the host)"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{expected}{got}"
    if port == 0:
        return f"{expected}{got} (port 0)"
    return None


def grpc_target_problem(value: str) -> str | None:
    """Why `value` is not a gRPC target: `host:port` (`[::1]:50051`), or a target with a
    name resolver (`dns:///host:port`, `unix:/path`); None if it is one."""
    expected = "expected host:port such as model.default:8081 (or a gRPC target such as " \
               "dns:///host:port)"
    if _CONTROL.search(value) or " " in value or not value:
        return f"{expected}, got {show_value(value)}"
    scheme = value.partition(":")[0]
    if scheme in _GRPC_RESOLVERS and not value[len(scheme) + 1:].isdigit():
        return None  # a resolver's target: dns:///…, unix:…, ipv4:…; gRPC checks the rest
    name, sep, port = value.rpartition(":")
    if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536 \
            or (name.startswith("[") != name.endswith("]")):
        return f"{expected}, got {show_value(value)}"
    return None


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header value (a line break would end the header
    and start another); None if it can."""
    if _HEADER_VALUE_CONTROL.search(value):
        return f"expected a header value on one line, without control characters, got " \
               f"{show_value(value)}"
    return None


def _header_value(value: str) -> str:
    problem = header_value_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _header_name(value: Any) -> Any:
    if isinstance(value, str) and not _HEADER_NAME.fullmatch(value):
        raise ValueError(f"expected a header name (letters, digits and !#$%&'*+.^_`|~-), got "
                         f"{show_value(value)}")
    return value


HeaderName = Annotated[str, BeforeValidator(_header_name)]
"""An HTTP header name (an RFC 9110 token)."""

HeaderValue = Annotated[str, BeforeValidator(scalar_text), AfterValidator(_header_value)]
"""An HTTP header value: text on one line (a number or true/false as the text it was)."""
