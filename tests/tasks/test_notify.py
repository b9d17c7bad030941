"""`notify` against a real HTTP server on 127.0.0.1 that records every request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from tests.fakes.http import FakeResponse, FakeTransport
from tests.helpers import load_fixture_experiment
from tests.servers.web import RecordingServer, serve_recording
from yarl import URL

from canarist.core.chart import render_experiment
from canarist.core.errors import SpecError, TaskError, UnavailableError
from canarist.core.experiment import Experiment, VersionName, experiment_to_data
from canarist.core.gotemplate import render
from canarist.core.values import build_values
from canarist.runners.engine import RunSettings, prepare, run_experiment
from canarist.stores.file import FileStore
from canarist.tasks import notify
from canarist.tasks.base import TaskContext
from canarist.tasks.registry import TASKS

DOC = Path(__file__).parents[2] / "docs" / "notify.md"
SECRET = "s3cr3t-t0ken-value"


@dataclass
class Server(RecordingServer):
    """A recording HTTP server: `/status/<code>` answers that code, `/hang` never answers,
    `/templates/<name>` serves `templates[name]` (404 if absent; not kept as a request),
    `/redirect/<code>` answers that code with `Location: <redirect_to>`, anything else
    answers 200."""

    templates: dict[str, str] = field(default_factory=dict)
    redirect_to: str = ""


@contextlib.contextmanager
def recording_server() -> Iterator[Server]:
    server = Server()

    async def respond(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/templates/"):
            text = server.templates.get(path.removeprefix("/templates/"))
            return web.Response(status=404) if text is None else web.Response(text=text)
        if path == "/hang":
            await asyncio.Event().wait()  # cancelled when the client gives up
        redirect = re.match(r"/redirect/(\d{3})(/|$)", path)
        if redirect:
            return web.Response(status=int(redirect.group(1)),
                                headers={"Location": server.redirect_to})
        match = re.match(r"/status/(\d{3})(/|$)", path)
        status = int(match.group(1)) if match else 200
        return web.Response(status=status, text="response body " * 500)

    def keep(request: web.Request) -> bool:
        return not request.path.startswith("/templates/")

    with serve_recording(server, respond, keep=keep) as running:
        yield running


@pytest.fixture
def server() -> Iterator[Server]:
    with recording_server() as running:
        yield running


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def two_versions(spec: list[dict[str, Any]]) -> Experiment:
    """A two-version experiment whose version 1 violates its SLOs, with `spec` as its tasks."""
    fixture = load_fixture_experiment("kserve-two-versions.yaml")
    return Experiment.model_validate({"spec": spec, "result": fixture.result})


def run_notify(with_: dict[str, Any], tmp_path: Path, experiment: Experiment | None = None) -> None:
    inputs = notify.NotifyInputs.model_validate(with_)
    exp = experiment or two_versions([{"task": "notify", "with": with_}])
    ctx = TaskContext(experiment=exp, number=len(exp.spec), name="notify", run_dir=tmp_path)
    asyncio.run(notify.run(inputs, ctx))


def validation_error(with_: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        prepare(Experiment.model_validate({"spec": [{"task": "notify", "with": with_}]}).spec, TASKS)
    return caught.value.message


# -- payloads ---------------------------------------------------------------------------------


def test_slack_payload_is_json_text_with_the_verdict(server: Server, tmp_path: Path) -> None:
    run_notify({"url": server.url("/slack"), "payloadTemplate": "slack"}, tmp_path)
    [request] = server.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json()
    assert list(payload) == ["text"]
    text = payload["text"]
    # The verdict first, as every report states it: icon and word, then how many SLOs and
    # which versions.
    assert text.startswith("*canarist experiment*: ✖ Rejected: 2 of 3 SLOs not satisfied by "
                           "version 1\n"), text
    assert "version 0: SLOs satisfied" in text
    assert "kserve-prometheus/latency-mean is 31.2, above the upper limit 25" in text


def test_messages_name_versions_by_the_names_the_user_set() -> None:
    fixture = load_fixture_experiment("kserve-two-versions.yaml")
    data = experiment_to_data(fixture)
    data["result"]["versionNames"] = ["canary", "baseline"]
    data["spec"] = [{"task": "notify", "with": {"url": "http://h/x"}}]
    exp = Experiment.model_validate(data)
    summary = notify.report_data(exp)["Report"]["summary"]
    assert summary["text"] == "✖ Rejected: 2 of 3 SLOs not satisfied by baseline"
    assert summary["details"][0] == "canary: SLOs satisfied"
    assert [v["name"] for v in summary["versions"]] == ["canary", "baseline"]
    assert "for baseline is 31.2" in summary["reason"]


def test_slack_text_escapes_what_slack_treats_as_markup(tmp_path: Path) -> None:
    exp = two_versions([{"task": "notify", "with": {"url": "http://h/x"}}])
    assert exp.result is not None and exp.result.insights is not None
    exp.result.insights.version_names = [VersionName(version="a<b>&c"), VersionName(version="v2")]
    payload = render(notify.builtin_template("slack"), notify.report_data(exp), name="slack")
    text = json.loads(payload)["text"]
    assert "a&lt;b&gt;&amp;c" in text
    assert "<" not in text and ">" not in text.replace("&gt;", "")


def test_github_payload_is_a_repository_dispatch_with_the_report(server: Server,
                                                                 tmp_path: Path) -> None:
    run_notify({"url": server.url("/repos/o/r/dispatches"), "payloadTemplate": "github"}, tmp_path)
    [request] = server.requests
    payload = request.json()
    assert payload["event_type"] == "canarist"
    client = payload["client_payload"]
    assert len(client) <= 10  # GitHub's limit on top-level client_payload properties
    assert client["numTasks"] == 1 and client["numLoops"] == 1
    assert client["completed"] is False and client["noTaskFailures"] is True
    summary = client["summary"]
    assert summary["slos"] is False
    assert [v["slos"] for v in summary["versions"]] == [True, False]
    violation = summary["versions"][1]["violations"][0]
    assert violation == {"metric": "kserve-prometheus/latency-mean", "bound": "upper",
                         "limit": 25.0, "value": 31.2, "reason": None}
    assert client["experiment"]["result"]["insights"]["numVersions"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC", client["timeStamp"])


@pytest.mark.parametrize("template", notify.BUILTIN_TEMPLATES)
def test_builtin_templates_give_json_without_insights_or_with_a_failure(template: str) -> None:
    bare = Experiment.model_validate({"spec": [{"task": "notify", "with": {"url": "http://h"}}],
                                      "result": {"startTime": "2024-01-01T00:00:00Z"}})
    data = notify.report_data(bare)
    assert data["Report"]["summary"]["text"] == "? Cannot decide: nothing was judged"
    assert data["Report"]["summary"]["verdict"] == "inconclusive"
    json.loads(render(notify.builtin_template(template), data, name=template))
    failed = Experiment.model_validate({
        "spec": [{"task": "notify", "with": {"url": "http://h"}}],
        "result": {"startTime": "2024-01-01T00:00:00Z", "failure": True,
                   "failedTask": {"number": 1, "name": "http", "reason": 'bad "quote"\n<x>'}},
    })
    data = notify.report_data(failed)
    assert data["Report"]["summary"]["text"] == "✖ Rejected: the experiment failed at task 1 (http)"
    assert data["Report"]["summary"]["verdict"] == "fail"
    assert data["Report"]["summary"]["reason"] == 'task 1 (http) failed: bad "quote"\n<x>'
    json.loads(render(notify.builtin_template(template), data, name=template))


def test_headers_and_query_params_arrive(server: Server, tmp_path: Path) -> None:
    run_notify({"url": server.url("/hook?fixed=1"), "headers": {"X-Team": "ml", "X-Num": 7},
                "params": {"source": "canarist", "flag": True}}, tmp_path)
    [request] = server.requests
    assert request.headers["X-Team"] == "ml" and request.headers["X-Num"] == "7"
    assert request.query == {"fixed": "1", "source": "canarist", "flag": "true"}


def test_get_without_a_payload_by_default(server: Server, tmp_path: Path) -> None:
    run_notify({"url": server.url("/ping")}, tmp_path)
    [request] = server.requests
    assert request.method == "GET" and request.body == b""
    assert "Content-Type" not in request.headers


def test_explicit_method_and_content_type_are_kept(server: Server, tmp_path: Path) -> None:
    run_notify({"url": server.url("/x"), "method": "post"}, tmp_path)
    run_notify({"url": server.url("/y"), "payloadTemplate": "slack",
                "headers": {"content-type": "text/plain"}}, tmp_path)
    assert server.requests[0].method == "POST" and server.requests[0].body == b""
    assert server.requests[1].headers["Content-Type"] == "text/plain"


def test_template_from_url_and_from_file(server: Server, tmp_path: Path) -> None:
    server.templates["t.tpl"] = '{"n": {{ .Report.numVersions | default 2 }}}'
    run_notify({"url": server.url("/a"), "payloadTemplateURL": server.url("/templates/t.tpl")},
               tmp_path)
    (tmp_path / "local.tpl").write_text('{"loops": {{ .Report.numLoops }}}')
    run_notify({"url": server.url("/b"), "payloadTemplateFile": "local.tpl"}, tmp_path)
    assert server.requests[0].json() == {"n": 2}
    assert server.requests[0].method == "POST"
    assert server.requests[1].json() == {"loops": 1}


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["tokenEnv", "tokenFile"])
def test_token_is_sent_but_never_stored_or_in_the_payload(
    source: str, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_TEST_TOKEN", SECRET)
    (tmp_path / "token").write_text(SECRET + "\n")
    with_: dict[str, Any] = {
        "url": server.url("/repos/o/r/dispatches"), "method": "POST",
        "headers": {"Accept": "application/vnd.github+json"},
        "payloadTemplate": "github", "softFailure": False, "tokenScheme": "token",
        source: "NOTIFY_TEST_TOKEN" if source == "tokenEnv" else str(tmp_path / "token"),
    }
    fixture = load_fixture_experiment("kserve-two-versions.yaml")
    exp = Experiment.model_validate({"spec": [{"task": "notify", "with": with_}],
                                     "result": fixture.result})
    store = FileStore(tmp_path)
    asyncio.run(run_experiment(exp, store, TASKS, RunSettings(run_dir=tmp_path), reuse_result=True))
    [request] = server.requests
    assert request.headers["Authorization"] == f"token {SECRET}"
    assert SECRET.encode() not in request.body
    written = store.path.read_text()
    assert SECRET not in written
    assert store.read().result.num_completed_tasks == 1  # type: ignore[union-attr]


def test_report_experiment_redacts_secrets_anywhere_in_the_spec(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_VAR", "env-secret")
    notify_with: dict[str, Any] = {
        "url": server.url("/hooks/T0/B0/path-secret"), "headers": {"X-Whatever": "nh-secret"},
        "params": {"sig": "np-secret"}, "tokenEnv": "SOME_VAR", "payloadTemplate": "github",
    }
    spec: list[dict[str, Any]] = [
        {"task": "http", "with": {"url": "http://user:pw-secret@model/x?access_token=qs-secret&a=1",
                                  "headers": {"Authorization": "Bearer h-secret", "X-Api-Key": "k"}}},
        {"run": "curl -H 'Authorization: Bearer run-secret' https://x/y?token=q2-secret"},
        {"task": "custommetrics", "with": {"values": {"githubToken": "v-secret", "maxTokens": 5}}},
        {"task": "notify", "with": notify_with},
    ]
    exp = two_versions(spec)
    run_notify(notify_with, tmp_path, exp)
    body = server.requests[0].body.decode()
    assert "secret" not in body.replace("[redacted]", "")
    redacted = server.requests[0].json()["client_payload"]["experiment"]["spec"]
    assert redacted[0]["with"]["url"] == "http://[redacted]@model/x?access_token=[redacted]&a=1"
    assert redacted[0]["with"]["headers"] == {"Authorization": "[redacted]", "X-Api-Key": "[redacted]"}
    assert redacted[2]["with"]["values"] == {"githubToken": "[redacted]", "maxTokens": 5}
    assert redacted[3]["with"] == {
        "url": server.base + "/…", "headers": {"X-Whatever": "[redacted]"},
        "params": {"sig": "[redacted]"}, "tokenEnv": "[redacted]", "payloadTemplate": "github",
    }
    # the task's own experiment is untouched
    assert exp.spec[0].with_["headers"]["Authorization"] == "Bearer h-secret"


def test_url_path_is_hidden_in_errors_and_logs(server: Server, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TaskError) as caught:
        run_notify({"url": server.url("/status/500/hook-secret")}, tmp_path)
    assert caught.value.message == f"notification GET {server.base}/…: HTTP 500"
    with caplog.at_level(logging.DEBUG, logger="canarist"):
        run_notify({"url": server.url("/hook-secret")}, tmp_path)
    assert "hook-secret" not in caplog.text
    assert f"notification sent: GET {server.base}/…: HTTP 200" in caplog.text
    body_lines = [r.getMessage() for r in caplog.records if "response body" in r.getMessage()]
    assert len(body_lines) == 1 and len(body_lines[0]) < notify.BODY_LOG_LIMIT + 200


@pytest.mark.parametrize("how", ["unset", "empty-file", "missing-file"])
def test_unreadable_token_fails_even_with_soft_failure(how: str, server: Server, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_UNSET_TOKEN", raising=False)
    (tmp_path / "empty").write_text("\n")
    source = {"unset": {"tokenEnv": "NOTIFY_UNSET_TOKEN"}, "empty-file": {"tokenFile": "empty"},
              "missing-file": {"tokenFile": "nope"}}[how]
    with pytest.raises(UnavailableError):
        run_notify({"url": server.url("/x"), "softFailure": True, **source}, tmp_path)
    assert server.requests == []


# -- validation ---------------------------------------------------------------------------------


def test_missing_url() -> None:
    assert validation_error({"method": "GET"}) == "spec[0].with: no URL was provided for notify task"
    assert validation_error({"url": ""}) == "spec[0].with: no URL was provided for notify task"


@pytest.mark.parametrize(("with_", "expected"), [
    ({"url": "http://h", "method": "PUT"}, "method: expected GET or POST, got 'PUT'"),
    ({"url": "ftp://h/x"}, "url: expected an http:// or https:// URL with a host"),
    ({"url": "http://h", "payloadTemplate": "teams"}, "unknown built-in template 'teams'"),
    ({"url": "http://h", "payloadTemplate": "slack", "payloadTemplateURL": "http://t"},
     "set only one of payloadTemplate, payloadTemplateURL"),
    ({"url": "http://h", "tokenEnv": "A", "tokenFile": "b"}, "set only one of tokenEnv, tokenFile"),
    ({"url": "http://h", "tokenScheme": "token"}, "tokenScheme needs tokenEnv or tokenFile"),
    ({"url": "http://h", "tokenEnv": "A", "headers": {"authorization": "x"}}, "keep one"),
    ({"url": "http://h", "timeout": "0s"},
     'timeout: expected a positive Go duration such as 30s, got "0s"'),
    ({"url": "http://h", "timeout": 5}, "a number has no unit"),
    ({"url": "http://h", "softFailure": "yes"}, "softFailure: expected true or false, got \"yes\""),
    ({"url": "http://h", "headers": {"X": "a\nb"}}, "header X: expected a header value on one line"),
    ({"url": "http://h", "params": {"a": [1]}}, "a: expected text, got list"),
    ({"url": "http://h", "retries": 3}, "retries: unknown key"),
])
def test_bad_inputs_are_rejected_before_anything_runs(with_: dict[str, Any], expected: str) -> None:
    assert expected in validation_error(with_)


def test_keys_match_case_insensitively() -> None:
    inputs = notify.NotifyInputs.model_validate(
        {"URL": "http://h", "softfailure": True, "payloadtemplateurl": "http://t/x"})
    assert inputs.soft_failure and inputs.effective_method == "POST"


# -- failures -------------------------------------------------------------------------------------


def test_non_2xx_fails_unless_soft_failure(server: Server, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TaskError, match="HTTP 500"):
        run_notify({"url": server.url("/status/500")}, tmp_path)
    with caplog.at_level(logging.WARNING, logger="canarist"):
        run_notify({"url": server.url("/status/500"), "softFailure": True}, tmp_path)
    assert "HTTP 500 (softFailure: continuing)" in caplog.text
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed_and_fail(code: int, server: Server, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_REDIRECT_TOKEN", SECRET)
    with recording_server() as other:
        other_port = URL(other.base).port
        server.redirect_to = f"http://localhost:{other_port}/collect/path-secret?token=q-secret"
        with_: dict[str, Any] = {"url": server.url(f"/redirect/{code}/hook-secret"),
                                 "headers": {"X-Api-Key": "key-secret"},
                                 "tokenEnv": "NOTIFY_REDIRECT_TOKEN", "payloadTemplate": "slack"}
        with pytest.raises(TaskError) as caught:
            run_notify(with_, tmp_path)
        assert caught.value.message == (
            f"notification POST {server.base}/…: HTTP {code}: redirect to "
            f"http://localhost:{other_port}/… not followed")
        with caplog.at_level(logging.DEBUG, logger="canarist"):
            run_notify({**with_, "softFailure": True}, tmp_path)
        assert other.requests == []
    assert len(server.requests) == 2
    assert "notification sent" not in caplog.text
    assert "not followed (softFailure: continuing)" in caplog.text
    assert "secret" not in caplog.text.replace(SECRET, "")


def test_a_relative_redirect_names_the_same_host(server: Server, tmp_path: Path) -> None:
    server.redirect_to = "/elsewhere"
    with pytest.raises(TaskError, match=re.escape(f"redirect to {server.base}/… not followed")):
        run_notify({"url": server.url("/redirect/302")}, tmp_path)
    server.redirect_to = ""
    with pytest.raises(TaskError, match=r"HTTP 302: redirect to no location"):
        run_notify({"url": server.url("/redirect/302")}, tmp_path)
    assert [r.path for r in server.requests] == ["/redirect/302"] * 2


def test_connection_refused_fails_unless_soft_failure(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    url = refused_url()
    with pytest.raises(TaskError, match=r"notification GET http://127\.0\.0\.1:"):
        run_notify({"url": url}, tmp_path)
    with caplog.at_level(logging.WARNING, logger="canarist"):
        run_notify({"url": url, "softFailure": True}, tmp_path)
    assert "softFailure: continuing" in caplog.text


def test_a_server_that_never_answers_times_out(server: Server, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    with pytest.raises(TaskError, match=r"timed out after 0\.3s"):
        run_notify({"url": server.url("/hang"), "timeout": "300ms"}, tmp_path)
    run_notify({"url": server.url("/hang"), "timeout": "300ms", "softFailure": True}, tmp_path)
    assert (datetime.now(UTC) - started).total_seconds() < 5


@pytest.mark.parametrize("soft", [False, True])
def test_template_url_404_fails_even_with_soft_failure(soft: bool, server: Server,
                                                       tmp_path: Path) -> None:
    with pytest.raises(UnavailableError, match=r"cannot fetch payload template .*: HTTP 404"):
        run_notify({"url": server.url("/x"), "payloadTemplateURL": server.url("/templates/none"),
                    "softFailure": soft}, tmp_path)
    assert server.requests == []


def test_unreachable_or_hanging_template_url_fails(server: Server, tmp_path: Path) -> None:
    with pytest.raises(UnavailableError, match="cannot fetch payload template"):
        run_notify({"url": server.url("/x"), "payloadTemplateURL": refused_url(),
                    "softFailure": True}, tmp_path)
    with pytest.raises(UnavailableError, match="timed out"):
        run_notify({"url": server.url("/x"), "payloadTemplateURL": server.url("/hang"),
                    "timeout": "300ms", "softFailure": True}, tmp_path)


def test_template_errors_fail_even_with_soft_failure(server: Server, tmp_path: Path) -> None:
    server.templates["bad.tpl"] = "{{ .Report.numLoops | nosuchfunction }}"
    with pytest.raises(TaskError, match="payload template: "):
        run_notify({"url": server.url("/x"), "softFailure": True,
                    "payloadTemplateURL": server.url("/templates/bad.tpl")}, tmp_path)
    with pytest.raises(UnavailableError, match="cannot read payload template file"):
        run_notify({"url": server.url("/x"), "softFailure": True,
                    "payloadTemplateFile": "missing.tpl"}, tmp_path)
    assert server.requests == []


def test_engine_records_a_notify_failure(server: Server, tmp_path: Path) -> None:
    exp = Experiment.model_validate(
        {"spec": [{"task": "notify", "with": {"url": server.url("/status/503/secret-path")}}]})
    store = FileStore(tmp_path)
    with pytest.raises(TaskError):
        asyncio.run(run_experiment(exp, store, TASKS, RunSettings(run_dir=tmp_path)))
    result = store.read().result
    assert result is not None and result.failure and result.failed_task is not None
    assert result.failed_task.reason == f"notification GET {server.base}/…: HTTP 503"


# -- documented examples ---------------------------------------------------------------------


def documented_values_files() -> dict[str, dict[str, Any]]:
    """Values files docs/notify.md shows: a yaml block whose first line is `# name.yaml`."""
    blocks = re.findall(r"```yaml\n# ([\w.-]+\.yaml)\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return {name: yaml.safe_load(body) for name, body in blocks}


def documented_launches() -> list[dict[str, Any]]:
    """The values of every `canarist launch` example in docs/notify.md, as the CLI builds them."""
    files = documented_values_files()
    blocks = re.findall(r"```shell\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    launches: list[dict[str, Any]] = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            if words[:2] != ["canarist", "launch"]:
                continue
            options = list(zip(words[2::2], words[3::2], strict=True))
            assert {flag for flag, _ in options} <= {"-f", "--set"}, words
            launches.append(build_values(
                [files[value] for flag, value in options if flag == "-f"],
                set_values=[value for flag, value in options if flag == "--set"]))
    return launches


def documented_template() -> str:
    [template] = re.findall(r"```gotemplate\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return str(template)


def test_the_doc_has_the_examples_this_test_runs() -> None:
    tasks = [launch["tasks"] for launch in documented_launches()]
    assert tasks == [["http", "assess", "slack"], ["http", "assess", "github"],
                     ["http", "assess", "notify"], ["http", "notify"]]


@pytest.mark.parametrize("index", range(4))
def test_documented_examples_render_validate_and_notify(
    index: int, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("HOOKS_TOKEN", SECRET)
    (tmp_path / "token").write_text(SECRET)
    server.templates["release.tpl"] = documented_template()
    values = documented_launches()[index]
    data = render_experiment(values, now=datetime(2024, 5, 1, tzinfo=UTC))
    experiment = Experiment.model_validate(data)
    prepare(experiment.spec, TASKS)  # every documented task validates
    [entry] = [e for e in experiment.spec if e.task == "notify"]
    with_ = dict(entry.with_)
    documented_url = URL(with_["url"])
    with_["url"] = server.url(documented_url.path_qs)
    if "payloadTemplateURL" in with_:
        with_["payloadTemplateURL"] = server.url("/templates/" + URL(with_["payloadTemplateURL"]).name)
    if "tokenFile" in with_:
        with_["tokenFile"] = str(tmp_path / "token")
    run_notify(with_, tmp_path, two_versions([{"task": "notify", "with": with_}]))

    [request] = server.requests
    assert request.path == documented_url.path
    if index == 0:
        assert request.method == "POST"
        assert "SLOs not satisfied by version 1" in request.json()["text"]
    elif index == 1:
        assert request.headers["Authorization"] == f"token {SECRET}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.json()["client_payload"]["summary"]["slos"] is False
        assert entry.if_ == "SLOs()" and with_["softFailure"] is False
        assert SECRET not in json.dumps(data)
    elif index == 2:
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        assert request.headers["X-Team"] == "ml-platform"
        assert request.query == {"source": "canarist"}
        payload = request.json()
        assert payload["verdict"] == "fail" and payload["loops"] == 1
        assert payload["reason"].startswith("2 of 3 SLOs not satisfied: "
                                            "kserve-prometheus/latency-mean for version 1 is 31.2")
    else:
        assert request.method == "GET" and request.body == b""
        assert request.query == {"experiment": "iris-canary"}
    assert SECRET.encode() not in request.body


def test_messages_lead_with_the_rollout_when_there_is_one(tmp_path: Path) -> None:
    fixture = load_fixture_experiment("kserve-two-versions.yaml")
    data = experiment_to_data(fixture)
    data["spec"] = [{"task": "notify", "with": {"url": "http://h/x"}}]
    data["result"]["rollout"] = {
        "state": "rolled-back", "percent": 0, "candidate": "iris-00002", "baseline": "iris-00001",
        "actions": [{"time": "2026-12-03T10:27:53Z", "action": "rollback", "from": 10, "to": 0,
                     "verdict": "fail", "reason": "latency-mean beyond the allowance"}]}
    summary = notify.report_data(Experiment.model_validate(data))["Report"]["summary"]
    assert summary["details"][0] == ("Rollout: rolled back to 0 % (candidate iris-00002, "
                                     "baseline iris-00001)")
    payload = render(notify.builtin_template("slack"),
                     notify.report_data(Experiment.model_validate(data)), name="slack")
    assert "Rollout: rolled back to 0 %" in json.loads(payload)["text"]


# -- the same task through a transport that answers as told (no server) ------------------------


def notify_through(transport: FakeTransport, with_: dict[str, Any], tmp_path: Path) -> None:
    inputs = notify.NotifyInputs.model_validate(with_)
    exp = two_versions([{"task": "notify", "with": with_}])
    ctx = TaskContext(experiment=exp, number=1, name="notify", run_dir=tmp_path)
    asyncio.run(notify.run(inputs, ctx, transport))


HOOK = "https://hooks.example/services/T0/B0/hook-secret"


def test_the_request_is_built_from_the_inputs(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NOTIFY_TOKEN", SECRET)
    transport = FakeTransport(FakeResponse(204))
    notify_through(transport, {"url": HOOK, "params": {"a": 1}, "headers": {"X-Team": "ml"},
                               "tokenEnv": "FAKE_NOTIFY_TOKEN", "tokenScheme": "token",
                               "payloadTemplate": "slack"}, tmp_path)
    [sent] = transport.requests
    assert (sent.method, sent.url, sent.params, sent.follow_redirects) == (
        "POST", HOOK, [("a", "1")], False)
    assert sent.headers == {"X-Team": "ml", "Authorization": f"token {SECRET}",
                            "Content-Type": "application/json"}
    assert sent.body is not None and "text" in json.loads(sent.body)


@pytest.mark.parametrize(("answer", "message"), [
    (TimeoutError(), "notification GET https://hooks.example/…: timed out after 2s"),
    (FakeResponse(500, b"boom"), "notification GET https://hooks.example/…: HTTP 500"),
    (FakeResponse(302, headers={"Location": "https://evil.example/steal?t=1"}),
     "notification GET https://hooks.example/…: HTTP 302: redirect to https://evil.example/… "
     "not followed"),
    (FakeResponse(307, headers={"Location": "http://[::1"}),
     "notification GET https://hooks.example/…: HTTP 307: redirect to an invalid location "
     "not followed"),
])
def test_each_unhappy_answer_is_one_line_without_the_hooks_secret(
        answer: FakeResponse | BaseException, message: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TaskError) as caught:
        notify_through(FakeTransport(answer), {"url": HOOK, "timeout": "2s"}, tmp_path)
    assert caught.value.message == message
    with caplog.at_level(logging.WARNING, logger="canarist"):
        notify_through(FakeTransport(answer), {"url": HOOK, "timeout": "2s",
                                               "softFailure": True}, tmp_path)
    assert f"{message} (softFailure: continuing)" in caplog.text


def test_a_failed_connection_is_described_in_its_own_words_with_urls_hidden(
        tmp_path: Path) -> None:
    error = aiohttp.ClientOSError(f"cannot reach {HOOK}?a=1")
    with pytest.raises(TaskError) as caught:
        notify_through(FakeTransport(error), {"url": HOOK, "params": {"a": "1"}}, tmp_path)
    assert caught.value.message == ("notification GET https://hooks.example/…: ClientOSError: "
                                    "cannot reach https://hooks.example/…")


def test_only_the_first_bytes_of_the_answer_are_read(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    response = FakeResponse(200, b"a" * 10_000, declared=10_000)
    with caplog.at_level(logging.DEBUG, logger="canarist"):
        notify_through(FakeTransport(response), {"url": HOOK}, tmp_path)
    assert response.read_sizes == [notify.BODY_LOG_LIMIT]
    assert "notification sent: GET https://hooks.example/…: HTTP 200" in caplog.text


@pytest.mark.parametrize(("answer", "error", "message"), [
    (FakeResponse(404, b"x" * 5_000_000), UnavailableError,
     "cannot fetch payload template https://t.example/…: HTTP 404"),
    (FakeResponse(200, b"x" * (1024 * 1024 + 1)), TaskError,
     "payload template https://t.example/… is larger than 1048576 bytes"),
    (FakeResponse(200, b"\xff{{"), TaskError,
     "payload template https://t.example/… is not UTF-8 text"),
    (TimeoutError(), UnavailableError,
     "cannot fetch payload template https://t.example/…: timed out after 1.5s"),
])
def test_a_payload_template_that_cannot_be_fetched_fails_before_anything_is_sent(
        answer: FakeResponse | BaseException, error: type[Exception], message: str,
        tmp_path: Path) -> None:
    transport = FakeTransport(answer, FakeResponse(200))
    with pytest.raises(error) as caught:
        notify_through(transport, {"url": HOOK, "timeout": "1.5s", "softFailure": True,
                                   "payloadTemplateURL": "https://t.example/n/slack.tpl"},
                       tmp_path)
    assert str(caught.value) == message
    assert [r.url for r in transport.requests] == ["https://t.example/n/slack.tpl"]
