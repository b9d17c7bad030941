"""Where the Kubernetes API server is and how to prove who we are to it.

Read, in order: the kubeconfig given, `$KUBECONFIG` (a list of files joined with `:`, merged
as kubectl merges them: the first file to name a cluster, user or context wins, and the first
non-empty `current-context`), `~/.kube/config`, then the pod's ServiceAccount.

The fields read are those client-go reads for a cluster (`server`, `certificate-authority`,
`certificate-authority-data`, `insecure-skip-tls-verify`, `tls-server-name`, `proxy-url`) and
a user (`token`, `tokenFile`, `client-certificate(-data)`, `client-key(-data)`, `username` /
`password`, `exec`); relative file paths are relative to the kubeconfig that holds them. The
legacy `auth-provider` plugins (gcp, azure, oidc) are refused with one line: kubectl dropped the
first two, and each has an `exec` credential plugin instead.

A problem with the configuration is an InputError (exit 2) naming the file, the context and
the field.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from canarist.backends.files import read_bytes_bounded, read_text_bounded
from canarist.core.errors import InputError
from canarist.core.yamltext import load_yaml

Obj = dict[str, Any]

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_PATH_FIELDS = {"cluster": ("certificate-authority",),
                "user": ("client-certificate", "client-key", "tokenFile")}


@dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig `user.exec`: a command that prints an ExecCredential."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    api_version: str = EXEC_API_VERSIONS[0]
    install_hint: str = ""
    provide_cluster_info: bool = False


@dataclass(frozen=True)
class Credentials:
    """How requests authenticate; any combination client-go would send."""

    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    """Read again for every request: projected ServiceAccount tokens rotate."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_cert: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)
    exec_plugin: ExecPlugin | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """One API server, the TLS rules to reach it, and the credentials to send."""

    server: str
    """scheme://host[:port][/path prefix]"""
    source: str
    """Where this came from, for messages: `kubeconfig PATH (context NAME)`."""
    namespace: str = "default"
    ca_data: bytes | None = field(default=None, repr=False)
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    credentials: Credentials = Credentials()


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> ClusterConfig:
    """The configuration from the kubeconfig given, `$KUBECONFIG`, `~/.kube/config` or the
    pod's ServiceAccount, in that order."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is None:
        home = Path.home() / ".kube" / "config"
        if home.is_file():
            path = str(home)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            if context:
                raise InputError(f"--context {context}: no kubeconfig to find it in (running "
                                 "in-cluster)")
            return in_cluster()
        else:
            raise InputError("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, "
                             "or create ~/.kube/config")
    files = [p for p in path.split(os.pathsep) if p]
    present = [Path(p).expanduser() for p in files if Path(p).expanduser().is_file()]
    missing = [p for p in files if not Path(p).expanduser().is_file()]
    if kubeconfig and missing:
        raise InputError(f"kubeconfig {missing[0]}: no such file")
    if not present:
        raise InputError(f"kubeconfig {path}: no such file")
    return resolve(merge([read_kubeconfig(p) for p in present]), context, f"kubeconfig {path}")


def in_cluster(account: Path = SERVICE_ACCOUNT) -> ClusterConfig:
    """The pod's ServiceAccount: `KUBERNETES_SERVICE_HOST`/`_PORT`, its token and CA."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = account / "token"
    if not host or not token.is_file():
        raise InputError(f"in-cluster Kubernetes configuration: {token} or "
                         "KUBERNETES_SERVICE_HOST is missing")
    try:
        namespace = (account / "namespace").read_text().strip() or "default"
    except OSError:
        namespace = "default"
    ca = account / "ca.crt"
    ca_data = read_bytes_bounded(ca, name=str(ca)) if ca.is_file() else None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return ClusterConfig(server=server, source="in-cluster configuration", namespace=namespace,
                         ca_data=ca_data, credentials=Credentials(token_file=token))


# -- reading and merging files ----------------------------------------------------------------

@dataclass
class Merged:
    """Named clusters, users and contexts from one or more kubeconfig files."""

    clusters: dict[str, Obj] = field(default_factory=dict)
    users: dict[str, Obj] = field(default_factory=dict)
    contexts: dict[str, Obj] = field(default_factory=dict)
    current_context: str = ""


def read_kubeconfig(path: Path) -> Merged:
    """One file's named entries, file paths in them made absolute."""
    source = f"kubeconfig {path}"
    try:
        text = read_text_bounded(path, name=source)
    except OSError as error:
        raise InputError(f"{source}: cannot read it ({error.strerror or error})") from None
    doc = load_yaml(text, source=source)
    if doc is None:
        return Merged()
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a mapping with clusters, users and contexts")
    found = Merged(current_context=_optional_str(doc, "current-context", source) or "")
    for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        entries = doc.get(section) or []
        if not isinstance(entries, list):
            raise InputError(f"{source}: {section}: expected a list")
        named: dict[str, Obj] = getattr(found, section)
        for index, entry in enumerate(entries):
            at = f"{source}: {section}[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise InputError(f"{at}: expected a mapping with a name")
            body = entry.get(inner) or {}
            if not isinstance(body, dict):
                raise InputError(f"{at}.{inner}: expected a mapping")
            named.setdefault(entry["name"], _absolute_paths(body, inner, path.parent, at))
    return found


def merge(files: list[Merged]) -> Merged:
    """kubectl's rule for a KUBECONFIG list: the first file to set a name or value wins."""
    merged = Merged()
    for found in files:
        for section in ("clusters", "users", "contexts"):
            target: dict[str, Obj] = getattr(merged, section)
            for name, body in getattr(found, section).items():
                target.setdefault(name, body)
        merged.current_context = merged.current_context or found.current_context
    return merged


def _absolute_paths(body: Obj, inner: str, base: Path, at: str) -> Obj:
    fixed = dict(body)
    for key in _PATH_FIELDS.get(inner, ()):
        value = _optional_str(fixed, key, f"{at}.{inner}")
        if value:
            if "\0" in value:
                raise InputError(f"{at}.{inner}: {key}: a file name cannot hold a NUL character")
            try:
                fixed[key] = str(base / Path(value).expanduser())
            except RuntimeError:  # ~user of no known user
                raise InputError(f"{at}.{inner}: {key}: {value[:80]}: no such user's home") from None
    plugin = fixed.get("exec")
    if inner == "user" and isinstance(plugin, dict):
        command = plugin.get("command")
        if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
            fixed["exec"] = {**plugin, "command": str(base / command)}
    return fixed


# -- from a context to a configuration --------------------------------------------------------

def resolve(merged: Merged, context: str | None, where: str) -> ClusterConfig:
    """The cluster and user the context (or `current-context`) names; `where` names the
    file(s) in messages."""
    name = context or merged.current_context
    if not name:
        raise InputError(f"{where}: no current-context is set; pass --context")
    chosen = merged.contexts.get(name)
    if chosen is None:
        known = ", ".join(sorted(merged.contexts)[:10]) or "none"
        raise InputError(f"{where}: context {name} not found (contexts: {known})")
    at = f"{where}: context {name}"
    cluster_name = _optional_str(chosen, "cluster", at) or ""
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise InputError(f"{at}: cluster {cluster_name or '(none)'} not found")
    user_name = _optional_str(chosen, "user", at) or ""
    user = merged.users.get(user_name) if user_name else {}
    if user is None:
        raise InputError(f"{at}: user {user_name} not found")
    cluster_at, user_at = f"{at}: cluster {cluster_name}", f"{at}: user {user_name}"
    ca_data = _pem(cluster, "certificate-authority", cluster_at)
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise InputError(f"{cluster_at}: insecure-skip-tls-verify: expected true or false")
    if insecure and ca_data:
        raise InputError(f"{cluster_at}: insecure-skip-tls-verify cannot be set with a "
                         "certificate-authority; remove one")
    return ClusterConfig(
        server=_server(cluster, cluster_at),
        source=f"{where} (context {context})" if context else where,
        namespace=_optional_str(chosen, "namespace", at) or "default",
        ca_data=ca_data,
        insecure=insecure,
        tls_server_name=_server_name(cluster, cluster_at),
        proxy_url=_proxy(cluster, cluster_at),
        credentials=_credentials(user, user_at),
    )


def _server(cluster: Obj, at: str) -> str:
    server = _optional_str(cluster, "server", at)
    if not server:
        raise InputError(f"{at}: server: expected the API server's URL")
    if not _is_http_url(server):
        raise InputError(f"{at}: server: expected https://host[:port], got {server[:200]}")
    return server.rstrip("/")


def _proxy(cluster: Obj, at: str) -> str | None:
    proxy = _optional_str(cluster, "proxy-url", at)
    if proxy and not _is_http_url(proxy):
        raise InputError(f"{at}: proxy-url: expected http://host:port (socks proxies are not "
                         "supported)")
    return proxy or None


def _server_name(cluster: Obj, at: str) -> str | None:
    name = _optional_str(cluster, "tls-server-name", at)
    if name and not _is_host_name(name):
        raise InputError(f"{at}: tls-server-name: expected a host name, got {name[:100]}")
    return name or None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and port != 0 and url.isprintable()
            and " " not in url and _is_host_name(parts.hostname or ""))


def _is_host_name(name: str) -> bool:
    """A name or address a socket can be opened to (and a certificate checked for)."""
    if not name or not name.isprintable() or " " in name:
        return False
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


def _credentials(user: Obj, at: str) -> Credentials:
    if user.get("auth-provider"):
        provider = user["auth-provider"]
        kind = provider.get("name", "?") if isinstance(provider, dict) else "?"
        raise InputError(f"{at}: auth-provider {kind} is not supported; use an exec credential "
                         "plugin (kubelogin, gke-gcloud-auth-plugin) instead")
    token_file = _optional_str(user, "tokenFile", at)
    token = _optional_str(user, "token", at) or None
    if token is not None and not (token.isascii() and token.isprintable()):
        raise InputError(f"{at}: token: expected printable ASCII")
    return Credentials(
        token=token.strip() if token else None,
        token_file=Path(token_file) if token_file else None,
        username=_optional_str(user, "username", at),
        password=_optional_str(user, "password", at),
        client_cert=_pem(user, "client-certificate", at),
        client_key=_pem(user, "client-key", at),
        exec_plugin=_exec_plugin(user.get("exec"), f"{at}: exec"),
    )


def _exec_plugin(plugin: Any, at: str) -> ExecPlugin | None:
    if plugin is None:
        return None
    if not isinstance(plugin, dict):
        raise InputError(f"{at}: expected a mapping with apiVersion and command")
    api_version = _optional_str(plugin, "apiVersion", at)
    if api_version not in EXEC_API_VERSIONS:
        raise InputError(f"{at}.apiVersion: expected one of {', '.join(EXEC_API_VERSIONS)}, "
                         f"got {str(api_version)[:80]}")
    command = _optional_str(plugin, "command", at)
    if not command or "\0" in command:
        raise InputError(f"{at}.command: expected the plugin's command")
    args = plugin.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) and "\0" not in a for a in args):
        raise InputError(f"{at}.args: expected a list of strings")
    env = plugin.get("env") or []
    if not isinstance(env, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"]
            and isinstance(e.get("value"), str) and "=" not in e["name"]
            and "\0" not in e["name"] + e["value"] for e in env):
        raise InputError(f"{at}.env: expected a list of {{name, value}} strings")
    if plugin.get("interactiveMode") == "Always":
        raise InputError(f"{at}.interactiveMode: Always needs a terminal, and canarist asks for "
                         "credentials without one; use a plugin mode that does not prompt")
    return ExecPlugin(command=command, args=tuple(args),
                      env=tuple((e["name"], e["value"]) for e in env), api_version=api_version,
                      install_hint=_optional_str(plugin, "installHint", at) or "",
                      provide_cluster_info=plugin.get("provideClusterInfo") is True)


def _pem(body: Obj, key: str, at: str) -> bytes | None:
    """`KEY-data` (base64 PEM) or the file `KEY` names."""
    data = _optional_str(body, f"{key}-data", at)
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{at}: {key}-data: expected base64-encoded PEM") from None
    path = _optional_str(body, key, at)
    if not path:
        return None
    try:
        return read_bytes_bounded(path, name=f"{at}: {key}")
    except ValueError:
        raise InputError(f"{at}: {key}: a file name cannot hold a NUL character") from None
    except OSError as error:
        raise InputError(f"{at}: {key}: cannot read {path} ({error.strerror or error})") from None


def _optional_str(body: Obj, key: str, at: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{at}: {key}: expected a string")
