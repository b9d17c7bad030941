"""`ready`: one `ready` task per resource named (service, deploy, ksvc, isvc, chaosengine).
"""

from __future__ import annotations

from typing import Any

from canarist.core.chart.sheet import Entry, Sheet, scalar_text, truthy, value_key
from canarist.core.validation import ValuesKeys
from canarist.core.validation import show_value as _show

# (values key, group, version, resource, condition), in the order Iter8 emits them.
READY_KINDS: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("service", "", "v1", "services", None),
    ("deploy", "apps", "v1", "deployments", "Available"),
    ("ksvc", "serving.knative.dev", "v1", "services", "Ready"),
    ("isvc", "serving.kserve.io", "v1beta1", "inferenceservices", "Ready"),
    ("chaosengine", "litmuschaos.io", "v1alpha1", "chaosengines", None),
)


def ready(sheet: Sheet) -> list[Entry]:
    section = sheet.section("ready")
    if section is None:
        return []
    allowed = (*(kind[0] for kind in READY_KINDS), "timeout", "namespace")
    sheet.unknown_keys("ready", section, allowed)
    timeout = section.get("timeout")
    namespace: str | None = sheet.namespace
    if truthy(section.get("namespace")):
        namespace = scalar_text(section["namespace"])
        if namespace is None:
            sheet.problem("ready.namespace", "expected a namespace name")
    entries: list[Entry] = []
    for key, group, version, resource, condition in READY_KINDS:
        value = section.get(key)
        if not truthy(value):
            continue
        name = scalar_text(value)
        if name is None:
            sheet.problem(value_key("ready", key), f"expected a resource name, got {_show(value)}")
            continue
        with_: dict[str, Any] = {"name": name}
        if group:
            with_["group"] = group
        with_["version"] = version
        with_["resource"] = resource
        if condition:
            with_["condition"] = condition
        if namespace:
            with_["namespace"] = namespace
        if truthy(timeout):
            with_["timeout"] = timeout
        keys = ValuesKeys("ready", {("name",): value_key("ready", key)})
        entries.append(({"task": "ready", "with": with_}, keys))
    if not entries and not any(truthy(section.get(kind[0])) for kind in READY_KINDS):
        sheet.problem(
            "ready",
            "please set at least one of "
            + ", ".join(f"ready.{kind[0]}" for kind in READY_KINDS),
        )
    return entries
