"""`custommetrics` (checked, passed on) and `assess` (SLO and relative objective maps into
sorted lists).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from canarist.core.chart.sheet import Entry, Sheet, truthy, value_key
from canarist.core.metrics import NAME_RULE, is_valid_name
from canarist.core.validation import ValuesKeys
from canarist.core.validation import show_value as _show

_INTEGER = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _number(value: Any) -> int | float | None:
    """An SLO limit as the chart's YAML would read it; None if it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def custommetrics(sheet: Sheet) -> list[Entry]:
    section = sheet.section("custommetrics")
    if section is None:
        return []
    templates = section.get("templates")
    if not truthy(templates):
        sheet.problem(
            "custommetrics.templates",
            "please set at least one provider template, e.g. "
            "custommetrics.templates.kserve-prometheus=<template name or URL>",
        )
    elif not isinstance(templates, dict):
        sheet.problem(
            "custommetrics.templates",
            f"expected a map from provider name to template, got {_show(templates)}",
        )
    else:
        for provider, template in templates.items():
            sheet.string(
                value_key("custommetrics", "templates", provider), template,
                "a template name or URL",
            )
    values = section.get("values")
    if values is not None and not isinstance(values, dict):
        sheet.problem("custommetrics.values", f"expected a map of values, got {_show(values)}")
    version_values = section.get("versionValues")
    if version_values is not None:
        if not isinstance(version_values, list):
            sheet.problem(
                "custommetrics.versionValues",
                f"expected a list with one map of values per version, got "
                f"{_show(version_values)}",
            )
        else:
            for index, item in enumerate(version_values):
                if item is not None and not isinstance(item, dict):
                    sheet.problem(
                        value_key("custommetrics", "versionValues", index),
                        f"expected a map of values for version {index}, got {_show(item)}",
                    )
    return [({"task": "custommetrics", "with": copy.deepcopy(section)},
             ValuesKeys("custommetrics"))]


def assess(sheet: Sheet) -> list[Entry]:
    section = sheet.section("assess")
    if section is None:
        return []
    sheet.unknown_keys("assess", section, ("SLOs", "relative", "baseline", "confidence"))
    renames: dict[tuple[str | int, ...], str] = {}
    known_problems = len(sheet.problems)
    with_: dict[str, Any] = {"SLOs": objectives(sheet, section, "SLOs", "limit", renames)}
    relative = objectives(sheet, section, "relative", "allowance", renames)
    if relative:
        with_["relative"] = relative
        if not with_["SLOs"]:
            del with_["SLOs"]
    for key in ("baseline", "confidence"):
        if key in section:
            with_[key] = section[key]
            renames[(key,)] = value_key("assess", key)
    if relative and "baseline" not in with_ and sheet.discovers():
        with_["baseline"] = 1  # discovery numbers the previously rolled-out revision 1
    if len(sheet.problems) == known_problems and not with_.get("SLOs") and not relative and not any(
        isinstance(section.get(kind), dict) and any(
            isinstance(section[kind].get(side), dict) and section[kind][side]
            for side in ("upper", "lower"))
        for kind in ("SLOs", "relative")
    ):
        sheet.problem(
            "assess.SLOs",
            "please set at least one SLO, e.g. assess.SLOs.upper.http/latency-mean=50, or "
            "a relative objective, e.g. assess.relative.upper.http/latency-p90=20%",
        )
    return [({"task": "assess", "with": with_}, ValuesKeys("assess", renames))]


def objectives(sheet: Sheet, section: Mapping[str, Any], kind: str, field: str,
               renames: dict[tuple[str | int, ...], str]) -> dict[str, list[dict[str, Any]]]:
    """`assess.<kind>.upper|lower` maps from metric to limit or allowance, as lists in
    metric order (Go ranges over map keys in byte order)."""
    given = section.get(kind)
    if given is None:
        return {}
    if not isinstance(given, dict):
        sheet.problem(value_key("assess", kind), f"expected a map with upper and lower, got {_show(given)}")
        return {}
    sheet.unknown_keys(value_key("assess", kind), given, ("upper", "lower"))
    listed_sides: dict[str, list[dict[str, Any]]] = {}
    for side in ("upper", "lower"):
        entries = given.get(side)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            sheet.problem(value_key("assess", kind, side),
                         f"expected a map from metric name to {field}, got {_show(entries)}")
            continue
        listed: list[dict[str, Any]] = []
        for metric in sorted(entries):
            key = value_key("assess", kind, side, metric)
            if not is_valid_name(metric):
                sheet.problem(key, NAME_RULE)
            value = entries[metric] if field == "allowance" else _number(entries[metric])
            if value is None:
                sheet.problem(key, f"expected a number, got {_show(entries[metric])}")
                continue
            for name in ("metric", field):
                renames[(kind, side, len(listed), name)] = key
            listed.append({"metric": metric, field: value})
        if listed:
            listed_sides[side] = listed
    return listed_sides
