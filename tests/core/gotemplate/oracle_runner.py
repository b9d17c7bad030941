"""Builds and runs the Go oracle (oracle/main.go): Go text/template + Sprig from Debian.

Needs the Debian packages golang-go and golang-github-masterminds-sprig-dev.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ORACLE_DIR = Path(__file__).parent / "oracle"
GOPATH = "/usr/share/gocode"
INSTALL_HINT = (
    "the Go oracle needs Go and Sprig: "
    "apt-get install -y golang-go golang-github-masterminds-sprig-dev"
)


class OracleUnavailable(RuntimeError):
    """Go or Sprig is not installed."""


@dataclass(frozen=True)
class GoResult:
    out: str | None
    error: str | None
    phase: str | None


def build_oracle() -> Path:
    """Compile the oracle once per source version; returns the binary path."""
    go = shutil.which("go")
    sprig = Path(GOPATH) / "src/github.com/Masterminds/sprig"
    if go is None or not sprig.is_dir():
        raise OracleUnavailable(INSTALL_HINT)
    src = (ORACLE_DIR / "main.go").read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:16]
    out_dir = Path(tempfile.gettempdir()) / f"canarist-gotemplate-oracle-{digest}"
    binary = out_dir / "oracle"
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOPATH": GOPATH,
        "GO111MODULE": "off",
        "GOCACHE": str(out_dir / "cache"),
        "GOFLAGS": "",
    }
    tmp = out_dir / f"oracle.{os.getpid()}"
    subprocess.run(
        [go, "build", "-o", str(tmp), "."], cwd=ORACLE_DIR, env=env, check=True,
        capture_output=True, timeout=600,
    )
    tmp.replace(binary)
    return binary


def run_oracle(cases: list[dict[str, object]]) -> list[GoResult]:
    """Run cases ({"name", "text", "data", "strict"}) through Go; TZ is UTC."""
    binary = build_oracle()
    proc = subprocess.run(
        [str(binary)], input=json.dumps(cases), capture_output=True, text=True, check=True,
        env={**os.environ, "TZ": "UTC"}, timeout=600,
    )
    return [GoResult(r.get("out"), r.get("error"), r.get("phase"))
            for r in json.loads(proc.stdout)]
