"""The chart's defaults and Helm's coalescing of them under the user's values; the names
the chart knows (tasks, runners, log levels, the keys it alone reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.core.values import coalesce_defaults, merge_values

TASK_NAMES: tuple[str, ...] = (
    "agreement", "assess", "custommetrics", "grpc", "http", "ready", "rollout", "slack", "github",
    "notify", "abnmetrics",
)
RUNNERS: tuple[str, ...] = ("none", "job", "cronjob")
LOG_LEVELS: tuple[str, ...] = ("trace", "debug", "info", "warning", "warn", "error", "fatal",
                               "panic")
CHART_ONLY_KEYS = frozenset(
    {"payloadURL", "protoURL", "dataURL", "binaryDataURL", "metadataURL",
     "warmupNumRequests", "warmupDuration"}
)
"""Keys only the chart reads: it removes them from `with` blocks. Iter8's chart left them
there and Iter8 ignored them, so the tasks tolerate them in experiment files Iter8 wrote."""


def chart_defaults() -> dict[str, Any]:
    """The chart's default values (Iter8's `values.yaml`, with canarist's image)."""
    return {
        "image": "canarist:latest",
        "majorMinor": "v0.13",
        "runner": "none",
        "logLevel": "info",
        # Measured (`bench/costs.py pod`, docs/benchmarks.md): `canarist k run` for the
        # tutorial's loop peaked at 134 MiB with the official Kubernetes client, above the
        # 128Mi limit these values had, and at 83 MiB with canarist's own. The request keeps
        # room for larger answers; the limit for the jq evaluator's child as well.
        "resources": {
            "requests": {"memory": "192Mi", "cpu": "250m"},
            "limits": {"memory": "384Mi", "cpu": "500m"},
        },
    }


def resolve_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the chart works with: defaults coalesced under a copy of `values`.

    `iter8Image` is accepted as an alias of `image` (an explicit `image` wins).
    """
    user = merge_values(values)  # a copy, with every map key as text
    if "image" not in user and user.get("iter8Image") is not None:
        user["image"] = user["iter8Image"]
    return coalesce_defaults(user, chart_defaults())
