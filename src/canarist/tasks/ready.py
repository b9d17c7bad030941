"""`ready`: wait until a Kubernetes object exists and, optionally, has a condition True.

GETs `<group>/<version>/<resource>/<name>` in the namespace every second (10 % jitter) until
the object is there and, with `condition`, its `status.conditions[]` entry of that type
(matched case-insensitively) has status True (case-insensitively), or until `timeout`.
Every failure is retried, as Iter8 did; the last one is the task's failure. A missing or
not-ready object fails the experiment (exit 1); an API server that cannot be reached or
refuses the credentials means canarist could not evaluate (exit 3).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from pydantic import Field

from canarist.backends.kube import KubeClient, KubeError, KubeNotFound, Resource
from canarist.core.durations import parse_duration
from canarist.core.errors import CanaristError, TaskError, UnavailableError
from canarist.core.fields import Duration
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log

INTERVAL_S = 1.0
JITTER = 0.1


class ReadyInputs(TaskInputs):
    group: str = ""
    version: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None
    condition: str | None = None
    timeout: Duration = "10s"


class NotReady(Exception):
    """One attempt's verdict: the object is not (yet) what the task waits for."""


def check_condition(obj: dict[str, Any], condition: str) -> None:
    """Raise NotReady unless `status.conditions[]` has `condition` with status True."""
    status = obj.get("status")
    if not isinstance(status, dict) or not status:
        raise NotReady("object has no status")
    conditions = status.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise NotReady("object has no status.conditions")
    for entry in conditions:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("type")
        if not isinstance(kind, str) or not kind:
            raise NotReady("a condition in status.conditions has no type")
        if kind.lower() != condition.lower():
            continue
        value = str(entry.get("status", ""))
        if value.lower() == "true":
            return
        message = str(entry.get("message") or entry.get("reason") or "").strip()
        detail = f"condition {kind} is {value or 'not set'}"
        raise NotReady(f"{detail}: {message}" if message else detail)
    raise NotReady(f"expected condition not found: {condition}")


def attempt(client: KubeClient, target: Resource, namespace: str, inputs: ReadyInputs,
            timeout_s: float) -> None:
    """One GET and check. NotReady or a KubeError if the object is not ready."""
    try:
        obj = client.get(target, namespace, inputs.name, timeout=timeout_s)
    except KubeNotFound:
        raise NotReady("not found") from None
    if inputs.condition:
        check_condition(obj, inputs.condition)


async def run(inputs: ReadyInputs, ctx: TaskContext) -> None:
    namespace = inputs.namespace or ctx.namespace
    target = Resource(inputs.group, inputs.version, inputs.resource)
    what = target.describe(inputs.name, namespace)
    timeout_s = parse_duration(inputs.timeout, field="timeout")
    client = await asyncio.to_thread(KubeClient.connect, ctx.kubeconfig, ctx.kube_context)
    deadline = time.monotonic() + timeout_s
    tries = 0
    try:
        while True:
            tries += 1
            request_s = max(1.0, min(client.timeout, deadline - time.monotonic()))
            try:
                await asyncio.to_thread(attempt, client, target, namespace, inputs, request_s)
                log.info("%s: %s is ready", ctx.log_prefix(), what)
                return
            except NotReady as reason:
                last: CanaristError = TaskError(f"{what}: {reason}")
            except KubeError as error:
                last = error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            log.debug("%s: %s: %s; retrying", ctx.log_prefix(), what, last.message)
            pause = INTERVAL_S * (1 + random.uniform(-JITTER, JITTER))
            await asyncio.sleep(min(pause, remaining))
    finally:
        await asyncio.to_thread(client.close)
    suffix = f" (after {tries} attempt{'s' if tries != 1 else ''} in {inputs.timeout})"
    if isinstance(last, UnavailableError):
        raise UnavailableError(f"{what}: {last.message}{suffix}")
    raise TaskError(f"{last.message}{suffix}")


TASK = TaskDefinition(name="ready", inputs=ReadyInputs, run=run)
