"""`kserve`: find the versions of an InferenceService, so no revision name is typed by hand.

The chart puts this task first when `kserve.isvc` is set. Each loop it reads the
InferenceService, records the candidate (latest created revision) and the baseline (latest
rolled-out revision) with their route shares, readiness and tag hosts in `result.kserve`,
and names the versions by their revisions unless `versionNames` is set. Later tasks read
it: `custommetrics` selects each version's series by revision and measures only since the
current split began; `http` loads each version through its tag host; `assess` explains a
version without traffic by its route share; `rollout` acts on the verdict.

Once a rollout has promoted or rolled back, the versions stay the ones it judged.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import Field

from canarist.backends.kube import INFERENCE_SERVICES, KubeClient, KubeNotFound
from canarist.core.errors import InputError
from canarist.core.experiment import KServeState, KServeVersion, Result
from canarist.core.kserve import Discovery, discover, measurement_window
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log


class KServeInputs(TaskInputs):
    isvc: str = Field(min_length=1)
    namespace: str | None = None
    ingress: str | None = None
    """Where to send per-version traffic, with the version's tag host in `Host`."""


def describe(name: str, namespace: str) -> str:
    return f"kserve.isvc {name} in {namespace}"


async def read_isvc(ctx: TaskContext, name: str, namespace: str) -> dict[str, object]:
    """GET the InferenceService; a missing one is bad input (exit 2), not a failed canary."""
    client = await asyncio.to_thread(KubeClient.connect, ctx.kubeconfig, ctx.kube_context)
    try:
        return await asyncio.to_thread(client.get, INFERENCE_SERVICES, namespace, name)
    except KubeNotFound:
        raise InputError(f"{describe(name, namespace)}: no such InferenceService; check the "
                         "name and the namespace (-n)") from None
    finally:
        await asyncio.to_thread(client.close)


def _traffic_since(found: Discovery, result: Result) -> datetime | None:
    """The later of the candidate's readiness and the rollout's last change of the split."""
    times = [found.candidate_ready_since] if found.candidate_ready_since else []
    if result.rollout is not None:
        times.extend(a.time for a in result.rollout.actions
                     if a.action in ("step", "promote", "rollback") and not a.dry_run)
    return max(times) if times else None


def _pinned_versions(found: Discovery, result: Result) -> list[KServeVersion]:
    """After a rollout ended, keep judging the two revisions it judged."""
    rollout = result.rollout
    if rollout is None or not rollout.ended or not rollout.baseline:
        return list(found.versions)
    routed = {v.revision: v for v in found.versions}
    pinned = []
    for role, revision in (("candidate", rollout.candidate), ("baseline", rollout.baseline)):
        known = routed.get(revision)
        pinned.append(KServeVersion(role=role, revision=revision,
                                    percent=known.percent if known else 0,
                                    ready=known.ready if known else True,
                                    host=known.host if known else "",
                                    url=known.url if known else ""))
    return pinned


async def run(inputs: KServeInputs, ctx: TaskContext) -> None:
    namespace = inputs.namespace or ctx.namespace
    obj = await read_isvc(ctx, inputs.isvc, namespace)
    found = discover(obj, where=describe(inputs.isvc, namespace))
    result = ctx.result
    now = datetime.now(UTC)
    since = _traffic_since(found, result)
    elapsed = int((now - result.start_time).total_seconds())
    window_s = measurement_window(now, since, default_s=max(300, elapsed))
    versions = _pinned_versions(found, result)
    previous = result.kserve
    result.kserve = KServeState(
        isvc=found.isvc or inputs.isvc, namespace=found.namespace or namespace,
        service=found.service, generation=found.generation,
        canaryTrafficPercent=found.canary_percent, versions=versions, trafficSince=since,
        window=f"{window_s}s", ingress=inputs.ingress or "")
    revisions = [v.revision for v in versions]
    earlier = [v.revision for v in previous.versions] if previous else None
    if result.version_names is None or result.version_names == earlier:
        result.version_names = revisions
    for version in versions:
        log.info("%s: %s %s: %d %% of traffic%s", ctx.log_prefix(), version.role,
                 version.revision, version.percent, "" if version.ready else ", not Ready")
    if len(versions) == 1:
        log.info("%s: %s has no canary: %s serves all traffic", ctx.log_prefix(), inputs.isvc,
                 versions[0].revision)
    candidate = versions[0]
    if len(versions) > 1 and candidate.percent == 0 and not candidate.ready:
        log.warning("%s: the candidate %s is not Ready, so it gets no traffic", ctx.log_prefix(),
                    candidate.revision)


TASK = TaskDefinition(name="kserve", inputs=KServeInputs, run=run)
