"""Which Python runs the KServe model servers.

kserve pins protobuf and grpcio below canarist's, so it usually lives in its own virtualenv.
The first that can import both `kserve` and `sklearn` wins:

1. `--kserve-python` (or `CANARIST_KSERVE_PYTHON`);
2. the interpreter running canarist;
3. `.venv-kserve/bin/python` beside canarist's source tree or beside its virtualenv.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from canarist.core.errors import UnavailableError

ENV = "CANARIST_KSERVE_PYTHON"
PROBE = ("import importlib.util as u, sys; "
         "sys.exit(0 if u.find_spec('kserve') and u.find_spec('sklearn') else 1)")
INSTALL_HINT = ("python3 -m venv .venv-kserve && .venv-kserve/bin/pip install kserve scikit-learn, "
                "then pass --kserve-python .venv-kserve/bin/python (or set CANARIST_KSERVE_PYTHON)")


def can_serve(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", PROBE], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _here_has_kserve() -> bool:
    return bool(importlib.util.find_spec("kserve") and importlib.util.find_spec("sklearn"))


def _beside() -> list[Path]:
    package = Path(__file__).resolve().parents[2]  # src/ in a source tree
    places = [package.parent, Path(sys.prefix).resolve().parent]
    return [place / ".venv-kserve" / "bin" / "python" for place in places]


def find_kserve_python(explicit: str | None = None) -> str:
    """The interpreter for model servers, or UnavailableError saying how to install one."""
    chosen = explicit or os.environ.get(ENV)
    if chosen:
        if not can_serve(chosen):
            raise UnavailableError(f"--kserve-python {chosen}: cannot import kserve and sklearn; "
                                   f"install them with: {INSTALL_HINT}")
        return chosen
    if _here_has_kserve():
        return sys.executable
    for candidate in _beside():
        if candidate.exists() and can_serve(str(candidate)):
            return str(candidate)
    raise UnavailableError(f"kserve is not installed for the sandbox's model servers: {INSTALL_HINT}")
