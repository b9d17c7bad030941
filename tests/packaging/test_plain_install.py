"""`pip install canarist` with no extras, in a fresh virtualenv, as a CI job or the image does.

The package is installed from this repository with the machine's own pip configuration (its
package indexes, wheel folders and cache, as scripts/setup installs), then used for real: a
load test against a local HTTP server, its reports, `k launch --dry`, and the one-line
messages of the parts that need an extra. The virtualenv's size is measured and held to the
figure docs/install.md records.
"""

from __future__ import annotations

import os
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.servers.http_target import ThreadedHttpTarget

ROOT = Path(__file__).parents[2]

# Measured: `du -sm` of the fresh virtualenv (pip and setuptools included). docs/install.md
# records the figure (288 MB); the limit is the goal a plain install is held to.
SIZE_LIMIT_MB = 300

# Installed only by an extra (or by nothing at all): never by a plain install.
NOT_INSTALLED = ("plotly", "scipy", "croniter", "prometheus-client", "grpcio-tools", "kubernetes",
                 "urllib3", "requests", "oauthlib")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def tree_mb(path: Path) -> float:
    """Disk usage of `path` in MiB, as `du` counts it (blocks, each hard link once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(path):
        for name in [".", *files]:
            info = os.lstat(os.path.join(folder, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total / (1024 * 1024)


class Env:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        self.canarist = path / "bin" / "canarist"

    def run(self, *args: str | Path, cwd: Path, timeout: float = 180,
            own_home: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        if own_home:  # no kubeconfig, no state of the developer's
            env["HOME"] = str(cwd)
        return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    path = tmp_path_factory.mktemp("plain") / "venv"
    venv.create(path, with_pip=True)
    env = Env(path)
    work = tmp_path_factory.mktemp("pip")
    # pip as the machine has it set up (its indexes, wheel folders and cache), as scripts/setup
    done = env.run(env.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   ROOT, cwd=work, timeout=1200, own_home=False)
    assert done.returncode == 0, done.stderr[-3000:]
    yield env


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with ThreadedHttpTarget() as url:
        yield url


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_it_installs_canarist_from_this_tree_and_nothing_extra(plain: Env, tmp_path: Path) -> None:
    done = plain.run(plain.python, "-c", "import canarist, sys; print(canarist.__file__)",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(plain.path)), done.stdout
    listed = plain.run(plain.python, "-m", "pip", "list", "--format=freeze",
                       "--disable-pip-version-check", cwd=tmp_path)
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "canarist" in names and "numpy" in names and "matplotlib" in names
    assert not names & set(NOT_INSTALLED), sorted(names & set(NOT_INSTALLED))


def test_its_size_stays_within_the_recorded_figure(plain: Env) -> None:
    size = tree_mb(plain.path)
    print(f"plain install: {size:.0f} MiB in {plain.path}")
    assert 100 < size < SIZE_LIMIT_MB


def test_launch_with_an_http_task_and_its_reports(plain: Env, target: str, tmp_path: Path) -> None:
    done = plain.run(plain.canarist, "launch", "--set", "tasks={http,assess}",
                     "--set", f"http.url={target}/", "--set", "http.numRequests=20",
                     "--set", "http.qps=100", "--set", "assess.SLOs.upper.http/error-count=0",
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "experiment.yaml").is_file()
    assert plain.run(plain.canarist, "assert", "-c", "completed,nofailure,slos",
                     cwd=tmp_path).returncode == 0
    text = plain.run(plain.canarist, "report", cwd=tmp_path)
    assert text.returncode == 0 and "http/latency-mean" in text.stdout, text.stderr
    html = plain.run(plain.canarist, "report", "-o", "html", cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    assert html.stdout.lstrip().startswith("<!DOCTYPE html>") and "<svg" in html.stdout


def test_k_launch_dry_without_a_cluster(plain: Env, target: str, tmp_path: Path) -> None:
    done = plain.run(plain.canarist, "k", "launch", "--dry", "--set", "tasks={http}",
                     "--set", f"http.url={target}/", "--set", "runner=job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dry run complete" in done.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all((tmp_path / "manifest.yaml").read_text())]
    assert kinds == ["Secret", "ServiceAccount", "Role", "RoleBinding", "Job"]


@pytest.mark.parametrize("command", [["sandbox", "status"], ["sandbox", "up"], ["demo"]])
def test_the_sandbox_says_to_install_its_extra(plain: Env, tmp_path: Path,
                                              command: list[str]) -> None:
    done = plain.run(plain.canarist, *command, cwd=tmp_path)
    assert done.returncode == 2
    line = error_line(done)
    assert line.startswith(f"Error: canarist {command[0]} needs canarist[sandbox], which is not "
                           "installed"), line
    assert line.endswith("install it with: pip install 'canarist[sandbox]'"), line
    assert not (tmp_path / ".canarist").exists()


def test_the_help_still_lists_the_sandbox(plain: Env, tmp_path: Path) -> None:
    done = plain.run(plain.canarist, "--help", cwd=tmp_path)
    assert done.returncode == 0 and "sandbox" in done.stdout and "demo" in done.stdout


def test_a_proto_to_compile_says_to_install_its_extra(plain: Env, tmp_path: Path) -> None:
    proto = tmp_path / "echo.proto"
    proto.write_text('syntax = "proto3";\npackage echo;\nmessage M { string s = 1; }\n'
                     "service E { rpc Say(M) returns (M); }\n")
    done = plain.run(plain.canarist, "launch", "--set", "tasks={grpc}",
                     "--set", "grpc.host=127.0.0.1:1", "--set", "grpc.call=echo.E.Say",
                     "--set", f"grpc.proto={proto}", "--set", "grpc.total=1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    line = error_line(done)
    assert "proto: compiling" in line and "needs canarist[proto]" in line, line
    assert line.endswith("pip install 'canarist[proto]'"), line


def test_the_shipped_v2_proto_needs_no_compiler(plain: Env, tmp_path: Path) -> None:
    """Without `proto`, KServe V2 calls use the descriptors canarist ships compiled."""
    done = plain.run(plain.python, "-c",
                     "from canarist.backends.loadgen import grpc_schema as g; "
                     "m = g.load_method_from_proto(g.SHIPPED_INFERENCE_PROTO, "
                     "'inference.GRPCInferenceService.ModelInfer'); "
                     "print(m.path, m.request_class.DESCRIPTOR.full_name)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["/inference.GRPCInferenceService/ModelInfer",
                                   "inference.ModelInferRequest"]
