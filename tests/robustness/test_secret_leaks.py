"""No secret leaks: distinct secrets planted wherever one can enter, every output searched.

One experiment runs for real against local servers on 127.0.0.1: an HTTP model endpoint
(`http`), a gRPC V2 server (`grpc`), a metrics provider (`custommetrics`, which answers one
metric with an error that echoes the request's credentials back, as some servers do), and a
webhook receiver (`slack` and `notify`). Secrets enter through environment variables and files
(`tokenEnv`, `passwordFile`), URL user info and query strings, headers, gRPC metadata,
template values, and the Slack webhook path. Then `launch` (at `-l debug`), `report -o
text|html|json`, `assert`, `launch --dry` and `k launch --dry` run, and every output is
searched: stdout, stderr, the experiment file, the reports, the manifests, the notification
payloads and what each server received.

Expected: no secret anywhere, with two exceptions that are the point of the secret:
* a server receives the credentials meant for it (in its request line and headers);
* secrets written literally into the values are stored in the spec of `experiment.yaml`
  (and in the Secret that holds it in Kubernetes), which is the experiment's input. Secrets
  given by reference (environment variables, files) are never stored.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from tests.servers.grpc_v2_server import ThreadedV2Server
from tests.servers.web import RecordingServer, serve_recording

CANARIST = [sys.executable, "-m", "canarist"]
INFER = "inference.GRPCInferenceService.ModelInfer"

# Given by reference: never stored, never shown; sent only to their own server.
NOTIFY_ENV = "nEnv7Q2secret"        # notify tokenEnv
PROM_FILE = "pFile4K9secret"        # custommetrics auth.passwordFile
# Written into the values: stored in the spec as given, never shown.
HTTP_PASS = "hPass3X1secret"        # http.url user info
HTTP_QUERY = "hQry8M5secret"        # http.url ?token=
HTTP_HEADER = "hHdr6W2secret"       # http.headers X-Api-Key
GRPC_META = "gMeta9T4secret"        # grpc.metadata authorization
TMPL_TOKEN = "tTok2R7secret"        # custommetrics values.apiToken -> the query's ?token=
TMPL_KEY = "tKey5J3secret"          # custommetrics values.apiKey -> an X-Api-Key header
TMPL_PASS = "tPass1V8secret"        # custommetrics values.dbPassword -> ?password=
SLACK_SPEC = "sSpec4H6secret"       # a hooks.slack.com URL among the template values
SLACK_PATH = "sPath7D1secret"       # slack.url path (the webhook's credential)
NOTIFY_HEADER = "nHdr3F9secret"     # notify.headers X-Api-Key
NOTIFY_PARAM = "nPrm8L2secret"      # notify.params sig
NOTIFY_QUERY = "nQry5C7secret"      # notify.url ?access_token=

BY_REFERENCE = (NOTIFY_ENV, PROM_FILE)
LITERAL = (HTTP_PASS, HTTP_QUERY, HTTP_HEADER, GRPC_META, TMPL_TOKEN, TMPL_KEY, TMPL_PASS,
           SLACK_SPEC, SLACK_PATH, NOTIFY_HEADER, NOTIFY_PARAM, NOTIFY_QUERY)
SECRETS = BY_REFERENCE + LITERAL

PROVIDER_TEMPLATE = """\
url: {{ .url }}/api/v1/query?token={{ .apiToken }}&password={{ .dbPassword }}
method: GET
headers:
  X-Api-Key: {{ .apiKey }}
metrics:
- name: ok
  type: gauge
  params:
  - name: case
    value: ok
  jqExpression: .v
- name: echoed
  type: gauge
  params:
  - name: case
    value: echo
  jqExpression: .v
"""


def forms(secret: str) -> set[str]:
    """The secret, and its Basic-credential encodings (`user:secret` in base64)."""
    found = {secret}
    for user in ("promuser", "huser", "tuser"):
        found.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return found


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    return sorted(s for s in secrets if any(f in text for f in forms(s)))


async def answer(request: web.Request) -> web.StreamResponse:
    """`/api/v1/query?case=echo` answers 500 with the request's credentials in the body; the
    other queries answer `{"v": 1}`; anything else `{"ok": true}`."""
    if request.path == "/api/v1/query":
        if request.query.get("case") == "echo":
            echoed = (f"denied: {request.method} {request.path_qs} "
                      f"authorization: {request.headers.get('Authorization', '')} "
                      f"x-api-key: {request.headers.get('X-Api-Key', '')}")
            return web.Response(status=500, text=echoed)
        return web.json_response({"v": 1})
    return web.json_response({"ok": True})


@contextlib.contextmanager
def receiver() -> Iterator[RecordingServer]:
    with serve_recording(RecordingServer(), answer) as server:
        server.base = server.base.removeprefix("http://")  # host:port, as the values want it
        yield server


def values(target: str, grpc_host: str, metrics: str, hooks: str,
           template: Path) -> dict[str, Any]:
    return {
        "tasks": ["http", "grpc", "custommetrics", "assess", "slack", "notify"],
        "http": {"url": f"http://huser:{HTTP_PASS}@{target}/v2/models/m/infer?token={HTTP_QUERY}",
                 "headers": {"X-Api-Key": HTTP_HEADER}, "numRequests": 3},
        "grpc": {"host": grpc_host, "call": INFER, "total": 3,
                 "data": {"model_name": "m", "inputs": [{
                     "name": "input-0", "shape": [1, 4], "datatype": "FP32",
                     "contents": {"fp32_contents": [6.8, 2.8, 4.8, 1.4]}}]},
                 "metadata": {"authorization": f"Bearer {GRPC_META}"}},
        "custommetrics": {
            "templates": {"prov": str(template)},
            "values": {"url": f"http://{metrics}", "apiToken": TMPL_TOKEN, "dbPassword": TMPL_PASS,
                       "apiKey": TMPL_KEY,
                       "callback": f"https://hooks.slack.com/services/T0/B0/{SLACK_SPEC}"},
            "auth": {"username": "promuser", "passwordFile": "prom-password"},
        },
        "assess": {"SLOs": {"upper": {"http/error-count": 0, "prov/ok": 5,
                                      "prov/echoed": 5}}},
        "slack": {"url": f"http://{hooks}/services/T0/B0/{SLACK_PATH}", "softFailure": False},
        "notify": {"url": f"http://{hooks}/hook?access_token={NOTIFY_QUERY}",
                   "headers": {"X-Api-Key": NOTIFY_HEADER}, "params": {"sig": NOTIFY_PARAM},
                   "tokenEnv": "LEAK_TEST_NOTIFY_TOKEN", "payloadTemplate": "github"},
    }


def canarist(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEAK_TEST_NOTIFY_TOKEN": NOTIFY_ENV, "NO_COLOR": "1"}
    return subprocess.run([*CANARIST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, check=False, env=env)


def test_no_secret_leaks_from_a_real_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "prov.tpl").write_text(PROVIDER_TEMPLATE)
    (run_dir / "prom-password").write_text(PROM_FILE + "\n")
    outputs: dict[str, str] = {}

    def record(name: str, done: subprocess.CompletedProcess[str]) -> None:
        outputs[f"{name}: stdout"] = done.stdout
        outputs[f"{name}: stderr"] = done.stderr
        assert "Traceback" not in done.stderr, done.stderr

    with receiver() as target, receiver() as metrics, receiver() as hooks, \
            ThreadedV2Server() as grpc_server:
        given = values(target.base, grpc_server.address, metrics.base, hooks.base,
                       run_dir / "prov.tpl")
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(given))
        launched = canarist("-l", "debug", "launch", "-f", str(tmp_path / "values.yaml"),
                            "--run-dir", str(run_dir), cwd=tmp_path)
        record("launch -l debug", launched)
        # The run completed, and its one error (the echoed credentials) was met.
        assert launched.returncode == 0, launched.stderr
        for fmt in ("text", "html", "json"):
            done = canarist("-l", "debug", "report", "-o", fmt, "--run-dir", str(run_dir),
                            cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            record(f"report -o {fmt}", done)
        asserted = canarist("-l", "debug", "assert", "-c", "completed", "-c", "nofailure",
                            "-c", "slos", "--run-dir", str(run_dir), cwd=tmp_path)
        assert asserted.returncode == 3, asserted.stderr  # prov/echoed is unavailable
        record("assert", asserted)
        dry = canarist("-l", "debug", "launch", "--dry", "-f", str(tmp_path / "values.yaml"),
                       "--run-dir", str(tmp_path / "dry"), cwd=tmp_path)
        assert dry.returncode == 0, dry.stderr
        record("launch --dry", dry)
        k_dry = canarist("k", "launch", "--dry", "-l", "debug", "-f",
                         str(tmp_path / "values.yaml"), "--set", "runner=job", "-n", "team-a",
                         cwd=tmp_path)
        assert k_dry.returncode == 0, k_dry.stderr
        record("k launch --dry", k_dry)
        received = {"http target": target, "metrics provider": metrics, "webhooks": hooks}
        grpc_metadata = grpc_server.stats.metadata

    # What each server received: only the credentials meant for it, never in a body.
    meant_for = {"http target": {HTTP_PASS, HTTP_QUERY, HTTP_HEADER},
                 "metrics provider": {PROM_FILE, TMPL_TOKEN, TMPL_KEY, TMPL_PASS},
                 "webhooks": {NOTIFY_ENV, NOTIFY_HEADER, NOTIFY_PARAM, NOTIFY_QUERY, SLACK_PATH}}
    for name, server in received.items():
        assert server.requests, f"{name} received nothing"
        for request in server.requests:
            sent = request.request_line + json.dumps(request.headers)
            assert set(leaks(sent)) <= meant_for[name], (name, request.request_line)
            assert leaks(request.text) == [], (name, request.request_line)
    assert set(leaks(json.dumps(grpc_metadata))) == {GRPC_META}
    # The credentials did arrive: the point of sending them.
    assert leaks(json.dumps(metrics.requests[0].headers)) == sorted([PROM_FILE, TMPL_KEY])
    notified = [r for r in hooks.requests if r.request_line.startswith("POST /hook?")]
    assert len(notified) == 1
    assert notified[0].headers["Authorization"] == f"Bearer {NOTIFY_ENV}"
    # The payloads (the GitHub one carries the whole experiment) hold no secret at all.
    payloads = [r.text for r in hooks.requests]
    assert len(payloads) == 2 and all(payloads)
    assert "\"experiment\"" in notified[0].text

    # Every output the user or a CI system sees.
    assert "rendered template" in outputs["launch -l debug: stderr"]
    assert "[redacted]" in outputs["report -o html: stdout"]
    for name, text in outputs.items():
        assert leaks(text) == [], name

    # The stored experiments: the spec keeps what the values said; nothing by reference, and
    # nothing in the result (reasons, errors) is a secret.
    for path in (run_dir / "experiment.yaml", tmp_path / "dry" / "experiment.yaml"):
        stored = yaml.safe_load(path.read_text())
        assert leaks(path.read_text(), BY_REFERENCE) == [], path
        assert set(leaks(json.dumps(stored["spec"]))) == set(LITERAL)
        assert leaks(json.dumps(stored["result"])) == [], path
    # `k launch --dry`: the literal secrets only inside the Secret holding the experiment.
    manifests = list(yaml.safe_load_all((tmp_path / "manifest.yaml").read_text()))
    for manifest in manifests:
        text = json.dumps(manifest)
        assert leaks(text, BY_REFERENCE) == []
        if manifest["kind"] != "Secret":
            assert leaks(text) == [], manifest["kind"]


def test_debug_logs_redact_a_rendered_template_url(tmp_path: Path) -> None:
    """`-l debug` shows the rendered template; its URL's user info and token do not show."""
    (tmp_path / "p.tpl").write_text(
        "url: {{ .url }}/api/v1/query?token={{ .apiToken }}&a=1\nmethod: GET\nmetrics:\n"
        "- name: ok\n  type: gauge\n  params: [{name: case, value: ok}]\n  jqExpression: .v\n")
    with receiver() as metrics:
        given = {"tasks": ["custommetrics"],
                 "custommetrics": {"templates": {"p": str(tmp_path / "p.tpl")},
                                   "values": {"url": f"http://tuser:{TMPL_PASS}@{metrics.base}",
                                              "apiToken": TMPL_TOKEN}}}
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(given))
        done = canarist("-l", "debug", "launch", "-f", str(tmp_path / "values.yaml"),
                        "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"url: http://[redacted]@{metrics.base}/api/v1/query?token=[redacted]&a=1" in done.stderr
    assert leaks(done.stderr) == []
    # It was sent: user info as Basic credentials, the token in the query.
    [request] = metrics.requests
    assert TMPL_TOKEN in request.request_line
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"tuser:{TMPL_PASS}".encode()).decode()
