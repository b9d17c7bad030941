"""canarist's Kubernetes requests on the wire: TLS with the cluster's CA (and without it),
`tls-server-name`, client certificates from data and from files, exec credential plugins
(run once, again on expiry or a 401, failures in one line), proxies, server path prefixes."""

from __future__ import annotations

import base64
import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.fakes import KUBE_TOKEN
from tests.servers.proxy import forwarding_proxy
from tests.servers.tls import Pki, echo_server, make_pki

from canarist.backends.kube import SECRETS, KubeClient, KubeUnauthorized, KubeUnreachable, Resource
from canarist.core.errors import InputError, UnavailableError
from canarist.sandbox.kubeapi import RunningApi, serve_api
from canarist.sandbox.store import ObjectStore

ECHO = Resource("", "v1", "echo")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def echo(pki: Pki) -> Iterator[tuple[str, list[dict[str, str]]]]:
    with echo_server(pki) as running:
        yield running


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def config_file(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x"}))
    return str(path)


def get_echo(path: str) -> dict[str, Any]:
    with KubeClient.connect(path, timeout=5) as kube:
        return kube.get(ECHO, None, "me")


def test_tls_with_the_cluster_s_ca_and_a_client_certificate(pki: Pki, echo: tuple[str, list[dict[str, str]]],
                                                             tmp_path: Path) -> None:
    url, _ = echo
    ca_data = {"certificate-authority-data": b64(pki.data("ca.crt"))}
    path = config_file(tmp_path / "data", {"server": url, **ca_data},
                       {"client-certificate-data": b64(pki.data("client.crt")),
                        "client-key-data": b64(pki.data("client.key")), "token": "t0k"})
    assert get_echo(path) == {"cn": "alice", "authorization": "Bearer t0k", "path": "/api/v1/echo/me"}
    files = config_file(tmp_path / "files", {"server": url, "certificate-authority": str(pki.path("ca.crt"))},
                        {"client-certificate": str(pki.path("client.crt")),
                         "client-key": str(pki.path("client.key"))})
    assert get_echo(files)["cn"] == "alice"
    no_cert = config_file(tmp_path / "plain", {"server": url, **ca_data},
                          {"username": "admin", "password": "pw"})
    assert get_echo(no_cert) == {"cn": "", "authorization": f"Basic {b64(b'admin:pw')}",
                                 "path": "/api/v1/echo/me"}


def test_the_server_certificate_is_checked(pki: Pki, echo: tuple[str, list[dict[str, str]]],
                                           tmp_path: Path) -> None:
    url, seen = echo
    untrusted = config_file(tmp_path / "untrusted", {"server": url}, {})
    with pytest.raises(KubeUnreachable, match="certificate verify failed") as caught:
        get_echo(untrusted)
    assert caught.value.exit_code == 3 and url in str(caught.value)
    insecure = config_file(tmp_path / "insecure", {"server": url, "insecure-skip-tls-verify": True}, {})
    assert get_echo(insecure)["cn"] == ""
    ca = {"certificate-authority": str(pki.path("ca.crt"))}
    wrong_name = config_file(tmp_path / "wrong", {"server": url, **ca, "tls-server-name": "other.name"}, {})
    with pytest.raises(KubeUnreachable, match="certificate verify failed"):
        get_echo(wrong_name)
    by_name = config_file(tmp_path / "name", {"server": url, **ca,
                                              "tls-server-name": "kube.internal"}, {})
    assert get_echo(by_name)["path"] == "/api/v1/echo/me"
    assert len(seen) == 2


def test_bad_certificates_in_the_kubeconfig_are_input_errors(pki: Pki, echo: tuple[str, list[dict[str, str]]],
                                                             tmp_path: Path) -> None:
    url, _ = echo
    ca = {"certificate-authority": str(pki.path("ca.crt"))}
    half = config_file(tmp_path / "half", {"server": url, **ca},
                       {"client-certificate-data": b64(pki.data("client.crt"))})
    with pytest.raises(InputError, match="client-certificate and client-key go together"):
        get_echo(half)
    swapped = config_file(tmp_path / "swapped", {"server": url, **ca},
                          {"client-certificate-data": b64(pki.data("client.crt")),
                           "client-key-data": b64(pki.data("server.key"))})
    with pytest.raises(InputError, match="expected a PEM certificate and its private key"):
        get_echo(swapped)
    not_pem = config_file(tmp_path / "notpem",
                          {"server": url, "certificate-authority-data": b64(b"junk")}, {})
    with pytest.raises(InputError, match="certificate-authority: expected PEM certificates"):
        get_echo(not_pem)


def test_a_path_prefix_in_the_server_url_is_kept(echo: tuple[str, list[dict[str, str]]], pki: Pki,
                                                 tmp_path: Path) -> None:
    url, _ = echo
    path = config_file(tmp_path / "prefix", {"server": f"{url}/k8s/clusters/c-1/",
                                             "certificate-authority": str(pki.path("ca.crt"))}, {})
    assert get_echo(path)["path"] == "/k8s/clusters/c-1/api/v1/echo/me"


def test_through_a_proxy(pki: Pki, echo: tuple[str, list[dict[str, str]]], kube_api: RunningApi,
                         tmp_path: Path) -> None:
    url, _ = echo
    with forwarding_proxy() as (proxy, lines):
        tunnelled = config_file(tmp_path / "tls", {"server": url, "proxy-url": proxy,
                                                   "certificate-authority": str(pki.path("ca.crt"))}, {})
        assert get_echo(tunnelled)["path"] == "/api/v1/echo/me"
        plain = config_file(tmp_path / "plain", {"server": kube_api.url, "proxy-url": proxy},
                            {"token": KUBE_TOKEN})
        with KubeClient.connect(plain, timeout=5) as kube:
            kube.create(SECRETS, "default", {"metadata": {"name": "via-proxy"}})
            assert kube.get(SECRETS, "default", "via-proxy")["metadata"]["name"] == "via-proxy"
    port = url.rsplit(":", 1)[1]
    assert lines[0] == f"CONNECT 127.0.0.1:{port}"
    # the GET went over the same kept-alive connection the proxy relays
    assert lines[1:] == [f"POST {kube_api.url}/api/v1/namespaces/default/secrets"]


# -- exec credential plugins ----------------------------------------------------------------

PLUGIN = """\
import json, os, sys, pathlib
state = pathlib.Path(sys.argv[1])
runs = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(runs))
pathlib.Path(str(state) + ".info").write_text(os.environ.get("KUBERNETES_EXEC_INFO", ""))
pathlib.Path(str(state) + ".env").write_text(os.environ.get("FROM_KUBECONFIG", ""))
tokens = os.environ["TOKENS"].split(",")
status = {"token": tokens[min(runs, len(tokens)) - 1]}
if os.environ.get("EXPIRES"):
    status["expirationTimestamp"] = os.environ["EXPIRES"]
if os.environ.get("CERT"):
    status = {"clientCertificateData": pathlib.Path(os.environ["CERT"]).read_text(),
              "clientKeyData": pathlib.Path(os.environ["KEY"]).read_text()}
if os.environ.get("FAIL") == "leak":
    print(f"refresh failed: token={tokens[0]}", file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAIL"):
    print("login expired; run `cloud login`", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"apiVersion": os.environ.get("API", "client.authentication.k8s.io/v1"),
                  "kind": "ExecCredential", "status": status}))
"""


@pytest.fixture
def api() -> Iterator[RunningApi]:
    with serve_api(ObjectStore(), token=KUBE_TOKEN) as running:
        yield running


def plugin_config(tmp_path: Path, server: str, env: dict[str, str], *,
                  cluster: dict[str, Any] | None = None, **exec_fields: Any) -> tuple[str, Path]:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    state = tmp_path / "runs"
    plugin = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
              "args": [str(script), str(state)], "interactiveMode": "Never",
              "env": [{"name": k, "value": v} for k, v in {"FROM_KUBECONFIG": "yes", **env}.items()],
              **exec_fields}
    return config_file(tmp_path / "config", {"server": server, **(cluster or {})}, {"exec": plugin}), state


def test_an_exec_plugin_runs_once_and_its_token_is_kept(api: RunningApi, tmp_path: Path) -> None:
    path, state = plugin_config(tmp_path, api.url, {"TOKENS": KUBE_TOKEN}, provideClusterInfo=True)
    with KubeClient.connect(path, timeout=5) as kube:
        kube.create(SECRETS, "default", {"metadata": {"name": "s"}})
        kube.get(SECRETS, "default", "s")
    assert state.read_text() == "1"
    info = json.loads(Path(f"{state}.info").read_text())
    assert info == {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                    "spec": {"interactive": False,
                             "cluster": {"server": api.url, "insecure-skip-tls-verify": False}}}
    assert Path(f"{state}.env").read_text() == "yes"


def test_an_expired_or_rejected_credential_runs_the_plugin_again(api: RunningApi, tmp_path: Path) -> None:
    path, state = plugin_config(tmp_path, api.url, {"TOKENS": KUBE_TOKEN,
                                                    "EXPIRES": "2000-01-01T00:00:00Z"})
    with KubeClient.connect(path, timeout=5) as kube:
        kube.create(SECRETS, "default", {"metadata": {"name": "s"}})
        kube.get(SECRETS, "default", "s")
    assert state.read_text() == "2"  # expired at once: run for each request
    rejected = tmp_path / "rejected"
    rejected.mkdir()
    path, state = plugin_config(rejected, api.url, {"TOKENS": f"stale,{KUBE_TOKEN}"})
    with KubeClient.connect(path, timeout=5) as kube:
        assert kube.get(SECRETS, "default", "s")["metadata"]["name"] == "s"
    assert state.read_text() == "2"  # 401 with "stale", once more, then accepted
    never = tmp_path / "never"
    never.mkdir()
    path, state = plugin_config(never, api.url, {"TOKENS": "stale"})
    with KubeClient.connect(path, timeout=5) as kube, pytest.raises(KubeUnauthorized):
        kube.get(SECRETS, "default", "s")
    assert state.read_text() == "2"  # tried again once, not forever


def test_an_exec_plugin_can_give_a_client_certificate(pki: Pki, echo: tuple[str, list[dict[str, str]]],
                                                      tmp_path: Path) -> None:
    url, _ = echo
    path, _ = plugin_config(tmp_path, url, {"TOKENS": "x", "CERT": str(pki.path("client.crt")),
                                            "KEY": str(pki.path("client.key"))},
                            cluster={"certificate-authority": str(pki.path("ca.crt"))})
    assert get_echo(path) == {"cn": "alice", "authorization": "", "path": "/api/v1/echo/me"}


def test_exec_plugin_failures_are_one_line_without_secrets(api: RunningApi, tmp_path: Path) -> None:
    failing = tmp_path / "failing"
    failing.mkdir()
    path, _ = plugin_config(failing, api.url, {"TOKENS": "secret-token", "FAIL": "1"})
    with pytest.raises(UnavailableError, match=r"exec plugin .* failed with exit code 3: login "
                                               r"expired; run `cloud login`$") as caught:
        get_from(path)
    assert caught.value.exit_code == 3
    leaking = tmp_path / "leaking"
    leaking.mkdir()
    path, _ = plugin_config(leaking, api.url, {"TOKENS": "secret-token", "FAIL": "leak"})
    with pytest.raises(UnavailableError, match=r"exit code 1: refresh failed: token=\[redacted\]$"):
        get_from(path)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    path, _ = plugin_config(wrong, api.url, {"TOKENS": "secret-token",
                                             "API": "client.authentication.k8s.io/v1beta1"})
    with pytest.raises(UnavailableError, match=r"printed apiVersion .*v1beta1, expected .*v1") as caught:
        get_from(path)
    assert "secret-token" not in str(caught.value)
    missing = config_file(tmp_path / "missing", {"server": api.url}, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "kubelogin-not-here",
        "installHint": "install kubelogin:\n  brew install kubelogin"}})
    with pytest.raises(InputError, match=r"exec plugin kubelogin-not-here: command not found "
                                         r"\(install kubelogin: brew install kubelogin\)$"):
        get_from(missing)
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    script.chmod(stat.S_IRUSR)
    blocked = config_file(tmp_path / "blocked", {"server": api.url}, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": "./not-executable"}})
    with pytest.raises(InputError, match="not executable"):
        get_from(blocked)


def get_from(path: str) -> dict[str, Any]:
    with KubeClient.connect(path, timeout=5) as kube:
        return kube.get(SECRETS, "default", "s")
