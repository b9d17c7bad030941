"""`canarist sandbox up|down|status|apply|delete`: the local KServe sandbox."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from canarist.backends.clock import poll
from canarist.core.errors import InputError, UnavailableError
from canarist.sandbox import interpreter, prometheus
from canarist.sandbox.client import SandboxApi, load_manifests
from canarist.sandbox.processes import stop
from canarist.sandbox.revisions import tail
from canarist.sandbox.state import StateDir, cmdline, pid_alive
from canarist.sandbox.supervisor import Ports, check_ports

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def _dir_option(func: Any) -> Any:
    return click.option("--dir", "state_dir", default=None, metavar="DIR", envvar="CANARIST_SANDBOX_DIR",
                        type=click.Path(file_okay=False, path_type=Path),
                        help="State directory  [env: CANARIST_SANDBOX_DIR; default: "
                             "~/.canarist/sandbox]")(func)


@click.group(name="sandbox")
def sandbox() -> None:
    """A local KServe sandbox: InferenceServices, ingress, Prometheus, a Kubernetes API."""


PORT_MODES = ("default", "auto")
PORT = click.IntRange(0, 65535)


@sandbox.command()
@_dir_option
@click.option("--ports", "port_mode", default="default", show_default=True,
              type=click.Choice(PORT_MODES),
              help="auto: a free port on 127.0.0.1 for every part whose own port flag is not "
                   "given; the ports chosen are printed.")
@click.option("--http-port", type=PORT, default=8080, show_default=True,
              help="Ingress HTTP port (0: a free port).")
@click.option("--grpc-port", type=PORT, default=8081, show_default=True,
              help="Ingress gRPC port (0: a free port).")
@click.option("--metrics-port", type=PORT, default=9091, show_default=True,
              help="Port of the ingress's queue-proxy metrics (/metrics) (0: a free port).")
@click.option("--prometheus-port", type=PORT, default=9090, show_default=True,
              help="Prometheus port (0: a free port).")
@click.option("--api-port", type=PORT, default=6443, show_default=True,
              help="Kubernetes API port (0: a free port).")
@click.option("--kserve-python", default=None, metavar="PYTHON",
              help="Interpreter with kserve and scikit-learn  [env: CANARIST_KSERVE_PYTHON]")
@click.option("--foreground", is_flag=True, help="Run attached until Ctrl-C.")
@click.pass_context
def up(ctx: click.Context, state_dir: Path | None, port_mode: str, http_port: int,
       grpc_port: int, metrics_port: int, prometheus_port: int, api_port: int,
       kserve_python: str | None, foreground: bool) -> None:
    """Start the sandbox (detached unless --foreground) and print its endpoints."""
    state = StateDir.at(state_dir)
    ports = Ports(http_port, grpc_port, metrics_port, prometheus_port, api_port)
    if port_mode == "auto":
        given = {part for part in ports.parts()
                 if ctx.get_parameter_source(f"{part}_port") is ParameterSource.COMMANDLINE}
        ports = Ports(**{part: port if part in given else 0
                         for part, port in ports.parts().items()})
    if state.locked():
        raise InputError(_already_running(state))
    check_ports(ports)
    binary = prometheus.find_binary()
    python = interpreter.find_kserve_python(kserve_python)
    show = functools.partial(_print_ready, picked=[p for p, n in ports.parts().items() if n == 0])
    if foreground:
        _run_foreground(state, ports, python, binary, show)
    else:
        _run_detached(state, ports, python, show)


def _already_running(state: StateDir) -> str:
    data = state.read() or {}
    pid = f" (pid {data['pid']})" if data.get("pid") else ""
    return (f"a sandbox is already running in {state.path}{pid}; "
            f"stop it with: canarist sandbox down --dir {state.path}")


def _run_foreground(state: StateDir, ports: Ports, python: str, binary: str,
                    show: Callable[[dict[str, Any]], None]) -> None:
    from canarist.sandbox.supervisor import Config, run

    lock = state.lock()
    if lock is None:
        raise InputError(_already_running(state))
    try:
        code = run(Config(state, ports, python, binary), on_ready=show)
    finally:
        lock.close()
    if code != 0:
        data = state.read() or {}
        raise UnavailableError(data.get("error") or "the sandbox could not start")


def _run_detached(state: StateDir, ports: Ports, python: str,
                  show: Callable[[dict[str, Any]], None]) -> None:
    state.create()
    state.state_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", "canarist.cli.sandbox", "up", "--foreground",
            "--dir", str(state.path), "--kserve-python", python]
    for flag, port in ports.named().items():
        args += [flag, str(port)]
    with state.supervisor_log.open("ab") as log:
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, cwd=state.path)

    def started() -> dict[str, Any] | None:
        data = state.read() or {}
        if data.get("pid") == child.pid and data.get("phase") == "ready":
            return data
        if data.get("pid") == child.pid and data.get("phase") == "failed":
            child.wait(STOP_TIMEOUT_S)
            raise UnavailableError(data.get("error") or "the sandbox could not start")
        if child.poll() is not None:
            raise UnavailableError(f"the sandbox exited with code {child.returncode}: "
                                   f"{_last_error(state.supervisor_log)}")
        return None

    ready = poll(started, timeout_s=START_TIMEOUT_S, interval_s=0.1)
    if ready is not None:
        show(ready)
        return
    _stop_pid(child.pid)
    raise UnavailableError(f"the sandbox was not ready within {START_TIMEOUT_S:g}s; "
                           f"see {state.supervisor_log}")


def _last_error(log: Path) -> str:
    lines = [line for line in tail(log, 5).split(" | ") if line]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors[-1] if errors else (lines[-1] if lines else "no output")).removeprefix("Error: ")


def _print_ready(data: dict[str, Any], picked: list[str]) -> None:
    """The endpoints; first, the ports picked for parts asked for port 0 (`--ports auto`)."""
    endpoints = data.get("endpoints", {})
    click.echo(f"sandbox ready in {data.get('dir', '')} (pid {data.get('pid')})")
    ports = data.get("ports", {})
    if picked:
        click.echo("  ports picked    " + "  ".join(f"{part} {ports.get(part, '?')}"
                                                  for part in picked))
    rows = [("ingress http", f"http://{endpoints.get('http', '')}  "
             "(Host: <name>.<namespace>.example.com)"),
            ("ingress grpc", endpoints.get("grpc", "")),
            ("metrics", endpoints.get("metrics", "")),
            ("prometheus", endpoints.get("prometheus", "")),
            ("kubernetes api", endpoints.get("api", "")),
            ("kubeconfig", data.get("kubeconfig", ""))]
    for name, value in rows:
        click.echo(f"  {name:<15} {value}")


@sandbox.command()
@_dir_option
def down(state_dir: Path | None) -> None:
    """Stop the sandbox and every process it started."""
    state = StateDir.at(state_dir)
    data = state.read()
    if data is None and not state.locked():
        click.echo(f"no sandbox is running in {state.path}")
        return
    data = data or {}
    recorded = [p for p in data.get("processes", []) if isinstance(p.get("pid"), int)]
    supervisor = data.get("pid")
    if isinstance(supervisor, int) and pid_alive(supervisor):
        _stop_pid(supervisor)
    leftovers = 0
    for proc in recorded:
        pid = proc["pid"]
        if pid != supervisor and pid_alive(pid) and _ours(proc, cmdline(pid)):
            leftovers += 1
            _stop_pid(pid)
    state.state_file.unlink(missing_ok=True)
    click.echo(f"sandbox stopped ({len(recorded)} processes)"
               + (f"; {leftovers} left behind had to be stopped" if leftovers else ""))


def _ours(proc: dict[str, Any], command: str) -> bool:
    role = proc.get("role")
    if role == "model-server":
        return "modelserver.py" in command
    if role == "prometheus":
        return "prometheus" in command
    return False


def _stop_pid(pid: int) -> None:
    stop(pid, exited=lambda: not pid_alive(pid), grace_s=STOP_TIMEOUT_S)


@sandbox.command()
@_dir_option
@click.option("-o", "--output", "output_format", default="text", show_default=True,
              type=click.Choice(["text", "json"]), help="Output format.")
def status(state_dir: Path | None, output_format: str) -> None:
    """Show each InferenceService, its revisions (and the faults they inject), traffic split,
    processes and ports."""
    state = StateDir.at(state_dir)
    data = state.read()
    if data is None or not isinstance(data.get("pid"), int) or not pid_alive(data["pid"]):
        raise UnavailableError(f"no sandbox is running in {state.path}; start it with: "
                               "canarist sandbox up" + (f" --dir {state.path}" if state_dir else ""))
    for proc in data.get("processes", []):
        proc["alive"] = pid_alive(int(proc["pid"]))
    if output_format == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(render_status(data))


def render_status(data: dict[str, Any]) -> str:
    endpoints = data.get("endpoints", {})
    lines = [f"sandbox {data.get('phase', '')} in {data.get('dir', '')} (pid {data.get('pid')}, "
             f"since {data.get('started', '')})",
             "  " + "  ".join(f"{k}={v}" for k, v in sorted(endpoints.items())), ""]
    services = data.get("services", [])
    if not services:
        lines.append("no InferenceServices; apply one with: canarist sandbox apply -f FILE")
    for svc in services:
        reason = f"  ({svc['reason']}: {svc['message']})" if svc.get("reason") else ""
        lines.append(f"{svc['namespace']}/{svc['name']}  Ready={svc['ready']}  "
                     f"{svc.get('url') or '-'}{reason}")
        traffic = {t["revisionName"]: t for t in svc.get("traffic", [])}
        lines.append(f"  {'REVISION':<44} {'STATE':<8} {'TRAFFIC':>7}  {'TAG':<7} MODEL")
        for rev in svc.get("revisions", []):
            target = traffic.get(rev["name"])
            share = f"{target['percent']}%" if target else "-"
            tag = (target or {}).get("tag", "") or "-"
            lines.append(f"  {rev['name']:<44} {rev['state']:<8} {share:>7}  {tag:<7} "
                         f"{rev['storageUri']}")
            if rev["state"] == "Failed":
                lines.append(f"    {rev['reason']}: {rev['message']}")
            faults = _faults(rev.get("faults") or {})
            if faults:
                lines.append(f"    faults: {faults}")
        lines.append("")
    lines.append(f"{'PROCESS':<14} {'PID':>7}  {'ALIVE':<5}  PORTS")
    for proc in data.get("processes", []):
        if proc["role"] == "model-server":
            ports = f"http {proc['http_port']}  grpc {proc['grpc_port']}  {proc['namespace']}/" \
                    f"{proc['revision']}{'' if proc['ready'] else '  (starting)'}"
        else:
            ports = str(proc.get("port", "")) if proc.get("port") else ""
        lines.append(f"{proc['role']:<14} {proc['pid']:>7}  {'yes' if proc.get('alive') else 'no':<5}  "
                     f"{ports}".rstrip())
    return "\n".join(lines)


def _faults(faults: dict[str, Any]) -> str:
    """`added latency 200 ms, error rate 0.2`: what a revision injects, from its annotations."""
    parts = []
    if faults.get("addedLatencyMs"):
        parts.append(f"added latency {faults['addedLatencyMs']:g} ms")
    if faults.get("errorRate"):
        parts.append(f"error rate {faults['errorRate']:g}")
    return ", ".join(parts)


@sandbox.command()
@_dir_option
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE|-",
              help="Manifest file (YAML or JSON), or - for stdin; repeatable.")
@click.option("-n", "--namespace", default="default", show_default=True,
              help="Namespace for manifests that name none.")
@click.option("--wait", is_flag=True,
              help="Wait until each InferenceService is Ready with its newest revision.")
@click.option("--timeout", default=180.0, show_default=True, metavar="SECONDS",
              help="How long --wait waits.")
def apply(state_dir: Path | None, files: tuple[str, ...], namespace: str, wait: bool,
          timeout: float) -> None:
    """Create or update InferenceServices in the sandbox (through its Kubernetes API)."""
    state = StateDir.at(state_dir)
    docs = []
    for source in files:
        if source == "-":
            text, name = sys.stdin.read(), "<stdin>"
        else:
            try:
                text, name = Path(source).read_text(encoding="utf-8"), source
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"-f {source}: cannot read: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
        docs.extend(load_manifests(text, name))
    _require_running(state, state_dir)
    with SandboxApi(state.kubeconfig) as api:
        for doc in docs:
            click.echo(api.apply(doc, namespace))
        if wait:
            deadline = time.monotonic() + timeout
            for doc in docs:
                ns, name = doc["metadata"].get("namespace") or namespace, doc["metadata"]["name"]
                api.wait_ready(ns, name, max(0.0, deadline - time.monotonic()))
                click.echo(f"inferenceservice.serving.kserve.io/{name} ready")


@sandbox.command()
@_dir_option
@click.argument("name")
@click.option("-n", "--namespace", default="default", show_default=True,
              help="Namespace of the InferenceService.")
@click.option("--timeout", default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for its model servers to stop.")
def delete(state_dir: Path | None, name: str, namespace: str, timeout: float) -> None:
    """Delete the InferenceService NAME (through the sandbox's Kubernetes API).

    Its revisions' model servers stop and its hosts leave the ingress; the command returns
    once those processes have ended.
    """
    state = StateDir.at(state_dir)
    _require_running(state, state_dir)
    servers = [p["pid"] for p in (state.read() or {}).get("processes", [])
               if p.get("role") == "model-server" and p.get("namespace") == namespace
               and p.get("isvc") == name and isinstance(p.get("pid"), int)]
    with SandboxApi(state.kubeconfig) as api:
        click.echo(api.delete(namespace, name))
    left = poll(lambda: [pid for pid in servers if pid_alive(pid)], done=lambda alive: not alive,
                timeout_s=timeout, interval_s=0.1)
    if left:
        raise UnavailableError(f"{namespace}/{name} was deleted but its model servers (pid "
                               f"{' '.join(map(str, left))}) did not stop within {timeout:g}s; "
                               f"see {state.logs}")


def _require_running(state: StateDir, state_dir: Path | None) -> None:
    if not state.locked():
        raise UnavailableError(f"no sandbox is running in {state.path}; start it with: "
                               "canarist sandbox up" + (f" --dir {state.path}" if state_dir else ""))


def main(argv: list[str] | None = None) -> None:
    """`python -m canarist.cli.sandbox ...`: the same as `canarist sandbox ...`."""
    from canarist.cli import app
    from canarist.cli import main as canarist_main

    if "sandbox" not in app.cli.commands:
        app.cli.add_command(sandbox)
    canarist_main(["sandbox", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
