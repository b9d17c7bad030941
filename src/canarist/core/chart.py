"""The experiment chart: Helm values -> `{"spec": [...], "result": {...}}`.

This does what Iter8 0.13's `experiment` chart template did, without Helm: it walks
`tasks` in order and expands each name into one or more spec entries (`ready` shortcuts,
`curl` download `run` tasks, warmup load tests, `slack`/`github` -> `notify`, SLO maps ->
sorted lists), then adds the initial `result`.

`render_experiment` applies `chart_defaults()` itself (Helm's coalescing: a user `null`
removes a default), so callers pass only the user's values.

Where canarist differs from the Iter8 chart, on purpose:

* Every problem in the values is collected and reported at once (`SpecError.problems`),
  each naming the value key, instead of stopping at the first `fail`.
* Chart-only keys (`payloadURL`, `protoURL`, `dataURL`, `binaryDataURL`, `metadataURL`,
  `warmupNumRequests`, `warmupDuration`) are removed from `with`; tasks validate strictly.
* Download tasks use `curl -sSfL` (fail on HTTP errors, follow redirects) with the URL
  shell-quoted, and run once, before any warmup task (Iter8 downloaded twice).
* A warmup given by `warmupDuration` drops `numRequests` from the warmup copy, so the
  duration really applies (Iter8's warmup kept `numRequests`, which wins in fortio).
* `slack.softFailure=false` / `github.softFailure=false` are honoured (Iter8 bug #3).
* `slack`/`github` name a built-in payload template (`payloadTemplate: slack|github`)
  unless `payloadTemplateURL` is given.
* `github.tokenEnv` / `github.tokenFile` keep the token out of the experiment: the notify
  task gets `tokenEnv`/`tokenFile` and `tokenScheme: token`, and sends
  `Authorization: token <secret>` itself. `github.token` is still accepted and, as in
  Iter8, lands in the `Authorization` header of the stored experiment.
* `notify` may be listed in `tasks` directly, with its `with` block under `notify`.
* `abnmetrics` is rejected: the A/B/n service it reads is gone upstream.
* Stricter checks Iter8 lacked: `ready` with no shortcut, unknown keys under `ready`,
  `assess`, `slack` and `github`, `assess` without SLOs, non-numeric SLO limits, malformed
  metric names, durations and cron schedules, `runner`, `logLevel`.
* `versionNames` (canarist) names the versions in reports and notifications
  (`--set 'versionNames={canary,baseline}'`): distinct non-empty names, at most one per
  version; rendered into `result.versionNames`.
* `kserve.isvc` (canarist) finds the versions of an InferenceService: a `kserve` task
  (`isvc`, `namespace`, `ingress`) is put first, and `assess.baseline` defaults to 1 (the
  previously rolled-out revision). `agreement` (canarist) then compares the discovered
  versions' predictions (`kserve: true`) and takes `assess.baseline` as its baseline.
  `rollout` (canarist) steps `canaryTrafficPercent` on the verdict; it needs `kserve.isvc`
  and an `assess` before it.
* `cronjobSchedule` is checked by the rules the Kubernetes API server applies (5 fields,
  `@hourly`-style descriptors and `@every <duration>`; see `core.cron`), so `--dry` never
  writes a CronJob the cluster refuses.
"""

from __future__ import annotations

import copy
import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canarist.core.cron import cron_problem
from canarist.core.errors import SpecError
from canarist.core.experiment import format_time
from canarist.core.limits import MAX_TASKS
from canarist.core.metrics import NAME_RULE, is_valid_name
from canarist.core.validation import Location, ValuesKeys, spell_key, unknown_key
from canarist.core.validation import show_value as _show
from canarist.core.values import merge_values

__all__ = [
    "CHART_ONLY_KEYS",
    "RUNNERS",
    "TASK_NAMES",
    "RenderedChart",
    "chart_defaults",
    "render_chart",
    "render_experiment",
    "resolve_values",
]

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

# (values key, group, version, resource, condition), in the order Iter8 emits them.
READY_KINDS: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("service", "", "v1", "services", None),
    ("deploy", "apps", "v1", "deployments", "Available"),
    ("ksvc", "serving.knative.dev", "v1", "services", "Ready"),
    ("isvc", "serving.kserve.io", "v1beta1", "inferenceservices", "Ready"),
    ("chaosengine", "litmuschaos.io", "v1alpha1", "chaosengines", None),
)

# grpc download keys: (values key, file name, ghz key it sets)
GRPC_DOWNLOADS: tuple[tuple[str, str, str], ...] = (
    ("protoURL", "ghz.proto", "proto"),
    ("dataURL", "data.json", "data-file"),
    ("binaryDataURL", "data.bin", "binary-file"),
    ("metadataURL", "metadata.json", "metadata-file"),
)

_INTEGER = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_GITHUB_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SAFE_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")

Entry = tuple[dict[str, Any], ValuesKeys | None]
"""A spec entry and how the keys of its `with` are spelled in the values (None: not values)."""


def chart_defaults() -> dict[str, Any]:
    """The chart's default values (Iter8's `values.yaml`, with canarist's image)."""
    return {
        "image": "canarist:latest",
        "majorMinor": "v0.13",
        "runner": "none",
        "logLevel": "info",
        "resources": {
            "requests": {"memory": "64Mi", "cpu": "250m"},
            "limits": {"memory": "128Mi", "cpu": "500m"},
        },
    }


def _coalesce(user: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """Helm's coalescing of chart defaults under user values, in place on `user`."""
    for key, default in defaults.items():
        if key not in user:
            user[key] = copy.deepcopy(default)
        elif user[key] is None:
            del user[key]
        elif isinstance(user[key], dict) and isinstance(default, Mapping):
            _coalesce(user[key], default)


def resolve_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the chart works with: defaults coalesced under a copy of `values`.

    `iter8Image` is accepted as an alias of `image` (an explicit `image` wins).
    """
    user = merge_values(values)  # a copy, with every map key as text
    if "image" not in user and user.get("iter8Image") is not None:
        user["image"] = user["iter8Image"]
    _coalesce(user, chart_defaults())
    return user


# -- helpers ---------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | dict):
        return bool(value)
    return True


def _key(*parts: str | int) -> str:
    """A value key as the user would write it (`a.b\\.c`, `a[0]`)."""
    return spell_key("", parts)


def _scalar_text(value: Any) -> str | None:
    """Text of a scalar the way a Go template prints it; None for maps, lists and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


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


def _curl(url: str, target: str) -> dict[str, Any]:
    return {"run": f"curl -sSfL -o {shlex.quote(target)} {shlex.quote(url)}"}


# -- rendering -------------------------------------------------------------------------------


class _Renderer:
    def __init__(self, values: dict[str, Any], namespace: str | None) -> None:
        self.values = values
        self.namespace = namespace
        self.problems: list[str] = []
        self.spec: list[Entry] = []

    def problem(self, key: str, message: str) -> None:
        line = f"{key}: {message}"
        if line not in self.problems:
            self.problems.append(line)

    def section(self, name: str) -> dict[str, Any] | None:
        """The map of values under a task's key; None (with a problem) if it is not a map."""
        value = self.values.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(name, f"expected a map of {name} parameters, got {_show(value)}")
            return None
        return value

    def unknown_keys(
        self, prefix: str, section: Mapping[str, Any], allowed: tuple[str, ...]
    ) -> None:
        for key in section:
            if key not in allowed:
                self.problem(f"{prefix}.{_key(key)}", unknown_key(str(key), allowed))

    def string(self, key: str, value: Any, what: str) -> str | None:
        if isinstance(value, str) and value:
            return value
        self.problem(key, f"expected {what}, got {_show(value)}")
        return None

    # -- top level -------------------------------------------------------------------------

    def render(self) -> None:
        self.check_chart()
        tasks = self.values.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            self.problem(
                "tasks",
                'expected a non-empty list of task names, e.g. --set "tasks={http,assess}"',
            )
            return
        if len(tasks) > MAX_TASKS:
            self.problem("tasks", f"expected at most {MAX_TASKS:,} tasks, got {len(tasks):,}")
            return
        expanders: dict[str, Callable[[], list[Entry]]] = {
            "agreement": self.agreement,
            "assess": self.assess,
            "custommetrics": self.custommetrics,
            "grpc": self.grpc,
            "http": self.http,
            "ready": self.ready,
            "rollout": self.rollout,
            "slack": self.slack,
            "github": self.github,
            "notify": self.notify,
        }
        for index, name in enumerate(tasks):
            if name == "abnmetrics":
                self.problem(
                    _key("tasks", index),
                    "abnmetrics is not supported (the A/B/n service it reads was removed "
                    "upstream); remove it from tasks",
                )
                continue
            expand = expanders.get(name) if isinstance(name, str) else None
            if expand is None:
                self.problem(
                    _key("tasks", index),
                    f"unknown task {_show(name)}, expected one of "
                    + ", ".join(n for n in TASK_NAMES if n != "abnmetrics"),
                )
                continue
            before = len(self.problems)
            entries = expand()
            if len(self.problems) == before:
                self.spec.extend(entries)
        self.spec[:0] = self.kserve()
        self.check_rollout(tasks)

    def kserve(self) -> list[Entry]:
        """`kserve.isvc`: a discovery task that runs first in every loop."""
        section = self.section("kserve")
        if not section:
            return []
        self.unknown_keys("kserve", section, ("isvc", "namespace", "ingress"))
        isvc = self.string("kserve.isvc", section.get("isvc"), "the name of an InferenceService")
        with_: dict[str, Any] = {"isvc": isvc}
        namespace = section.get("namespace") or self.namespace
        if namespace is not None:
            with_["namespace"] = self.string("kserve.namespace", namespace, "a namespace name")
        if section.get("ingress") is not None:
            ingress = self.string("kserve.ingress", section["ingress"],
                                  "a URL such as http://127.0.0.1:8080")
            if ingress is not None and not re.match(r"^https?://[^/]+/?$", ingress):
                self.problem("kserve.ingress", "expected the ingress address alone, such as "
                             f"http://127.0.0.1:8080, got {_show(ingress)}")
            with_["ingress"] = ingress
        return [({"task": "kserve", "with": with_}, ValuesKeys("kserve"))]

    def check_rollout(self, tasks: list[Any]) -> None:
        if "rollout" not in tasks:
            return
        where = _key("tasks", tasks.index("rollout"))
        if not isinstance(self.values.get("kserve"), dict) or not self.values["kserve"].get("isvc"):
            self.problem(where, "rollout moves an InferenceService's canaryTrafficPercent: set "
                         "kserve.isvc=<name> so canarist can find it")
        if "assess" not in tasks[: tasks.index("rollout")]:
            self.problem(where, "rollout acts on the verdict of assess: list assess before it, "
                         'e.g. --set "tasks={custommetrics,assess,rollout}"')

    def agreement(self) -> list[Entry]:
        """`agreement`: with `kserve.isvc` it compares the discovered versions (unless
        `versions` lists them), and its baseline is assess's unless it names its own."""
        section = self.section("agreement")
        if section is None:
            return []
        params = copy.deepcopy(section)
        if self.discovers() and not params.get("versions"):
            params["kserve"] = True  # each discovered version, at its tag host
        assess = self.values.get("assess")
        chosen = assess.get("baseline") if isinstance(assess, dict) else None
        if chosen is None and isinstance(assess, dict) and self.discovers() and isinstance(
                assess.get("relative"), dict):
            chosen = 1  # what assess defaults to with discovery
        if chosen is not None:
            if "baseline" not in params:
                params["baseline"] = chosen
            elif params["baseline"] != chosen:
                self.problem("agreement.baseline",
                             f"{_show(params['baseline'])} is not assess.baseline "
                             f"{_show(chosen)}: the baseline's agreement with itself is the "
                             "noise floor its candidates are judged against, so both name the "
                             "same version")
        return [({"task": "agreement", "with": params}, ValuesKeys("agreement"))]

    def rollout(self) -> list[Entry]:
        section = self.section("rollout")
        if section is None:
            return []
        return [({"task": "rollout", "with": copy.deepcopy(section)}, ValuesKeys("rollout"))]

    def version_names(self) -> list[str] | None:
        """`versionNames`: distinct non-empty names, at most one per version measured."""
        names = self.values.get("versionNames")
        if names is None:
            return None
        if not isinstance(names, list) or not names:
            self.problem("versionNames", "expected a list of version names, e.g. "
                         f"--set 'versionNames={{canary,baseline}}', got {_show(names)}")
            return None
        found: list[str] = []
        for index, name in enumerate(names):
            if not isinstance(name, str | int | float) or isinstance(name, bool) \
                    or not str(name).strip():
                self.problem(_key("versionNames", index),
                             f"expected a non-empty name, got {_show(name)}")
                continue
            text = str(name).strip()
            if text in found:
                self.problem(_key("versionNames", index),
                             f"{text!r} names two versions; version names must be distinct")
                continue
            found.append(text)
        versions = self.num_versions()
        if versions is not None and len(names) > versions:
            self.problem("versionNames",
                         f"{len(names)} names for {versions} version"
                         f"{'s' if versions != 1 else ''} (at most one name per version)")
        return found if len(found) == len(names) else None

    def num_versions(self) -> int | None:
        """How many versions the tasks measure, when the values say (None: unknown)."""
        tasks = self.values.get("tasks")
        if not isinstance(tasks, list) or self.discovers():
            return None  # with kserve.isvc, the InferenceService says (one version or two)
        counts = []
        for name in tasks:
            if name in ("http", "grpc", "custommetrics", "agreement"):
                section = self.values.get(name)
                key = "versions" if name == "agreement" else "versionValues"
                extra = section.get(key) if isinstance(section, dict) else None
                counts.append(len(extra) if isinstance(extra, list) and extra else 1)
        return max(counts) if counts else None

    def check_chart(self) -> None:
        runner = self.values.get("runner")
        if runner not in RUNNERS:
            self.problem("runner", f"expected one of none, job, cronjob, got {_show(runner)}")
        schedule = self.values.get("cronjobSchedule")
        if runner == "cronjob" and not _truthy(schedule):
            self.problem(
                "cronjobSchedule",
                'required when runner is cronjob, e.g. --set cronjobSchedule="*/1 * * * *"',
            )
        elif schedule is not None:
            problem = cron_problem(schedule) if isinstance(schedule, str) else \
                "expected a cron schedule such as \"*/5 * * * *\" or @hourly"
            if problem is not None:
                self.problem("cronjobSchedule", f"{_show(schedule)} is not a CronJob schedule "
                                                f"Kubernetes accepts: {problem}")
        level = self.values.get("logLevel")
        if not (isinstance(level, str) and level.lower() in LOG_LEVELS):
            self.problem(
                "logLevel", f"expected one of {', '.join(LOG_LEVELS)}, got {_show(level)}"
            )
        major_minor = self.values.get("majorMinor")
        if not (isinstance(major_minor, str) and major_minor):
            self.problem(
                "majorMinor", f"expected a version string such as v0.13, got {_show(major_minor)}"
            )

    # -- ready -----------------------------------------------------------------------------

    def ready(self) -> list[Entry]:
        section = self.section("ready")
        if section is None:
            return []
        allowed = (*(kind[0] for kind in READY_KINDS), "timeout", "namespace")
        self.unknown_keys("ready", section, allowed)
        timeout = section.get("timeout")
        namespace: str | None = self.namespace
        if _truthy(section.get("namespace")):
            namespace = _scalar_text(section["namespace"])
            if namespace is None:
                self.problem("ready.namespace", "expected a namespace name")
        entries: list[Entry] = []
        for key, group, version, resource, condition in READY_KINDS:
            value = section.get(key)
            if not _truthy(value):
                continue
            name = _scalar_text(value)
            if name is None:
                self.problem(_key("ready", key), f"expected a resource name, got {_show(value)}")
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
            if _truthy(timeout):
                with_["timeout"] = timeout
            keys = ValuesKeys("ready", {("name",): _key("ready", key)})
            entries.append(({"task": "ready", "with": with_}, keys))
        if not entries and not any(_truthy(section.get(kind[0])) for kind in READY_KINDS):
            self.problem(
                "ready",
                "please set at least one of "
                + ", ".join(f"ready.{kind[0]}" for kind in READY_KINDS),
            )
        return entries

    # -- http and grpc ---------------------------------------------------------------------

    def endpoints(self, task: str, section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        value = section.get("endpoints")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(
                _key(task, "endpoints"),
                f"expected a map from endpoint id to endpoint parameters, got {_show(value)}",
            )
            return {}
        out: dict[str, dict[str, Any]] = {}
        for endpoint_id in sorted(value):
            endpoint = value[endpoint_id]
            if isinstance(endpoint, dict):
                out[endpoint_id] = endpoint
            else:
                self.problem(
                    _key(task, "endpoints", endpoint_id),
                    f"expected a map of endpoint parameters, got {_show(endpoint)}",
                )
        return out

    def download(
        self, task: str, where: list[str | int], params: dict[str, Any], url_key: str,
        target: str, sets: str,
    ) -> dict[str, Any] | None:
        """Turn `<url_key>` in `params` into a curl `run` task; `params[sets]` gets the file."""
        url = params.pop(url_key, None)
        if not _truthy(url):
            return None
        if not isinstance(url, str):
            self.problem(_key(task, *where, url_key), f"expected a URL, got {_show(url)}")
            return None
        if not _SAFE_FILE.fullmatch(target):
            self.problem(
                _key(task, *where),
                "an endpoint id that names a downloaded file may use only letters, digits, "
                "'.', '_' and '-'",
            )
            return None
        params[sets] = target
        return _curl(url, target)

    def http(self) -> list[Entry]:
        return self.load_test("http", downloads=(("payloadURL", "payload.dat", "payloadFile"),),
                              count_key="numRequests")

    def grpc(self) -> list[Entry]:
        return self.load_test("grpc", downloads=GRPC_DOWNLOADS, count_key="total")

    def load_test(self, task: str, *, downloads: tuple[tuple[str, str, str], ...],
                  count_key: str) -> list[Entry]:
        """Downloads (`curl` run tasks), then a warmup copy if asked for, then the load test.

        A warmup copy takes `warmupNumRequests` as its count, or `warmupDuration` as its
        duration; problems with those are reported at those keys.
        """
        section = self.section(task)
        if section is None:
            return []
        params = copy.deepcopy(section)
        count = params.pop("warmupNumRequests", None)
        duration = params.pop("warmupDuration", None)
        entries: list[Entry] = []
        for url_key, target, sets in downloads:
            run = self.download(task, [], params, url_key, target, sets)
            if run:
                entries.append((run, None))
        for endpoint_id, endpoint in self.endpoints(task, params).items():
            for url_key, target, sets in downloads:
                run = self.download(task, ["endpoints", endpoint_id], endpoint, url_key,
                                    f"{endpoint_id}_{target}", sets)
                if run:
                    entries.append((run, None))
        if task == "http" and self.discovers() and not params.get("versionValues") \
                and not params.get("endpoints") and "://" not in str(params.get("url") or ""):
            params["kserve"] = True  # each discovered version, at its tag host
        if _truthy(count) or _truthy(duration):
            warm = copy.deepcopy(params)
            renames: dict[Location, str]
            if _truthy(count):
                warm[count_key] = count
                renames = {(count_key,): _key(task, "warmupNumRequests")}
            else:
                warm.pop(count_key, None)
                warm["duration"] = duration
                renames = {("duration",): _key(task, "warmupDuration")}
            warm["warmup"] = True
            entries.append(({"task": task, "with": warm}, ValuesKeys(task, renames)))
        entries.append(({"task": task, "with": params}, ValuesKeys(task)))
        return entries

    # -- custommetrics and assess -----------------------------------------------------------

    def custommetrics(self) -> list[Entry]:
        section = self.section("custommetrics")
        if section is None:
            return []
        templates = section.get("templates")
        if not _truthy(templates):
            self.problem(
                "custommetrics.templates",
                "please set at least one provider template, e.g. "
                "custommetrics.templates.kserve-prometheus=<template name or URL>",
            )
        elif not isinstance(templates, dict):
            self.problem(
                "custommetrics.templates",
                f"expected a map from provider name to template, got {_show(templates)}",
            )
        else:
            for provider, template in templates.items():
                self.string(
                    _key("custommetrics", "templates", provider), template,
                    "a template name or URL",
                )
        values = section.get("values")
        if values is not None and not isinstance(values, dict):
            self.problem("custommetrics.values", f"expected a map of values, got {_show(values)}")
        version_values = section.get("versionValues")
        if version_values is not None:
            if not isinstance(version_values, list):
                self.problem(
                    "custommetrics.versionValues",
                    f"expected a list with one map of values per version, got "
                    f"{_show(version_values)}",
                )
            else:
                for index, item in enumerate(version_values):
                    if item is not None and not isinstance(item, dict):
                        self.problem(
                            _key("custommetrics", "versionValues", index),
                            f"expected a map of values for version {index}, got {_show(item)}",
                        )
        return [({"task": "custommetrics", "with": copy.deepcopy(section)},
                 ValuesKeys("custommetrics"))]

    def assess(self) -> list[Entry]:
        section = self.section("assess")
        if section is None:
            return []
        self.unknown_keys("assess", section, ("SLOs", "relative", "baseline", "confidence"))
        renames: dict[tuple[str | int, ...], str] = {}
        known_problems = len(self.problems)
        with_: dict[str, Any] = {"SLOs": self.objectives(section, "SLOs", "limit", renames)}
        relative = self.objectives(section, "relative", "allowance", renames)
        if relative:
            with_["relative"] = relative
            if not with_["SLOs"]:
                del with_["SLOs"]
        for key in ("baseline", "confidence"):
            if key in section:
                with_[key] = section[key]
                renames[(key,)] = _key("assess", key)
        if relative and "baseline" not in with_ and self.discovers():
            with_["baseline"] = 1  # discovery numbers the previously rolled-out revision 1
        if len(self.problems) == known_problems and not with_.get("SLOs") and not relative and not any(
            isinstance(section.get(kind), dict) and any(
                isinstance(section[kind].get(side), dict) and section[kind][side]
                for side in ("upper", "lower"))
            for kind in ("SLOs", "relative")
        ):
            self.problem(
                "assess.SLOs",
                "please set at least one SLO, e.g. assess.SLOs.upper.http/latency-mean=50, or "
                "a relative objective, e.g. assess.relative.upper.http/latency-p90=20%",
            )
        return [({"task": "assess", "with": with_}, ValuesKeys("assess", renames))]

    def discovers(self) -> bool:
        section = self.values.get("kserve")
        return isinstance(section, dict) and bool(section.get("isvc"))

    def objectives(self, section: Mapping[str, Any], kind: str, field: str,
                   renames: dict[tuple[str | int, ...], str]) -> dict[str, list[dict[str, Any]]]:
        """`assess.<kind>.upper|lower` maps from metric to limit or allowance, as lists in
        metric order (Go ranges over map keys in byte order)."""
        given = section.get(kind)
        if given is None:
            return {}
        if not isinstance(given, dict):
            self.problem(_key("assess", kind), f"expected a map with upper and lower, got {_show(given)}")
            return {}
        self.unknown_keys(_key("assess", kind), given, ("upper", "lower"))
        listed_sides: dict[str, list[dict[str, Any]]] = {}
        for side in ("upper", "lower"):
            entries = given.get(side)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                self.problem(_key("assess", kind, side),
                             f"expected a map from metric name to {field}, got {_show(entries)}")
                continue
            listed: list[dict[str, Any]] = []
            for metric in sorted(entries):
                key = _key("assess", kind, side, metric)
                if not is_valid_name(metric):
                    self.problem(key, NAME_RULE)
                value = entries[metric] if field == "allowance" else _number(entries[metric])
                if value is None:
                    self.problem(key, f"expected a number, got {_show(entries[metric])}")
                    continue
                for name in ("metric", field):
                    renames[(kind, side, len(listed), name)] = key
                listed.append({"metric": metric, field: value})
            if listed:
                listed_sides[side] = listed
        return listed_sides

    # -- notifications ---------------------------------------------------------------------

    def soft_failure(self, task: str, section: Mapping[str, Any]) -> bool:
        value = section.get("softFailure")
        if value is None:
            return True
        if isinstance(value, bool):
            return value
        self.problem(_key(task, "softFailure"), f"expected true or false, got {_show(value)}")
        return True

    def notify_entry(
        self, task: str, section: Mapping[str, Any], with_: dict[str, Any]
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {"task": "notify"}
        condition = section.get("if")
        if condition is not None:
            text = self.string(_key(task, "if"), condition, "a condition such as SLOs()")
            if text:
                entry["if"] = text
        template_url = section.get("payloadTemplateURL")
        if template_url is not None:
            url = self.string(_key(task, "payloadTemplateURL"), template_url, "a URL")
            if url:
                with_["payloadTemplateURL"] = url
        else:
            with_["payloadTemplate"] = task
        with_["softFailure"] = self.soft_failure(task, section)
        entry["with"] = with_
        return entry

    def slack(self) -> list[Entry]:
        section = self.section("slack")
        if section is None:
            return []
        self.unknown_keys("slack", section, ("url", "if", "softFailure", "payloadTemplateURL"))
        url = section.get("url")
        if not _truthy(url):
            self.problem("slack.url", "please set a value for the url parameter")
        else:
            self.string("slack.url", url, "a Slack webhook URL")
        return [(self.notify_entry("slack", section, {"url": url, "method": "POST"}),
                 ValuesKeys("slack"))]

    def github(self) -> list[Entry]:
        section = self.section("github")
        if section is None:
            return []
        self.unknown_keys(
            "github", section,
            ("owner", "repo", "token", "tokenEnv", "tokenFile", "if", "softFailure",
             "payloadTemplateURL"),
        )
        names: dict[str, str] = {}
        for field in ("owner", "repo"):
            value = section.get(field)
            if not _truthy(value):
                self.problem(_key("github", field), f"please set a value for the {field} parameter")
                continue
            text = _scalar_text(value)
            if text is None or not _GITHUB_NAME.fullmatch(text):
                self.problem(
                    _key("github", field),
                    f"expected a GitHub {field} name (letters, digits, '.', '_', '-'), "
                    f"got {_show(value)}",
                )
                continue
            names[field] = text
        sources = [key for key in ("token", "tokenEnv", "tokenFile") if _truthy(section.get(key))]
        if not sources:
            self.problem(
                "github.token",
                "please set a value for the token parameter (or github.tokenEnv or "
                "github.tokenFile, which keep the token out of the experiment)",
            )
        elif len(sources) > 1:
            self.problem(
                "github.token",
                f"set only one of github.token, github.tokenEnv, github.tokenFile "
                f"(got {', '.join('github.' + s for s in sources)})",
            )
        owner, repo = names.get("owner", ""), names.get("repo", "")
        with_: dict[str, Any] = {
            "url": f"https://api.github.com/repos/{owner}/{repo}/dispatches",
            "method": "POST",
        }
        headers: dict[str, str] = {"Accept": "application/vnd.github+json"}
        if len(sources) == 1:
            source = sources[0]
            value = self.string(_key("github", source), section[source], "a non-empty string")
            if source == "token":
                headers["Authorization"] = f"token {value}"
            else:
                with_[source] = value
                with_["tokenScheme"] = "token"
        with_["headers"] = headers
        return [(self.notify_entry("github", section, with_), ValuesKeys("github"))]

    def notify(self) -> list[Entry]:
        section = self.section("notify")
        if section is None:
            return []
        if not _truthy(section.get("url")):
            self.problem("notify.url", "no URL was provided for notify task")
        with_ = copy.deepcopy(section)
        entry: dict[str, Any] = {"task": "notify"}
        condition = with_.pop("if", None)
        if condition is not None:
            text = self.string("notify.if", condition, "a condition such as SLOs()")
            if text:
                entry["if"] = text
        entry["with"] = with_
        return [(entry, ValuesKeys("notify"))]


@dataclass(frozen=True)
class RenderedChart:
    """A rendered experiment and, per spec entry, how its keys are spelled in the values."""

    data: dict[str, Any]
    keys: list[ValuesKeys | None]


def render_chart(
    values: Mapping[str, Any], *, now: datetime, namespace: str | None = None
) -> RenderedChart:
    """Render the experiment Iter8's chart would: `{"spec": [...], "result": {...}}`.

    `values` are the user's values (chart defaults are applied here). `now` becomes
    `result.startTime` (a naive datetime is taken as UTC). `namespace` plays the part of
    Helm's release namespace: `ready` tasks get it unless `ready.namespace` is set.
    Raises SpecError listing every problem, each naming the value key. Task inputs are not
    checked here but by the tasks' own input models, which report at `keys`.
    """
    renderer = _Renderer(resolve_values(values), namespace)
    renderer.render()
    version_names = renderer.version_names()
    if renderer.problems:
        raise SpecError.listing(renderer.problems, counted="problems in values")
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    result: dict[str, Any] = {
        "startTime": format_time(moment),
        "numCompletedTasks": 0,
        "failure": False,
        "iter8Version": renderer.values["majorMinor"],
    }
    if version_names:
        result["versionNames"] = version_names
    data = {"spec": [entry for entry, _ in renderer.spec], "result": result}
    return RenderedChart(data, [keys for _, keys in renderer.spec])


def render_experiment(
    values: Mapping[str, Any], *, now: datetime, namespace: str | None = None
) -> dict[str, Any]:
    """`render_chart`'s experiment data alone."""
    return render_chart(values, now=now, namespace=namespace).data
