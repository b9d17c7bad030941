"""HTTP(S) requests to one API server, authenticated as a `ClusterConfig` says.

Standard-library `http.client` over `ssl`: canarist makes a few calls a minute, one at a
time, so a blocking client with a small pool of kept-alive connections is all it needs.
Client certificates given as data are handed to OpenSSL through an anonymous in-memory file
(Linux `memfd`), never written to disk.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from canarist.backends.kube.config import ClusterConfig
from canarist.backends.kube.errors import KubeError, KubeUnreachable
from canarist.backends.kube.exec_plugin import ExecCredentials, Issued
from canarist.core.errors import InputError
from canarist.core.limits import MAX_FILE_BYTES

Pair = tuple[bytes | None, bytes | None]
MAX_IDLE = 4


class _TLSConnection(http.client.HTTPSConnection):
    """HTTPSConnection that can check the certificate for another name (`tls-server-name`)."""

    def __init__(self, host: str, port: int, *, server_name: str | None,
                 context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self.server_name = server_name
        self.tls_context = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        name = self.server_name or getattr(self, "_tunnel_host", None) or self.host
        self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=name)


class Transport:
    """Sends one request and returns (status, body); KubeUnreachable when no answer came."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        parts = urlsplit(config.server)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        plugin = config.credentials.exec_plugin
        self.exec = ExecCredentials(plugin, config) if plugin else None
        self._contexts: dict[Pair, ssl.SSLContext] = {}
        self._idle: list[tuple[Pair, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
             timeout: float) -> tuple[int, bytes]:
        """`target` is the path and query; the server's own path prefix is put before it."""
        issued = self.exec.current() if self.exec else None
        status, data = self._send(method, target, headers, body, timeout, issued)
        if status == 401 and issued is not None and self.exec is not None:
            self.exec.rejected(issued)
            status, data = self._send(method, target, headers, body, timeout, self.exec.current())
        return status, data

    # -- one request ------------------------------------------------------------------------

    def _send(self, method: str, target: str, headers: dict[str, str], body: bytes | None,
              timeout: float, issued: Issued | None) -> tuple[int, bytes]:
        pair = self._client_pair(issued)
        headers = {**headers, **self.auth_headers(issued)}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        path = self.prefix + target
        if self.config.proxy_url and not self.tls:
            path = f"http://{self.host}:{self.port}{path}"
            headers.update(self._proxy_headers())
        connection, reused = self._connection(pair, timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(MAX_FILE_BYTES + 1)
        except (OSError, http.client.HTTPException, ValueError) as error:
            connection.close()
            if reused:  # a kept-alive connection the server had closed: once more, afresh
                return self._send(method, target, headers, body, timeout, issued)
            reason = _reason(error)
            raise KubeUnreachable(f"cannot reach the Kubernetes API server {self.config.server} "
                                  f"({self.config.source}): {reason}", status=0,
                                  detail=reason) from None
        if len(data) > MAX_FILE_BYTES:
            connection.close()
            raise KubeError(f"Kubernetes API {self.config.server}: the answer to {method} "
                            f"{target.split('?')[0]} is larger than {MAX_FILE_BYTES >> 20} MiB",
                            status=0)
        self._release(pair, connection, response)
        return response.status, data

    def _connection(self, pair: Pair, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            for index, (key, idle) in enumerate(self._idle):
                if key == pair:
                    del self._idle[index]
                    if idle.sock is not None:
                        idle.sock.settimeout(timeout)
                    return idle, True
        host, port = self.host, self.port
        proxy = urlsplit(self.config.proxy_url) if self.config.proxy_url else None
        if proxy is not None:
            host, port = proxy.hostname or "", proxy.port or (443 if proxy.scheme == "https" else 80)
        connection: http.client.HTTPConnection
        if self.tls:
            connection = _TLSConnection(host, port, server_name=self.config.tls_server_name,
                                        context=self._ssl_context(pair), timeout=timeout)
            if proxy is not None:
                connection.set_tunnel(self.host, self.port, headers=self._proxy_headers())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        return connection, False

    def _release(self, pair: Pair, connection: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        if response.will_close or not response.isclosed():
            connection.close()
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append((pair, connection))
                return
        connection.close()

    # -- credentials ------------------------------------------------------------------------

    def auth_headers(self, issued: Issued | None = None) -> dict[str, str]:
        credentials = self.config.credentials
        token = issued.token if issued and issued.token else credentials.token
        if credentials.token_file is not None and not token:
            token = _read_token(credentials.token_file, self.config.source)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if credentials.username is not None and credentials.password is not None:
            basic = f"{credentials.username}:{credentials.password}".encode()
            return {"Authorization": f"Basic {base64.b64encode(basic).decode()}"}
        return {}

    def _proxy_headers(self) -> dict[str, str]:
        proxy = urlsplit(self.config.proxy_url or "")
        if proxy.username is None:
            return {}
        basic = f"{proxy.username}:{proxy.password or ''}".encode()
        return {"Proxy-Authorization": f"Basic {base64.b64encode(basic).decode()}"}

    def _client_pair(self, issued: Issued | None) -> Pair:
        if issued is not None and issued.client_cert:
            return issued.client_cert, issued.client_key
        return self.config.credentials.client_cert, self.config.credentials.client_key

    def _ssl_context(self, pair: Pair) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get(pair)
            if context is None:
                context = self._contexts[pair] = self._new_context(pair)
            return context

    def _new_context(self, pair: Pair) -> ssl.SSLContext:
        source = self.config.source
        try:
            context = ssl.create_default_context(
                cadata=self.config.ca_data.decode("ascii", "replace") if self.config.ca_data
                else None)
        except ssl.SSLError:
            raise InputError(f"{source}: certificate-authority: expected PEM certificates"
                             ) from None
        if self.config.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert, key = pair
        if cert or key:
            if not (cert and key):
                raise InputError(f"{source}: client-certificate and client-key go together; "
                                 "one is missing")
            _load_pair(context, cert, key, source)
        return context


def _load_pair(context: ssl.SSLContext, cert: bytes, key: bytes, source: str) -> None:
    """OpenSSL reads certificates from files only: give it in-memory ones."""
    with tempfile.TemporaryDirectory(prefix="canarist-kube-") as private:
        paths, handles = [], []
        try:
            for name, data in (("cert", cert), ("key", key)):
                if hasattr(os, "memfd_create"):
                    handle = os.memfd_create(f"canarist-{name}")
                    handles.append(handle)
                    path = f"/proc/self/fd/{handle}"
                else:
                    path = str(Path(private) / name)
                    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    handles.append(handle)
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view):]
                paths.append(path)
            context.load_cert_chain(paths[0], paths[1])
        except ssl.SSLError:
            raise InputError(f"{source}: client-certificate / client-key: expected a PEM "
                             "certificate and its private key") from None
        finally:
            for handle in handles:
                os.close(handle)


def _read_token(path: Path, source: str) -> str:
    try:
        token = path.read_text(errors="replace").strip()
    except (OSError, ValueError) as error:
        raise InputError(f"{source}: tokenFile {path}: cannot read it "
                         f"({getattr(error, 'strerror', None) or error})") from None
    if not is_token(token):
        raise InputError(f"{source}: tokenFile {path}: expected one line of printable ASCII")
    return token


def is_token(text: str) -> bool:
    """A bearer token can go in a header: printable ASCII, no spaces around it."""
    return text.isascii() and text.isprintable() and text == text.strip()


def _reason(error: BaseException) -> str:
    """The useful part of a connection failure: "Connection refused", "timed out"."""
    text = str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed ({error.verify_message})"
    for marker in ("Connection refused", "timed out", "Name or service not known",
                   "No route to host", "certificate verify failed"):
        if marker in text:
            return marker
    return " ".join(text.split())[:200] or type(error).__name__
