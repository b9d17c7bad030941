"""`custommetrics` against small local providers: values, jq, every unhappy path, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from canarist.backends.providers.sources import load_template
from canarist.core.errors import ExperimentFailed, SpecError
from canarist.core.experiment import (
    Experiment,
    MetricType,
    experiment_to_data,
    new_result,
    parse_experiment,
)
from canarist.core.yamltext import dump_yaml
from canarist.runners.engine import RunSettings, prepare, run_experiment
from canarist.tasks.registry import TASKS

TOKEN = "tok-9f8e7d6c5b4a"

# case -> (status, body); a str body is sent as text, anything else as JSON
ANSWERS: dict[str, tuple[int, Any]] = {
    "num": (200, {"v": 3}),
    "str": (200, {"v": "21.7"}),
    "nan": (200, {"v": "NaN"}),
    "inf": (200, {"v": "+Inf"}),
    "bool": (200, {"v": True}),
    "text": (200, {"v": "abc"}),
    "object": (200, {"v": {"a": 1}}),
    "empty-vector": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
    "error-500": (500, {"status": "error", "errorType": "internal", "error": "storage unavailable"}),
    "not-json": (200, "<html>sign in</html>"),
    "echo-auth": (500, None),
}


async def provider(request: web.Request) -> web.StreamResponse:
    case = request.query.get("case", "num")
    if case == "slow":
        await asyncio.sleep(10)
    if case == "echo-auth":
        return web.Response(status=500, text="denied: " + request.headers.get("Authorization", ""))
    status, body = ANSWERS[case]
    if isinstance(body, str):
        return web.Response(status=status, text=body)
    return web.json_response(body, status=status)


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", provider)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def metric(name: str, case: str, jq: str = ".v", kind: str = "gauge") -> str:
    return (f"- name: {name}\n  type: {kind}\n  description: {name} test\n"
            f"  params:\n  - name: case\n    value: {case}\n  jqExpression: {json.dumps(jq)}\n")


FAKE_TEMPLATE = (
    "url: {{ .url }}/api/v1/query\nmethod: GET\nmetrics:\n"
    + metric("num", "num", kind="counter")
    + metric("str", "str")
    + metric("str-tonumber", "str", ".v | tonumber")
    + metric("nan", "nan", ".v | tonumber")
    + metric("nan-text", "nan")
    + metric("inf", "inf", ".v | tonumber")
    + metric("null-value", "num", ".missing")
    + metric("no-output", "num", "empty")
    + metric("bool", "bool")
    + metric("text", "text")
    + metric("text-tonumber", "text", ".v | tonumber")
    + metric("object", "object")
    + metric("bad-jq", "num", ".a[")
    + metric("empty-vector", "empty-vector", ".data.result[0].value[1] | tonumber")
    + metric("error-500", "error-500")
    + metric("not-json", "not-json")
    + metric("slow", "slow")
    + "- name: bare\n  type: Gauge\n  jqExpression: .v\n"  # no params, no description
)

EXPECTED_REASONS = {
    "nan": "value is NaN",
    "nan-text": "value is NaN",
    "inf": "value is +Inf",
    "null-value": "value is null",
    "no-output": "jqExpression 'empty' produced no output",
    "bool": "value is not a number: true",
    "text": 'value is not a number: "abc"',
    "text-tonumber": "jqExpression '.v | tonumber' failed: "
                     'string ("abc") cannot be parsed as a number',
    "object": 'value is not a number: {"a": 1}',
    "bad-jq": "invalid jqExpression '.a[': syntax error, unexpected end of file",
    "empty-vector": "no data: the query returned an empty result (no series matched, or the "
                    "window holds fewer than two samples of each)",
    "error-500": "HTTP 500 from {url}/api/v1/query: internal: storage unavailable",
    "not-json": "response is not JSON: <html>sign in</html> (from {url}/api/v1/query)",
    "slow": "timed out after 500ms ({url}/api/v1/query)",
}


class MemoryStore:
    def read(self) -> Experiment:
        raise AssertionError("not used")

    def write(self, experiment: Experiment) -> None:
        experiment_to_data(experiment)  # what would be written must be writable


def experiment(inputs: Mapping[str, Any], *more: Mapping[str, Any]) -> Experiment:
    spec = [{"task": "custommetrics", "with": dict(inputs)}, *more]
    return parse_experiment({"spec": spec}, source="test")


async def run_async(exp: Experiment, tmp_path: Path, *, reuse: bool = False,
                    start: datetime | None = None) -> Experiment:
    settings = RunSettings(run_dir=tmp_path)
    if start is None:
        return await run_experiment(exp, MemoryStore(), TASKS, settings, reuse_result=reuse)
    return await run_experiment(exp, MemoryStore(), TASKS, settings, reuse_result=reuse,
                                now=lambda: start)


def run(exp: Experiment, tmp_path: Path) -> Experiment:
    return asyncio.run(run_async(exp, tmp_path))


def insights_of(exp: Experiment) -> Any:
    assert exp.result is not None and exp.result.insights is not None
    return exp.result.insights


def test_values_reasons_and_metadata_from_a_fake_provider(tmp_path: Path) -> None:
    (tmp_path / "fake.tpl").write_text(FAKE_TEMPLATE)

    async def main() -> tuple[Experiment, float, str]:
        async with serve() as url:
            began = time.monotonic()
            exp = await run_async(experiment({"templates": {"fake": "fake.tpl"},
                                              "values": {"url": url}, "timeout": "500ms"}), tmp_path)
            return exp, time.monotonic() - began, url

    exp, took, url = asyncio.run(main())
    assert took < 3, "queries run concurrently and each is bounded by the timeout"
    assert exp.result is not None and not exp.result.failure
    insights = insights_of(exp)
    assert insights.num_versions == 1
    assert insights.non_hist_metric_values[0] == {
        "fake/num": [3.0], "fake/str": [21.7], "fake/str-tonumber": [21.7], "fake/bare": [3.0]}
    reasons = insights.unavailable[0]
    for name, expected in EXPECTED_REASONS.items():
        assert reasons[f"fake/{name}"].startswith(expected.replace("{url}", url)), (name, reasons)
    # an empty Prometheus result is the cause: what jq made of it is not shown
    assert reasons["fake/empty-vector"] == EXPECTED_REASONS["empty-vector"]
    assert len(reasons) == len(EXPECTED_REASONS)
    assert insights.metrics_info["fake/num"].type is MetricType.COUNTER
    assert insights.metrics_info["fake/str"].type is MetricType.GAUGE
    assert insights.metrics_info["fake/str"].description == "str test"
    assert insights.metrics_info["fake/bare"].description == ""
    assert len(insights.metrics_info) == len(EXPECTED_REASONS) + 4


def test_versions_get_their_own_merged_values_and_inputs_stay_untouched(tmp_path: Path) -> None:
    template = (
        "url: {{ .url }}/q\nmetrics:\n"
        "{{- range $k, $v := .cases }}\n"
        "- name: {{ $k }}\n  type: gauge\n  params:\n  - name: case\n    value: {{ $v }}\n"
        "  jqExpression: .v\n{{- end }}\n")
    (tmp_path / "versions.tpl").write_text(template)
    inputs = {
        "templates": {"p": "versions.tpl"},
        "values": {"cases": {"a": "num", "b": "num"}, "elapsedTimeSeconds": 99},
        "versionValues": [{"cases": {"b": "str"}}, None, {"cases": {"a": "bool", "b": None}}],
    }
    original = copy.deepcopy(inputs)

    async def main() -> Experiment:
        async with serve() as url:
            inputs["values"]["url"] = url  # type: ignore[index]
            original["values"]["url"] = url  # type: ignore[index]
            return await run_async(experiment(inputs), tmp_path)

    exp = asyncio.run(main())
    insights = insights_of(exp)
    assert insights.num_versions == 3
    assert insights.non_hist_metric_values == [
        {"p/a": [3.0], "p/b": [21.7]}, {"p/a": [3.0], "p/b": [3.0]}, {}]
    assert insights.unavailable[2] == {
        "p/a": "value is not a number: true",
        "p/b": "the template does not define this metric for this version"}
    assert exp.spec[0].with_ == original


def test_versions_are_named_by_their_revision_unless_the_user_named_them(tmp_path: Path) -> None:
    (tmp_path / "one.tpl").write_text(
        "url: {{ .url }}/q\nmetrics:\n- name: a\n  type: gauge\n  params:\n  - name: case\n"
        "    value: num\n  jqExpression: .v\n")
    inputs = {
        "templates": {"p": "one.tpl"},
        "versionValues": [{"labels": {"revision_name": "iris-00002"}},
                          {"labels": {"revision_name": "iris-00001"}}],
    }

    async def main(names: list[str] | None) -> Experiment:
        async with serve() as url:
            with_ = copy.deepcopy(inputs)
            with_["values"] = {"url": url}
            exp = experiment(with_)
            if names is not None:  # as `launch --set versionNames={...}` renders the result
                exp.result = new_result(now=datetime.now(UTC))
                exp.result.version_names = names
            return await run_async(exp, tmp_path)

    named = insights_of(asyncio.run(main(None)))
    assert [named.version_label(j) for j in range(2)] == ["iris-00002", "iris-00001"]
    named = insights_of(asyncio.run(main(["canary"])))
    assert [named.version_label(j) for j in range(2)] == ["canary", "iris-00001"]


def test_a_later_loop_appends_and_the_version_count_must_match(tmp_path: Path) -> None:
    (tmp_path / "t.tpl").write_text("url: {{ .url }}/q\nmetrics:\n" + metric("num", "num"))

    async def main() -> Experiment:
        async with serve() as url:
            exp = experiment({"templates": {"p": "t.tpl"}, "values": {"url": url}})
            await run_async(exp, tmp_path)
            await run_async(exp, tmp_path, reuse=True)
            assert insights_of(exp).non_hist_metric_values == [{"p/num": [3.0, 3.0]}]
            exp.spec[0].with_["versionValues"] = [{}, {}]
            with pytest.raises(ExperimentFailed, match="inconsistent number for app versions"):
                await run_async(exp, tmp_path, reuse=True)
            return exp

    asyncio.run(main())


@pytest.mark.parametrize(("text", "message"), [
    ("url: x\nmetrics:\n- name: a\n  {{ .x ", "templates.p ({path}): p:4:8: unclosed action"),
    ('{{ fail "labels must be a map" }}', "error calling fail: labels must be a map"),
    ("url: x\nmetrics: [\n", "templates.p ({path}): p:3:1: invalid YAML"),
    ("metrics: []\n", "p: url: required"),
    ("url: x\nmetrics:\n- name: a\n  type: summary\n  jqExpression: .v\n", "p: metrics[0].type:"),
    ("url: x\nmetrics:\n- name: a\n  type: gauge\n", "p: metrics[0].jqExpression: required"),
    ("url: x\nmetrics:\n- {name: a, type: gauge, jqExpression: .v}\n"
     "- {name: a, type: counter, jqExpression: .v}\n", "metric 'a' is defined twice"),
    ("url: x\nmetrics:\n- {name: a/b, type: gauge, jqExpression: .v}\n", "'a/b' cannot be part of"),
    ("", "the template rendered no provider spec (empty output)"),
    ("- a\n- b\n", "the rendered provider spec must be a map, not list"),
    ("url: x\nmetrics:\n- {name: a, type: gauge, jqExpression: .v,\n"
     "   diagnose: {series: up, window: 1.5x}}\n",
     "p: metrics[0].diagnose.window: \"1.5x\" is not a Go duration such as 5m"),
    ("url: x\nmetrics:\n- {name: a, type: gauge, jqExpression: .v, diagnose: {window: 5m}}\n",
     "p: metrics[0].diagnose.series: required"),
])
def test_template_problems_fail_the_task(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.tpl"
    path.write_text(text)
    exp = experiment({"templates": {"p": "t.tpl"}})
    with pytest.raises(ExperimentFailed) as caught:
        run(exp, tmp_path)
    assert caught.value.exit_code == 2  # a bad template is bad input
    assert exp.result is not None and exp.result.failure
    assert exp.result.failed_task is not None
    assert message.format(path=path) in exp.result.failed_task.reason


def test_a_bad_starting_time_fails_the_task(tmp_path: Path) -> None:
    exp = experiment({"templates": {"p": "kserve-prometheus"},
                      "values": {"startingTime": "2023-03-01 10:00:00"}})
    with pytest.raises(ExperimentFailed, match="cannot parse startingTime '2023-03-01 10:00:00'"):
        run(exp, tmp_path)


@pytest.mark.parametrize(("ref", "message"), [
    ("missing.tpl", "templates.p: 'missing.tpl' is not a built-in template, a URL or an existing "
                    "file (built-in: istio-prom, kserve-prometheus, kserve-raw)"),
    ("kserve-prom", "templates.p: 'kserve-prom' is not a built-in template, a URL or an existing "
                    "file; did you mean kserve-prometheus? (built-in: istio-prom, "
                    "kserve-prometheus, kserve-raw)"),
])
def test_a_template_that_does_not_exist_is_bad_input(tmp_path: Path, ref: str,
                                                     message: str) -> None:
    exp = experiment({"templates": {"p": ref}})
    with pytest.raises(ExperimentFailed) as caught:
        run(exp, tmp_path)
    assert caught.value.exit_code == 2
    assert exp.result is not None and exp.result.failed_task is not None
    assert exp.result.failed_task.reason == message.format(tmp=tmp_path)


def test_secrets_never_reach_logs_results_or_the_experiment_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PROM_TOKEN", TOKEN)
    (tmp_path / "t.tpl").write_text(
        "url: {{ .url }}/q\nheaders: {X-Team: a}\nmetrics:\n" + metric("echo", "echo-auth"))

    async def main() -> Experiment:
        async with serve() as url:
            exp = experiment({"templates": {"p": "t.tpl"}, "values": {"url": url},
                              "auth": {"bearerTokenEnv": "PROM_TOKEN"}})
            return await run_async(exp, tmp_path)

    with caplog.at_level(logging.DEBUG, logger="canarist"):
        exp = asyncio.run(main())
    reason = insights_of(exp).unavailable[0]["p/echo"]
    assert reason.endswith("/q: denied: Bearer ***")
    stored = dump_yaml(experiment_to_data(exp))
    assert "PROM_TOKEN" in stored and TOKEN not in stored
    assert "denied: Bearer ***" in caplog.text
    assert TOKEN not in caplog.text


def test_missing_credentials_fail_the_task_with_exit_3(tmp_path: Path) -> None:
    exp = experiment({"templates": {"p": "kserve-prometheus"},
                      "auth": {"bearerTokenFile": "no-such-token"}})
    with pytest.raises(ExperimentFailed) as caught:
        run(exp, tmp_path)
    assert caught.value.exit_code == 3
    assert "auth.bearerTokenFile: cannot read" in str(caught.value)


@pytest.mark.parametrize(("inputs", "message"), [
    ({"templates": {"a/b": "x"}}, "provider name 'a/b' must be non-empty and contain no '/'"),
    ({"templates": {"p": "x"}, "timeout": "10"},
     'timeout: expected a Go duration such as 30s, 1m30s or 500ms, got "10"'),
    ({"templates": {"p": "x"}, "timeout": "0s"},
     'timeout: expected a positive Go duration such as 30s, got "0s"'),
    ({"templates": {"p": "x"}, "auth": {"bearerTokenFile": "a", "bearerTokenEnv": "b"}},
     "set only one of bearerTokenFile and bearerTokenEnv"),
    ({"templates": {"p": "x"}, "auth": {"bearerTokenEnv": "a", "username": "u"}},
     "use either a bearer token or a username and password"),
    ({"templates": {"p": "x"}, "auth": {"passwordEnv": "p"}}, "a password needs username"),
    ({"templates": {"p": "x"}, "auth": {"token": "x"}}, "auth.token: unknown key"),
    ({"templates": {"p": "x"}, "valuez": {}}, "valuez: unknown key"),
])
def test_inputs_are_validated_before_anything_runs(inputs: dict[str, Any], message: str) -> None:
    exp = experiment(inputs)
    with pytest.raises(SpecError) as caught:
        prepare(exp.spec, TASKS)
    assert message in str(caught.value)


def test_inputs_match_iter8_spellings_case_insensitively() -> None:
    exp = experiment({"Templates": {"p": "x"}, "VersionValues": [{}], "TIMEOUT": "3s",
                      "auth": {"insecureskipverify": True}})
    [prepared] = prepare(exp.spec, TASKS)
    assert prepared.inputs.version_values == [{}]  # type: ignore[attr-defined]


# -- the pure functions behind `canarist template list|render` -----------------------------


def test_load_template_by_name_file_and_url(tmp_path: Path) -> None:
    (tmp_path / "mine.tpl").write_text("url: x\n")

    async def main() -> None:
        assert (await load_template("kserve-raw", base_dir=tmp_path)).origin == \
            "built-in template kserve-raw"
        assert (await load_template("mine.tpl", base_dir=tmp_path)).text == "url: x\n"
        assert (await load_template(f"file://{tmp_path}/mine.tpl", base_dir=Path("/"))).text == \
            "url: x\n"
        async with serve() as url:
            loaded = await load_template(f"{url}/t?case=num", base_dir=tmp_path, timeout_s=2)
            assert json.loads(loaded.text) == {"v": 3}
            assert loaded.origin == f"{url}/t"
            with pytest.raises(Exception, match=r"cannot fetch template .*: HTTP 500 from"):
                await load_template(f"{url}/t?case=error-500", base_dir=tmp_path)

    asyncio.run(main())


def test_an_empty_result_costs_one_lookup_per_series_and_window(tmp_path: Path) -> None:
    """Many empty metrics on the same series are explained by a single extra query."""
    lookups: list[str] = []
    queries: list[str] = []

    async def prometheus(request: web.Request) -> web.StreamResponse:
        if "time" in request.query:  # the lookup
            lookups.append(request.query["query"])
            if request.query["query"].startswith("slow"):
                await asyncio.sleep(5)
            return web.json_response({"status": "success", "data": {
                "resultType": "matrix", "result": []}})
        queries.append(request.query["query"])
        return web.json_response({"status": "success", "data": {"resultType": "vector",
                                                                "result": []}})

    def empty(name: str, series: str, window: str) -> str:
        return (f"- name: {name}\n  type: gauge\n  params:\n  - name: query\n    value: q-{name}\n"
                "  jqExpression: .data.result[0].value[1] | tonumber\n"
                f"  diagnose: {{series: '{series}', window: {window}}}\n")

    (tmp_path / "p.tpl").write_text(
        "url: {{ .url }}/api/v1/query\nmetrics:\n"
        + empty("a", 'up{job="a"}', "5m") + empty("b", 'up{job="a"}', "5m")
        + empty("c", 'up{job="a"}', "5m") + empty("d", 'up{job="a"}', "1m")
        + empty("e", 'other{job="a"}', "5m") + empty("f", "slow", "5m"))

    async def main() -> tuple[Experiment, float]:
        app = web.Application()
        app.router.add_get("/api/v1/query", prometheus)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            began = time.monotonic()
            exp = await run_async(experiment({"templates": {"p": "p.tpl"}, "values": {"url": url},
                                              "timeout": "1s"}), tmp_path)
            return exp, time.monotonic() - began
        finally:
            await runner.cleanup()

    exp, took = asyncio.run(main())
    assert sorted(queries) == [f"q-{n}" for n in "abcdef"]
    assert sorted(lookups) == ['other{job="a"}[600s]', "slow[600s]", 'up{job="a"}[600s]',
                               'up{job="a"}[600s]']  # a-c share one; d has another window
    assert took < 3, "a lookup has the task's timeout"
    reasons = insights_of(exp).unavailable[0]
    assert reasons["p/a"] == reasons["p/b"] == reasons["p/c"] == \
        'no data: no series of up match `job="a"` in the last 10m'
    assert reasons["p/f"] == EXPECTED_REASONS["empty-vector"]  # the lookup timed out
    assert exp.result is not None and not exp.result.failure


def test_a_provider_that_never_answers_cannot_evaluate(tmp_path: Path) -> None:
    (tmp_path / "slow.tpl").write_text("url: {{ .url }}/api/v1/query\nmetrics:\n"
                                       + metric("one", "slow") + metric("two", "slow"))

    async def main() -> tuple[Experiment, str]:
        async with serve() as url:
            exp = experiment({"templates": {"slow": "slow.tpl"}, "values": {"url": url},
                              "timeout": "500ms"})
            with pytest.raises(ExperimentFailed) as caught:
                await run_async(exp, tmp_path)
            assert caught.value.exit_code == 3
            return exp, url

    exp, url = asyncio.run(main())
    assert exp.result is not None and exp.result.failed_task is not None
    assert exp.result.failed_task.reason == (
        f"templates.slow: cannot reach {url}/api/v1/query: timed out after 500ms")
    assert insights_of(exp).unavailable[0]["slow/one"] == \
        f"timed out after 500ms ({url}/api/v1/query)"
