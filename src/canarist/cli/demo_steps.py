"""What every `canarist demo` scenario does the same way: narrate, run canarist commands as a
user types them (showing each first), and find the sandbox's ingress."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
from pathlib import Path

import click

from canarist.core.errors import UnavailableError
from canarist.sandbox.state import StateDir

HOST = "sklearn-iris.default.example.com"
MANIFEST_V1 = """apiVersion: "serving.kserve.io/v1beta1"
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
"""The tutorial's InferenceService: revision 00001, the baseline of every scenario."""
PREDICTION = b'{"instances": [[6.8,  2.8,  4.8,  1.4], [6.0,  3.4,  4.5,  1.6]]}'


def say(text: str) -> None:
    click.secho(f"\n==> {text}", fg="cyan", err=True)


def show(command: str) -> None:
    """Print a command the way the demo prints the ones it runs."""
    click.secho(f"$ {command}", bold=True, err=True)


def canarist(*args: str, stdin: str | None = None, stdout: Path | None = None) -> int:
    """Run one canarist command as a user would, showing it first. Exit 0 and 1 are
    outcomes the demo reads on; anything else stops it."""
    shown = "canarist " + " ".join(shlex.quote(a) for a in args)
    show(shown)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(stdout.open("w")) if stdout else None
        done = subprocess.run([sys.executable, "-m", "canarist", *args], input=stdin, text=True,
                              stdout=out, check=False)
    if done.returncode not in (0, 1):
        raise UnavailableError(f"demo step failed (exit {done.returncode}): {shown}")
    return done.returncode


def ingress(state: Path) -> str:
    """host:port of the sandbox's HTTP ingress, as `sandbox up` recorded it."""
    endpoint = ((StateDir.at(state).read() or {}).get("endpoints") or {}).get("http")
    if not endpoint:
        raise UnavailableError(f"the sandbox in {state} recorded no ingress endpoint")
    return str(endpoint)
