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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canarist.core.chart.defaults import CHART_ONLY_KEYS, RUNNERS, TASK_NAMES, chart_defaults, resolve_values
from canarist.core.chart.sheet import Sheet
from canarist.core.chart.spec import render, version_names
from canarist.core.errors import SpecError
from canarist.core.experiment import format_time
from canarist.core.validation import ValuesKeys

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
    sheet = Sheet(resolve_values(values), namespace)
    render(sheet)
    names = version_names(sheet)
    if sheet.problems:
        raise SpecError.listing(sheet.problems, counted="problems in values")
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    result: dict[str, Any] = {
        "startTime": format_time(moment),
        "numCompletedTasks": 0,
        "failure": False,
        "iter8Version": sheet.values["majorMinor"],
    }
    if names:
        result["versionNames"] = names
    data = {"spec": [entry for entry, _ in sheet.spec], "result": result}
    return RenderedChart(data, [keys for _, keys in sheet.spec])


def render_experiment(
    values: Mapping[str, Any], *, now: datetime, namespace: str | None = None
) -> dict[str, Any]:
    """`render_chart`'s experiment data alone."""
    return render_chart(values, now=now, namespace=namespace).data
