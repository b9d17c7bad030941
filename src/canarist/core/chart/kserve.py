"""`kserve.isvc` discovery (a `kserve` task put first), and the tasks that build on it:
`agreement` and `rollout`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from canarist.core.chart.sheet import Entry, Sheet, value_key
from canarist.core.validation import ValuesKeys
from canarist.core.validation import show_value as _show


def kserve(sheet: Sheet) -> list[Entry]:
    """`kserve.isvc`: a discovery task that runs first in every loop."""
    section = sheet.section("kserve")
    if not section:
        return []
    sheet.unknown_keys("kserve", section, ("isvc", "namespace", "ingress"))
    isvc = sheet.string("kserve.isvc", section.get("isvc"), "the name of an InferenceService")
    with_: dict[str, Any] = {"isvc": isvc}
    namespace = section.get("namespace") or sheet.namespace
    if namespace is not None:
        with_["namespace"] = sheet.string("kserve.namespace", namespace, "a namespace name")
    if section.get("ingress") is not None:
        ingress = sheet.string("kserve.ingress", section["ingress"],
                              "a URL such as http://127.0.0.1:8080")
        if ingress is not None and not re.match(r"^https?://[^/]+/?$", ingress):
            sheet.problem("kserve.ingress", "expected the ingress address alone, such as "
                         f"http://127.0.0.1:8080, got {_show(ingress)}")
        with_["ingress"] = ingress
    return [({"task": "kserve", "with": with_}, ValuesKeys("kserve"))]


def check_rollout(sheet: Sheet, tasks: list[Any]) -> None:
    if "rollout" not in tasks:
        return
    where = value_key("tasks", tasks.index("rollout"))
    if not isinstance(sheet.values.get("kserve"), dict) or not sheet.values["kserve"].get("isvc"):
        sheet.problem(where, "rollout moves an InferenceService's canaryTrafficPercent: set "
                     "kserve.isvc=<name> so canarist can find it")
    if "assess" not in tasks[: tasks.index("rollout")]:
        sheet.problem(where, "rollout acts on the verdict of assess: list assess before it, "
                     'e.g. --set "tasks={custommetrics,assess,rollout}"')


def agreement(sheet: Sheet) -> list[Entry]:
    """`agreement`: with `kserve.isvc` it compares the discovered versions (unless
    `versions` lists them), and its baseline is assess's unless it names its own."""
    section = sheet.section("agreement")
    if section is None:
        return []
    params = copy.deepcopy(section)
    if sheet.discovers() and not params.get("versions"):
        params["kserve"] = True  # each discovered version, at its tag host
    assess = sheet.values.get("assess")
    chosen = assess.get("baseline") if isinstance(assess, dict) else None
    if chosen is None and isinstance(assess, dict) and sheet.discovers() and isinstance(
            assess.get("relative"), dict):
        chosen = 1  # what assess defaults to with discovery
    if chosen is not None:
        if "baseline" not in params:
            params["baseline"] = chosen
        elif params["baseline"] != chosen:
            sheet.problem("agreement.baseline",
                         f"{_show(params['baseline'])} is not assess.baseline "
                         f"{_show(chosen)}: the baseline's agreement with itself is the "
                         "noise floor its candidates are judged against, so both name the "
                         "same version")
    return [({"task": "agreement", "with": params}, ValuesKeys("agreement"))]


def rollout(sheet: Sheet) -> list[Entry]:
    section = sheet.section("rollout")
    if section is None:
        return []
    return [({"task": "rollout", "with": copy.deepcopy(section)}, ValuesKeys("rollout"))]
