"""Reading kubeconfigs: the same server, credentials, TLS settings and namespace as the
official client reads (it is the compatibility check), KUBECONFIG lists merged as kubectl
merges them, the ServiceAccount in a pod, and one clear line for each mistake."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as official_client
from kubernetes import config as official_config
from tests.servers.tls import Pki, make_pki

from canarist.backends.kube.config import ClusterConfig, in_cluster, load_configuration
from canarist.backends.kube.transport import Transport
from canarist.core.errors import InputError


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(clusters: dict[str, Any], users: dict[str, Any], contexts: dict[str, Any],
               current: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": k, "cluster": v} for k, v in clusters.items()],
        "users": [{"name": k, "user": v} for k, v in users.items()],
        "contexts": [{"name": k, "context": v} for k, v in contexts.items()],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def official(path: str, context: str | None = None) -> dict[str, Any]:
    """What the official client makes of a kubeconfig."""
    configuration = official_client.Configuration()
    official_config.load_kube_config(config_file=path, context=context,
                                     client_configuration=configuration, persist_config=False)
    contexts, active = official_config.list_kube_config_contexts(config_file=path)
    chosen = next(c for c in contexts if c["name"] == context) if context else active

    def read(name: str | None) -> bytes | None:
        return Path(name).read_bytes() if name else None

    bearer = configuration.api_key.get("BearerToken")
    return {"server": configuration.host.rstrip("/"),
            # client-go trims a token file's whitespace (the Python client keeps the newline)
            "authorization": bearer.strip() if bearer else None,
            "ca": read(configuration.ssl_ca_cert), "cert": read(configuration.cert_file),
            "key": read(configuration.key_file), "verify": configuration.verify_ssl,
            "tls_server_name": configuration.tls_server_name,
            "proxy": configuration.proxy,
            "namespace": chosen["context"].get("namespace") or "default"}


def ours(path: str, context: str | None = None) -> dict[str, Any]:
    config = load_configuration(path, context)
    credentials = config.credentials
    return {"server": config.server,
            "authorization": Transport(config).auth_headers().get("Authorization"),
            "ca": config.ca_data, "cert": credentials.client_cert, "key": credentials.client_key,
            "verify": not config.insecure, "tls_server_name": config.tls_server_name,
            "proxy": config.proxy_url, "namespace": config.namespace}


def cases(pki: Pki, root: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (KUBECONFIG value, context)."""
    (root / "certs").mkdir(parents=True, exist_ok=True)
    for name in ("ca.crt", "client.crt", "client.key"):
        (root / "certs" / name).write_bytes(pki.data(name))
    (root / "certs" / "token").write_text("token-from-file\n")
    server = "https://127.0.0.1:6443"
    found: dict[str, tuple[str, str | None]] = {}

    def add(name: str, doc: dict[str, Any], context: str | None = None) -> None:
        found[name] = (str(write(root / name / "config", doc)), context)

    add("token and CA data", kubeconfig(
        {"c": {"server": server, "certificate-authority-data": b64(pki.data("ca.crt"))}},
        {"u": {"token": "abc.def"}}, {"x": {"cluster": "c", "user": "u", "namespace": "team"}},
        "x"))
    relative = kubeconfig(
        {"c": {"server": server + "/", "certificate-authority": "../certs/ca.crt"}},
        {"u": {"tokenFile": "../certs/token"}}, {"x": {"cluster": "c", "user": "u"}}, "x")
    add("relative token file and CA file", relative)
    add("client certificate data, insecure", kubeconfig(
        {"c": {"server": server, "insecure-skip-tls-verify": True}},
        {"u": {"client-certificate-data": b64(pki.data("client.crt")),
               "client-key-data": b64(pki.data("client.key"))}},
        {"x": {"cluster": "c", "user": "u", "namespace": "ns1"}}, "x"))
    add("client certificate files, server name, proxy", kubeconfig(
        {"c": {"server": "https://10.0.0.1", "certificate-authority": "../certs/ca.crt",
               "tls-server-name": "kube.internal", "proxy-url": "http://127.0.0.1:3128"}},
        {"u": {"client-certificate": "../certs/client.crt", "client-key": "../certs/client.key"}},
        {"x": {"cluster": "c", "user": "u"}}, "x"))
    add("basic auth", kubeconfig({"c": {"server": "http://127.0.0.1:8080"}},
                                 {"u": {"username": "admin", "password": "s3cret"}},
                                 {"x": {"cluster": "c", "user": "u"}}, "x"))
    add("context chosen by name", kubeconfig(
        {"c1": {"server": "https://one:6443"}, "c2": {"server": "https://two:6443"}},
        {"u1": {"token": "one"}, "u2": {"token": "two"}},
        {"a": {"cluster": "c1", "user": "u1"}, "b": {"cluster": "c2", "user": "u2",
                                                      "namespace": "bee"}}, "a"), "b")
    first = write(root / "list" / "first", kubeconfig(
        {"shared": {"server": "https://first:6443"}}, {"me": {"token": "first-token"}},
        {"one": {"cluster": "shared", "user": "me", "namespace": "first-ns"}}, "one"))
    second = write(root / "list" / "second", kubeconfig(
        {"shared": {"server": "https://second:6443"}, "own": {"server": "https://own:6443"}},
        {"me": {"token": "second-token"}, "them": {"token": "their-token"}},
        {"one": {"cluster": "own", "user": "them"},
         "two": {"cluster": "shared", "user": "them", "namespace": "second-ns"}}, "two"))
    empty = write(root / "list" / "empty", {})
    found["a list, first file wins"] = (os.pathsep.join([str(first), str(second)]), None)
    found["a list, the other order"] = (os.pathsep.join([str(second), str(first)]), None)
    found["a list, a context only the second has"] = (
        os.pathsep.join([str(first), str(empty), str(second)]), "two")
    return found


def test_reads_what_the_official_client_reads(pki: Pki, tmp_path: Path) -> None:
    compared = cases(pki, tmp_path)
    for name, (path, context) in compared.items():
        # In a list, the Python client takes the *last* current-context; kubectl the first
        # (checked below). With the context named, the two must agree.
        named = context or ("one" if name.startswith("a list") else None)
        assert ours(path, named) == official(path, named), name
    merged = ours(*compared["a list, first file wins"])
    assert (merged["server"], merged["authorization"], merged["namespace"]) == (
        "https://first:6443", "Bearer first-token", "first-ns")
    other = ours(*compared["a list, the other order"])
    assert (other["server"], other["authorization"], other["namespace"]) == (
        "https://second:6443", "Bearer their-token", "second-ns")


def test_a_token_file_is_read_for_every_request(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    path = write(tmp_path / "config", kubeconfig(
        {"c": {"server": "https://k:6443"}}, {"u": {"tokenFile": "token"}},
        {"x": {"cluster": "c", "user": "u"}}, "x"))
    transport = Transport(load_configuration(str(path)))
    assert transport.auth_headers() == {"Authorization": "Bearer first"}
    token.write_text("rotated\n")
    assert transport.auth_headers() == {"Authorization": "Bearer rotated"}


def test_in_cluster_reads_the_service_account(tmp_path: Path, pki: Pki,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "namespace").write_text("models\n")
    (account / "ca.crt").write_bytes(pki.data("ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    config = in_cluster(account)
    assert (config.server, config.namespace, config.ca_data) == (
        "https://[fd00::1]:443", "models", pki.data("ca.crt"))
    assert Transport(config).auth_headers() == {"Authorization": "Bearer pod-token"}
    (account / "token").unlink()
    with pytest.raises(InputError, match="in-cluster Kubernetes configuration"):
        in_cluster(account)


def test_secrets_stay_out_of_the_configuration_s_repr(tmp_path: Path, pki: Pki) -> None:
    path, context = cases(pki, tmp_path)["client certificate data, insecure"]
    shown = repr(load_configuration(path, context))
    assert "BEGIN" not in shown and "PRIVATE" not in shown
    basic = repr(load_configuration(cases(pki, tmp_path)["basic auth"][0]))
    assert "s3cret" not in basic and "admin" in basic


MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "no current context": (kubeconfig({}, {}, {}), "no current-context is set; pass --context"),
    "unknown context": (kubeconfig({}, {}, {"a": {}}, "b"), r"context b not found \(contexts: a\)"),
    "unknown cluster": (kubeconfig({}, {}, {"a": {"cluster": "gone"}}, "a"),
                        "context a: cluster gone not found"),
    "unknown user": (kubeconfig({"c": {"server": "https://k"}}, {},
                                {"a": {"cluster": "c", "user": "ghost"}}, "a"),
                     "context a: user ghost not found"),
    "no server": (kubeconfig({"c": {}}, {}, {"a": {"cluster": "c"}}, "a"),
                  "cluster c: server: expected the API server's URL"),
    "server not a URL": (kubeconfig({"c": {"server": "k8s:6443"}}, {}, {"a": {"cluster": "c"}}, "a"),
                         "cluster c: server: expected https://host"),
    "CA not base64": (kubeconfig({"c": {"server": "https://k", "certificate-authority-data": "%%"}},
                                 {}, {"a": {"cluster": "c"}}, "a"),
                      "certificate-authority-data: expected base64-encoded PEM"),
    "CA file missing": (kubeconfig({"c": {"server": "https://k", "certificate-authority": "no.crt"}},
                                   {}, {"a": {"cluster": "c"}}, "a"),
                        "certificate-authority: cannot read .*no.crt"),
    "insecure with CA": (kubeconfig({"c": {"server": "https://k", "insecure-skip-tls-verify": True,
                                           "certificate-authority-data": b64(b"x")}},
                                    {}, {"a": {"cluster": "c"}}, "a"),
                         "insecure-skip-tls-verify cannot be set with a certificate-authority"),
    "insecure not a bool": (kubeconfig({"c": {"server": "https://k",
                                              "insecure-skip-tls-verify": "yes"}},
                                       {}, {"a": {"cluster": "c"}}, "a"),
                            "insecure-skip-tls-verify: expected true or false"),
    "socks proxy": (kubeconfig({"c": {"server": "https://k", "proxy-url": "socks5://p:1080"}},
                               {}, {"a": {"cluster": "c"}}, "a"),
                    "proxy-url: expected http://host:port"),
    "auth provider": (kubeconfig({"c": {"server": "https://k"}},
                                 {"u": {"auth-provider": {"name": "oidc"}}},
                                 {"a": {"cluster": "c", "user": "u"}}, "a"),
                      "user u: auth-provider oidc is not supported; use an exec credential plugin"),
    "exec without apiVersion": (kubeconfig({"c": {"server": "https://k"}},
                                           {"u": {"exec": {"command": "x"}}},
                                           {"a": {"cluster": "c", "user": "u"}}, "a"),
                                "exec.apiVersion: expected one of client.authentication"),
    "exec interactive": (kubeconfig({"c": {"server": "https://k"}},
                                    {"u": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                    "command": "x", "interactiveMode": "Always"}}},
                                    {"a": {"cluster": "c", "user": "u"}}, "a"),
                         "exec.interactiveMode: Always needs a terminal"),
    "exec env": (kubeconfig({"c": {"server": "https://k"}},
                            {"u": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                            "command": "x", "env": [{"name": "A"}]}}},
                            {"a": {"cluster": "c", "user": "u"}}, "a"),
                 r"exec.env: expected a list of \{name, value\} strings"),
    "token not a string": (kubeconfig({"c": {"server": "https://k"}}, {"u": {"token": 5}},
                                      {"a": {"cluster": "c", "user": "u"}}, "a"),
                           "user u: token: expected a string"),
    "clusters not a list": ({"clusters": {"c": {}}}, "clusters: expected a list"),
    "entry without a name": ({"users": [{"user": {}}]}, r"users\[0\]: expected a mapping with a name"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_is_one_line_naming_the_file_and_field(name: str, tmp_path: Path) -> None:
    doc, expected = MISTAKES[name]
    path = write(tmp_path / "config", doc)
    with pytest.raises(InputError, match=expected) as caught:
        load_configuration(str(path))
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"kubeconfig {path}")
    assert "\n" not in str(caught.value)


def test_files_that_are_not_kubeconfigs(tmp_path: Path) -> None:
    text = tmp_path / "list.yaml"
    text.write_text("- a\n- b\n")
    with pytest.raises(InputError, match=f"kubeconfig {text}: expected a mapping"):
        load_configuration(str(text))
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed\n")
    with pytest.raises(InputError, match=f"kubeconfig {broken}"):
        load_configuration(str(broken))
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(InputError, match="no current-context is set"):
        load_configuration(str(empty))


def test_a_config_is_a_frozen_value() -> None:
    config = ClusterConfig(server="https://k", source="test")
    with pytest.raises(AttributeError):
        config.server = "https://other"  # type: ignore[misc]
