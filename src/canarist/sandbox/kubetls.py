"""A self-signed certificate for the sandbox's API, so clients that only send bearer tokens
over TLS (kubectl, client-go) can use it. Made with the `openssl` command."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServingCert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def ca_data(self) -> bytes:
        """The certificate (PEM), to trust as the cluster's certificate authority."""
        return self.cert.read_bytes()


def self_signed(directory: Path, host: str = "127.0.0.1", days: int = 365) -> ServingCert:
    """A P-256 key and a self-signed certificate for `host` (and localhost) in `directory`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("serving the API over TLS needs the openssl command")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "apiserver.crt", directory / "apiserver.key"
    names = ["DNS:localhost", "IP:127.0.0.1"]
    if host not in ("127.0.0.1", "localhost", ""):
        names.append(f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}")
    done = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
         "-subj", "/CN=canarist-sandbox", "-addext", f"subjectAltName={','.join(names)}"],
        capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl could not make a certificate: {done.stderr.strip()[-300:]}")
    key.chmod(0o600)
    return ServingCert(cert, key)
