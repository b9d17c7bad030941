"""Every command in README.md and docs/ runs, typed as a user types it, against the sandbox.

Each page runs top to bottom in a fresh working directory: the files it shows are written,
then its `shell` blocks run in bash with `canarist` on PATH, and each must end with the exit
code the page expects (see `pages.py`). The only changes to what a page says are the ports
of the sandbox (a page's `localhost:8080` is the test's sandbox ingress, on a free port) and
HOME (so `~/.canarist/sandbox` is the test's sandbox). Pages that start a sandbox themselves
get their own; the others share one with the tutorial's InferenceService deployed (90/10
between revisions 00001 and 00002) and predictions flowing through the ingress.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.docs.pages import PAGES, REPO, shell_steps, steps
from tests.docs.receiver import Receiver, receiving

pytestmark = pytest.mark.slow

DEFAULT_PORTS = {"http": 8080, "grpc": 8081, "metrics": 9091, "prometheus": 9090, "api": 6443}
HOST = "sklearn-iris.default.example.com"
BLOCK_TIMEOUT_S = 600
_SHELL_OWN = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})  # set by bash, not by the reader
KSERVE_PYTHON = REPO / ".venv-kserve" / "bin" / "python"

TUTORIAL_V1 = """apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
"""
TUTORIAL_CANARY = TUTORIAL_V1.replace(
    "  predictor:\n", "  predictor:\n    canaryTrafficPercent: 10\n").replace(
    '1.0/model"', '1.0/model-2"')

# Web services the docs send to, played by the test's receiver.
OUTSIDE_HOSTS = ("https://hooks.slack.com", "https://hooks.example.com",
                 "https://templates.example.com")

# What each page needs that a reader would already have: (file in the working directory,
# where the test takes it from).
GIVEN: dict[str, list[tuple[str, Path]]] = {
    "docs/agreement.md": [("iris.jsonl", REPO / "docs/examples/iris.jsonl")],
    "docs/tasks.md": [("iris.jsonl", REPO / "docs/examples/iris.jsonl")],
    "docs/reports.md": [
        (name, REPO / "tests/fixtures/reports/kserve-two-versions-unavailable.yaml")
        for name in ("run/experiment.yaml", "experiment.yaml")],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Place:
    """Where a page runs: its HOME, its sandbox's ports, and the environment of its shell."""

    home: Path
    ports: dict[str, int] = field(default_factory=lambda: {k: free_port() for k in DEFAULT_PORTS})
    receiver: Receiver | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CANARIST_")}
        env["HOME"] = str(self.home)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if KSERVE_PYTHON.exists():
            env["CANARIST_KSERVE_PYTHON"] = str(KSERVE_PYTHON)
        return env

    def typed(self, commands: str) -> str:
        """The commands with the sandbox's default ports replaced by this place's, and the
        hosts of outside services by the test's receiver."""
        if self.receiver is not None:
            for host in OUTSIDE_HOSTS:
                commands = commands.replace(host, self.receiver.url)
        for name, port in DEFAULT_PORTS.items():
            commands = re.sub(rf"(?<=localhost:){port}\b|(?<=127\.0\.0\.1:){port}\b",
                              str(self.ports[name]), commands)
        flags = " ".join(f"--{name}-port {port}" for name, port in self.ports.items())
        return re.sub(r"canarist sandbox up(?![^\n]*-ports?\b)", f"canarist sandbox up {flags}",
                      commands)

    def run(self, commands: str, cwd: Path, timeout: float = BLOCK_TIMEOUT_S,
            exported: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `commands` as typed; `exported` carries what earlier blocks exported (as one
        terminal would) and is updated with what these export."""
        env = {**self.env(), **(exported or {})}
        with tempfile.NamedTemporaryFile(prefix="env-", dir=cwd, delete=False) as handle:
            saved = Path(handle.name)
        script = f"trap 'env -0 > {shlex.quote(str(saved))}' EXIT\n{self.typed(commands)}"
        try:
            done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
            if exported is not None:
                after = dict(item.split("=", 1) for item in saved.read_text().split("\0") if "=" in item)
                exported.update({k: v for k, v in after.items()
                                 if env.get(k) != v and k not in _SHELL_OWN})
        finally:
            saved.unlink(missing_ok=True)
        return done


def _traffic(port: int, stop: threading.Event) -> None:
    """The tutorial's request loop, five a second, until told to stop."""
    body = b'{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
    while not stop.wait(0.2):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/sklearn-iris:predict", data=body,
            headers={"Host": HOST, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except OSError:
            pass


@pytest.fixture(scope="session")
def shared_place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: run ./scripts/setup")
    place = Place(tmp_path_factory.mktemp("home"))
    work = tmp_path_factory.mktemp("setup")
    stop = threading.Event()
    with receiving() as receiver:
        place.receiver = receiver
        yield from _with_sandbox(place, work, stop)


def _with_sandbox(place: Place, work: Path, stop: threading.Event) -> Iterator[Place]:
    try:
        done = place.run("canarist sandbox up", work, timeout=180)
        assert done.returncode == 0, done.stderr
        for manifest in (TUTORIAL_V1, TUTORIAL_CANARY):
            done = place.run(f"canarist sandbox apply --wait -f - <<'EOF'\n{manifest}EOF\n", work)
            assert done.returncode == 0, done.stderr
        thread = threading.Thread(target=_traffic, args=(place.ports["http"], stop), daemon=True)
        thread.start()
        time.sleep(6)  # a few scrapes of traffic before the first page asks Prometheus
        yield place
    finally:
        stop.set()
        place.run("canarist sandbox down", work, timeout=120)


def _starts_its_own_sandbox(page: Path) -> bool:
    return any(s.commands and "canarist sandbox up" in s.commands for s in steps(page))


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def run_page(page: Path, place: Place, cwd: Path) -> None:
    if place.receiver is not None:
        place.receiver.files = cwd
    for target, source in GIVEN.get(_page_id(page), []):
        (cwd / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, cwd / target)
    shown = steps(page)
    exported: dict[str, str] = {}  # what the page's blocks export, as in one terminal
    for step in shown:  # a file a command names may be shown after it, as the page explains it
        if step.file is not None and not (cwd / step.file).exists():
            (cwd / step.file).parent.mkdir(parents=True, exist_ok=True)
            (cwd / step.file).write_text(place.typed(step.content))
    for step in shown:
        if step.file is not None:
            (cwd / step.file).parent.mkdir(parents=True, exist_ok=True)
            (cwd / step.file).write_text(place.typed(step.content))
            continue
        if step.not_run is not None:
            continue
        assert step.commands is not None
        done = place.run(step.commands, cwd, exported=exported)
        assert done.returncode == step.exit_code, (
            f"{step.describe()}: exit {done.returncode}, expected {step.exit_code}\n"
            f"$ {place.typed(step.commands)}\n--- stdout\n{done.stdout[-3000:]}\n"
            f"--- stderr\n{done.stderr[-3000:]}")
        assert "Traceback" not in done.stderr, f"{step.describe()}: {done.stderr[-3000:]}"
        for stream, line in step.shows:
            printed = done.stdout if stream == "stdout" else done.stderr
            assert place.typed(line) in printed, (
                f"{step.describe()}: the page shows {line!r}, the command printed:\n{printed}")


@pytest.mark.parametrize("page", [p for p in PAGES if any(s.commands for s in steps(p))],
                         ids=_page_id)
def test_every_command_on_the_page_runs(page: Path, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    if _starts_its_own_sandbox(page):
        place = Place(tmp_path / "home")
        place.home.mkdir()
        try:
            run_page(page, place, tmp_path)
        finally:
            place.run("canarist sandbox down || true", tmp_path, timeout=120)
    else:
        run_page(page, request.getfixturevalue("shared_place"), tmp_path)


def test_commands_that_do_not_run_say_why() -> None:
    skipped = [s for s in shell_steps() if s.not_run is not None]
    for step in skipped:
        assert len(step.not_run or "") > 20, f"{step.describe()}: say what it needs to run"
    assert len(skipped) <= 6, [s.describe() for s in skipped]


def test_every_page_is_covered() -> None:
    runnable = [s for s in shell_steps() if s.not_run is None]
    assert len(runnable) >= 25
    assert {s.page for s in runnable} >= {"docs/ci.md", "docs/tasks.md", "docs/ready.md",
                                          "docs/sandbox.md", "docs/custommetrics.md"}
