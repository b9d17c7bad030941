"""`http` and `grpc`: downloads as `curl` run tasks, then a warmup copy if asked for, then
the load test.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Mapping
from typing import Any

from canarist.core.chart.sheet import Entry, Sheet, truthy, value_key
from canarist.core.validation import Location, ValuesKeys
from canarist.core.validation import show_value as _show

# grpc download keys: (values key, file name, ghz key it sets)
GRPC_DOWNLOADS: tuple[tuple[str, str, str], ...] = (
    ("protoURL", "ghz.proto", "proto"),
    ("dataURL", "data.json", "data-file"),
    ("binaryDataURL", "data.bin", "binary-file"),
    ("metadataURL", "metadata.json", "metadata-file"),
)

_SAFE_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _curl(url: str, target: str) -> dict[str, Any]:
    return {"run": f"curl -sSfL -o {shlex.quote(target)} {shlex.quote(url)}"}


def endpoints(sheet: Sheet, task: str, section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    value = section.get("endpoints")
    if value is None:
        return {}
    if not isinstance(value, dict):
        sheet.problem(
            value_key(task, "endpoints"),
            f"expected a map from endpoint id to endpoint parameters, got {_show(value)}",
        )
        return {}
    out: dict[str, dict[str, Any]] = {}
    for endpoint_id in sorted(value):
        endpoint = value[endpoint_id]
        if isinstance(endpoint, dict):
            out[endpoint_id] = endpoint
        else:
            sheet.problem(
                value_key(task, "endpoints", endpoint_id),
                f"expected a map of endpoint parameters, got {_show(endpoint)}",
            )
    return out


def download(
    sheet: Sheet, task: str, where: list[str | int], params: dict[str, Any], url_key: str,
    target: str, sets: str,
) -> dict[str, Any] | None:
    """Turn `<url_key>` in `params` into a curl `run` task; `params[sets]` gets the file."""
    url = params.pop(url_key, None)
    if not truthy(url):
        return None
    if not isinstance(url, str):
        sheet.problem(value_key(task, *where, url_key), f"expected a URL, got {_show(url)}")
        return None
    if not _SAFE_FILE.fullmatch(target):
        sheet.problem(
            value_key(task, *where),
            "an endpoint id that names a downloaded file may use only letters, digits, "
            "'.', '_' and '-'",
        )
        return None
    params[sets] = target
    return _curl(url, target)


def http(sheet: Sheet) -> list[Entry]:
    return load_test(sheet, "http", downloads=(("payloadURL", "payload.dat", "payloadFile"),),
                          count_key="numRequests")


def grpc(sheet: Sheet) -> list[Entry]:
    return load_test(sheet, "grpc", downloads=GRPC_DOWNLOADS, count_key="total")


def load_test(sheet: Sheet, task: str, *, downloads: tuple[tuple[str, str, str], ...],
              count_key: str) -> list[Entry]:
    """Downloads (`curl` run tasks), then a warmup copy if asked for, then the load test.

    A warmup copy takes `warmupNumRequests` as its count, or `warmupDuration` as its
    duration; problems with those are reported at those keys.
    """
    section = sheet.section(task)
    if section is None:
        return []
    params = copy.deepcopy(section)
    count = params.pop("warmupNumRequests", None)
    duration = params.pop("warmupDuration", None)
    entries: list[Entry] = []
    for url_key, target, sets in downloads:
        run = download(sheet, task, [], params, url_key, target, sets)
        if run:
            entries.append((run, None))
    for endpoint_id, endpoint in endpoints(sheet, task, params).items():
        for url_key, target, sets in downloads:
            run = download(sheet, task, ["endpoints", endpoint_id], endpoint, url_key,
                                f"{endpoint_id}_{target}", sets)
            if run:
                entries.append((run, None))
    if task == "http" and sheet.discovers() and not params.get("versionValues") \
            and not params.get("endpoints") and "://" not in str(params.get("url") or ""):
        params["kserve"] = True  # each discovered version, at its tag host
    if truthy(count) or truthy(duration):
        warm = copy.deepcopy(params)
        renames: dict[Location, str]
        if truthy(count):
            warm[count_key] = count
            renames = {(count_key,): value_key(task, "warmupNumRequests")}
        else:
            warm.pop(count_key, None)
            warm["duration"] = duration
            renames = {("duration",): value_key(task, "warmupDuration")}
        warm["warmup"] = True
        entries.append(({"task": task, "with": warm}, ValuesKeys(task, renames)))
    entries.append(({"task": task, "with": params}, ValuesKeys(task)))
    return entries
