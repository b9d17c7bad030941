"""The whole spec: each name in `tasks` expanded in order, and the chart's own keys checked
(`runner`, `cronjobSchedule`, `logLevel`, `majorMinor`, `versionNames`).
"""

from __future__ import annotations

from collections.abc import Callable

from canarist.core.chart.assess import assess, custommetrics
from canarist.core.chart.defaults import LOG_LEVELS, RUNNERS, TASK_NAMES
from canarist.core.chart.kserve import agreement, check_rollout, kserve, rollout
from canarist.core.chart.loadtest import grpc, http
from canarist.core.chart.notify import github, notify, slack
from canarist.core.chart.ready import ready
from canarist.core.chart.sheet import Entry, Sheet, truthy, value_key
from canarist.core.cron import cron_problem
from canarist.core.limits import MAX_TASKS
from canarist.core.validation import show_value as _show


def render(sheet: Sheet) -> None:
    check_chart(sheet)
    tasks = sheet.values.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        sheet.problem(
            "tasks",
            'expected a non-empty list of task names, e.g. --set "tasks={http,assess}"',
        )
        return
    if len(tasks) > MAX_TASKS:
        sheet.problem("tasks", f"expected at most {MAX_TASKS:,} tasks, got {len(tasks):,}")
        return
    expanders: dict[str, Callable[[Sheet], list[Entry]]] = {
        "agreement": agreement,
        "assess": assess,
        "custommetrics": custommetrics,
        "grpc": grpc,
        "http": http,
        "ready": ready,
        "rollout": rollout,
        "slack": slack,
        "github": github,
        "notify": notify,
    }
    for index, name in enumerate(tasks):
        if name == "abnmetrics":
            sheet.problem(
                value_key("tasks", index),
                "abnmetrics is not supported (the A/B/n service it reads was removed "
                "upstream); remove it from tasks",
            )
            continue
        expand = expanders.get(name) if isinstance(name, str) else None
        if expand is None:
            sheet.problem(
                value_key("tasks", index),
                f"unknown task {_show(name)}, expected one of "
                + ", ".join(n for n in TASK_NAMES if n != "abnmetrics"),
            )
            continue
        before = len(sheet.problems)
        entries = expand(sheet)
        if len(sheet.problems) == before:
            sheet.spec.extend(entries)
    sheet.spec[:0] = kserve(sheet)
    check_rollout(sheet, tasks)


def check_chart(sheet: Sheet) -> None:
    runner = sheet.values.get("runner")
    if runner not in RUNNERS:
        sheet.problem("runner", f"expected one of none, job, cronjob, got {_show(runner)}")
    schedule = sheet.values.get("cronjobSchedule")
    if runner == "cronjob" and not truthy(schedule):
        sheet.problem(
            "cronjobSchedule",
            'required when runner is cronjob, e.g. --set cronjobSchedule="*/1 * * * *"',
        )
    elif schedule is not None:
        problem = cron_problem(schedule) if isinstance(schedule, str) else \
            "expected a cron schedule such as \"*/5 * * * *\" or @hourly"
        if problem is not None:
            sheet.problem("cronjobSchedule", f"{_show(schedule)} is not a CronJob schedule "
                                            f"Kubernetes accepts: {problem}")
    level = sheet.values.get("logLevel")
    if not (isinstance(level, str) and level.lower() in LOG_LEVELS):
        sheet.problem(
            "logLevel", f"expected one of {', '.join(LOG_LEVELS)}, got {_show(level)}"
        )
    major_minor = sheet.values.get("majorMinor")
    if not (isinstance(major_minor, str) and major_minor):
        sheet.problem(
            "majorMinor", f"expected a version string such as v0.13, got {_show(major_minor)}"
        )


def version_names(sheet: Sheet) -> list[str] | None:
    """`versionNames`: distinct non-empty names, at most one per version measured."""
    names = sheet.values.get("versionNames")
    if names is None:
        return None
    if not isinstance(names, list) or not names:
        sheet.problem("versionNames", "expected a list of version names, e.g. "
                     f"--set 'versionNames={{canary,baseline}}', got {_show(names)}")
        return None
    found: list[str] = []
    for index, name in enumerate(names):
        if not isinstance(name, str | int | float) or isinstance(name, bool) \
                or not str(name).strip():
            sheet.problem(value_key("versionNames", index),
                         f"expected a non-empty name, got {_show(name)}")
            continue
        text = str(name).strip()
        if text in found:
            sheet.problem(value_key("versionNames", index),
                         f"{text!r} names two versions; version names must be distinct")
            continue
        found.append(text)
    versions = num_versions(sheet)
    if versions is not None and len(names) > versions:
        sheet.problem("versionNames",
                     f"{len(names)} names for {versions} version"
                     f"{'s' if versions != 1 else ''} (at most one name per version)")
    return found if len(found) == len(names) else None


def num_versions(sheet: Sheet) -> int | None:
    """How many versions the tasks measure, when the values say (None: unknown)."""
    tasks = sheet.values.get("tasks")
    if not isinstance(tasks, list) or sheet.discovers():
        return None  # with kserve.isvc, the InferenceService says (one version or two)
    counts = []
    for name in tasks:
        if name in ("http", "grpc", "custommetrics", "agreement"):
            section = sheet.values.get(name)
            key = "versions" if name == "agreement" else "versionValues"
            extra = section.get(key) if isinstance(section, dict) else None
            counts.append(len(extra) if isinstance(extra, list) and extra else 1)
    return max(counts) if counts else None
