"""CronJob schedules by the Kubernetes API server's rules (robfig/cron v3's standard parser,
and no TZ), plus the few typos canarist refuses although Kubernetes would run them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canarist.core.chart import render_chart
from canarist.core.cron import cron_problem, every_seconds
from canarist.core.errors import SpecError

VALID = [
    "* * * * *", "*/1 * * * *", "0 0 * * *", "59 23 31 12 6", "0 0 1 1 0",
    "*/5 * * * *", "0-59/15 * * * *", "5/15 * * * *", "0,30 * * * *", "1-5,10-15 * * * *",
    "0 9-17 * * mon-fri", "0 0 * jan-dec sun", "0 0 * JAN SUN", "0 0 * Feb Sat",
    "0 0 ? * *", "? ? ? ? ?", "+5 * * * *", "05 07 * * *", "0,,30 * * * *", "0, * * * *",
    "0-30/30 * * * *", "*/30 */12 */15 */6 */3", "  0 0 * * *  ", "0\t0\t*\t*\t*",
    "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
    "@every 1m", "@every 10s", "@every 1s", "@every 1h30m", "@every 1.5h",
]

INVALID = [
    ("", "empty; expected 5 fields (minute hour day-of-month month day-of-week) or a "
         "descriptor such as @hourly"),
    ("* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"),
    ("* * * * * */10", "expected 5 fields (minute hour day-of-month month day-of-week), got 6 "
                       "(Kubernetes has no seconds field)"),
    ("0 0 L * *", 'day-of-month "L": expected a number 1-31, got "L"'),
    ("0 0 1W * *", 'day-of-month "1W": expected a number 1-31, got "1W"'),
    ("0 0 * * 1#2", 'day-of-week "1#2": expected a number 0-6 or sun-sat, got "1#2"'),
    ("0 0 * * 7", 'day-of-week "7": 7 is above 6, the highest day-of-week'),
    ("59-0 * * * *", 'minute "59-0": the range starts after it ends (59 > 0)'),
    ("*/1000 * * * *", 'minute "*/1000": step 1000 selects only 0 (the range 0-59 is shorter '
                       'than the step); write 0'),
    ("*/60 * * * *", 'minute "*/60": step 60 selects only 0 (the range 0-59 is shorter than '
                     'the step); write 0'),
    ("0 */24 * * *", 'hour "*/24": step 24 selects only 0 (the range 0-23 is shorter than the '
                     'step); write 0'),
    ("*/0 * * * *", 'minute "*/0": a step must be at least 1'),
    ("*/x * * * *", 'minute "*/x": step "x" is not a whole number'),
    ("1/2/3 * * * *", 'minute "1/2/3": too many slashes'),
    ("1-2-3 * * * *", 'minute "1-2-3": too many hyphens'),
    ("60 * * * *", 'minute "60": 60 is above 59, the highest minute'),
    ("0 24 * * *", 'hour "24": 24 is above 23, the highest hour'),
    ("0 0 0 * *", 'day-of-month "0": 0 is below 1, the lowest day-of-month'),
    ("0 0 32 * *", 'day-of-month "32": 32 is above 31, the highest day-of-month'),
    ("0 0 * 13 *", 'month "13": 13 is above 12, the highest month'),
    ("0 0 * 0 *", 'month "0": 0 is below 1, the lowest month'),
    ("0 0 * january *", 'month "january": expected a number 1-12 or jan-dec, got "january"'),
    ("0 0 * * monday", 'day-of-week "monday": expected a number 0-6 or sun-sat, got "monday"'),
    ("0 0 * mon *", 'month "mon": expected a number 1-12 or jan-dec, got "mon"'),
    ("1,99 * * * *", 'minute "1,99": "99": 99 is above 59, the highest minute'),
    (", * * * *", 'minute ",": no value'),
    ("*-5 * * * *", 'minute "*-5": * cannot start a range; write 0-5'),
    ("-5 * * * *", 'minute "-5": expected a number 0-59, got "-5"'),
    ("1.5 * * * *", 'minute "1.5": expected a number 0-59, got "1.5"'),
    ("TZ=UTC 0 0 * * *", "Kubernetes refuses TZ= and CRON_TZ= in a schedule (a CronJob's time "
                         "zone is its spec.timeZone)"),
    ("CRON_TZ=Europe/Paris 0 0 * * *", "Kubernetes refuses TZ= and CRON_TZ= in a schedule (a "
                                       "CronJob's time zone is its spec.timeZone)"),
    ("@every", 'unknown descriptor "@every"; expected one of @yearly, @annually, @monthly, '
               '@weekly, @daily, @midnight, @hourly or @every <duration>'),
    ("@every 1 minute", '@every needs a Go duration such as 10m or 1h30m, got "1 minute"'),
    ("@every 500ms", '@every needs at least 1s (Kubernetes runs shorter ones every second), '
                     'got "500ms"'),
    ("@every -1m", '@every needs at least 1s (Kubernetes runs shorter ones every second), got '
                   '"-1m"'),
    ("@every 0s", '@every needs at least 1s (Kubernetes runs shorter ones every second), got '
                  '"0s"'),
    ("@reboot", 'unknown descriptor "@reboot"; expected one of @yearly, @annually, @monthly, '
                '@weekly, @daily, @midnight, @hourly or @every <duration>'),
    ("@Hourly", 'unknown descriptor "@Hourly"; expected one of @yearly, @annually, @monthly, '
                '@weekly, @daily, @midnight, @hourly or @every <duration>'),
    ("@hourly 5", 'unknown descriptor "@hourly"; expected one of @yearly, @annually, '
                  '@monthly, @weekly, @daily, @midnight, @hourly or @every <duration>'),
    ("every minute", 'expected 5 fields (minute hour day-of-month month day-of-week), got 2'),
]


@pytest.mark.parametrize("schedule", VALID)
def test_kubernetes_accepts(schedule: str) -> None:
    assert cron_problem(schedule) is None


@pytest.mark.parametrize(("schedule", "problem"), INVALID)
def test_kubernetes_or_canarist_refuses(schedule: str, problem: str) -> None:
    assert cron_problem(schedule) == problem


def test_every_seconds() -> None:
    assert every_seconds("@every 10s") == 10.0
    assert every_seconds(" @every 1h30m ") == 5400.0
    assert every_seconds("*/1 * * * *") is None
    assert every_seconds("@hourly") is None


@pytest.mark.parametrize(("schedule", "problem"), INVALID[1:])
def test_launch_names_the_key_the_user_typed(schedule: str, problem: str) -> None:
    values = {"tasks": ["notify"], "notify": {"url": "https://hooks.example/x"},
              "runner": "cronjob", "cronjobSchedule": schedule}
    with pytest.raises(SpecError) as caught:
        render_chart(values, now=datetime(2024, 1, 1, tzinfo=UTC))
    quoted = '"' + schedule.replace('"', '\\"') + '"'
    assert caught.value.problems == [
        f"cronjobSchedule: {quoted} is not a CronJob schedule Kubernetes accepts: {problem}"]


@pytest.mark.parametrize("schedule", ["@every 1m", "@every 10s", "0 0 * * mon-fri"])
def test_launch_accepts_what_kubernetes_accepts(schedule: str) -> None:
    assert cron_problem(schedule) is None
    values = {"tasks": ["notify"], "notify": {"url": "https://hooks.example/x"},
              "runner": "cronjob", "cronjobSchedule": schedule}
    rendered = render_chart(values, now=datetime(2024, 1, 1, tzinfo=UTC))
    assert [entry["task"] for entry in rendered.data["spec"]] == ["notify"]
