"""A test certificate authority (made with the openssl command) and an HTTPS server that
asks for client certificates and answers with what it saw: the client certificate's common
name and the Authorization header."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for localhost/127.0.0.1/kube.internal, a client's."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def data(self, name: str) -> bytes:
        return self.path(name).read_bytes()


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "the tests need the openssl command (apt-get install openssl)"
    done = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
    _openssl("req", "-x509", *ec, "-keyout", str(directory / "ca.key"),
             "-out", str(directory / "ca.crt"), "-subj", "/CN=test-ca")
    for name, subject, extra in (
            ("server", "/CN=kube.internal",
             "subjectAltName=DNS:localhost,DNS:kube.internal,IP:127.0.0.1"),
            ("client", "/CN=alice", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-x509", *ec, "-keyout", str(directory / f"{name}.key"),
                 "-out", str(directory / f"{name}.crt"), "-subj", subject,
                 "-CA", str(directory / "ca.crt"), "-CAkey", str(directory / "ca.key"),
                 "-addext", extra)
    return Pki(directory)


class _Echo(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        peer = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        subject = dict(pair[0] for pair in (peer or {}).get("subject", ()))
        answer = {"cn": subject.get("commonName", ""),
                  "authorization": self.headers.get("Authorization", ""),
                  "path": self.path}
        self.seen.append(answer)
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_server(pki: Pki, *, client_certs: bool = True) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(https://127.0.0.1:PORT, the requests it answered)."""
    seen: list[dict[str, str]] = []
    handler = type("Echo", (_Echo,), {"seen": seen})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.path("server.crt")), str(pki.path("server.key")))
    if client_certs:
        context.load_verify_locations(str(pki.path("ca.crt")))
        context.verify_mode = ssl.CERT_OPTIONAL
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
