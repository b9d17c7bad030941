"""`rollout`: act on the verdict by moving the InferenceService's `canaryTrafficPercent`.

Run after `assess`, in a looping experiment. On **pass** it steps the canary's share to the
next of `steps` (100 promotes the candidate), on **fail** it rolls back (0 %: everything to
the previously rolled-out revision), and on **inconclusive** it holds; after `maxHolds`
inconclusive loops in a row at one step it rolls back (0: hold for ever). Every decision
is recorded in `result.rollout`.

Safety:

* The rollout remembers the InferenceService's `metadata.generation` it expects (its own
  patches included). If anyone else changed the spec (a new model mid-rollout), it stops,
  records why, and touches nothing, then and in every later loop (exit 3).
* Each patch carries the `resourceVersion` just read (optimistic concurrency); a conflict
  is re-read once, and stops the rollout unless only the status moved.
* The intended action is written to the result before the patch is sent and cleared after.
  A loop that finds one left over (the process was killed in between) looks at the
  cluster: a patch that landed is recorded then, one that did not is dropped, so a restart
  never steps twice nor loses an action.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator

from canarist.backends.kube import INFERENCE_SERVICES, KubeClient, KubeConflict
from canarist.core.errors import TaskError, UnavailableError
from canarist.core.experiment import KServeState, RolloutAction, RolloutRecord
from canarist.core.kserve import DEFAULT_STEPS, Decision, Policy, decide, discover
from canarist.core.verdict import judge
from canarist.tasks.base import TaskContext, TaskDefinition, TaskInputs, log

MAX_ACTIONS = 100
"""Actions kept in the result (the newest); a rollout that holds for hours stays small."""
STATES = {"promote": "promoted", "rollback": "rolled-back", "step": "in-progress",
          "hold": "held"}


class RolloutInputs(TaskInputs):
    steps: list[int] = Field(default_factory=lambda: list(DEFAULT_STEPS))
    max_holds: NonNegativeInt = Field(default=10, alias="maxHolds")
    min_loops_per_step: PositiveInt = Field(default=1, alias="minLoopsPerStep")
    dry_run: bool = Field(default=False, alias="dryRun")

    @field_validator("steps")
    @classmethod
    def _increasing_to_100(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 < s <= 100 for s in value) or value != sorted(set(value)):
            raise ValueError("expected increasing percentages between 1 and 100, e.g. "
                             "--set 'rollout.steps={10,25,50,100}'")
        if value[-1] != 100:
            raise ValueError("the last step must be 100 (the promotion)")
        return value

    def policy(self) -> Policy:
        return Policy(tuple(self.steps), self.max_holds, self.min_loops_per_step)


def _now() -> datetime:
    return datetime.now(UTC)


def _record(record: RolloutRecord, action: RolloutAction) -> None:
    record.actions.append(action)
    del record.actions[:-MAX_ACTIONS]


class _Cluster:
    """The InferenceService, read and patched through one client."""

    def __init__(self, client: KubeClient, state: KServeState) -> None:
        self.client, self.state = client, state

    async def read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.client.get, INFERENCE_SERVICES, self.state.namespace,
                                       self.state.isvc)

    async def patch(self, obj: dict[str, Any], percent: int) -> dict[str, Any]:
        body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "spec": {"predictor": {"canaryTrafficPercent": percent}}}
        return await asyncio.to_thread(self.client.patch, INFERENCE_SERVICES,
                                       self.state.namespace, self.state.isvc, body)


def _generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _stop(record: RolloutRecord, reason: str, ctx: TaskContext) -> UnavailableError:
    record.state, record.reason = "stopped", reason
    _record(record, RolloutAction(time=_now(), action="stop", verdict="", reason=reason,
                                  **{"from": record.percent}))
    ctx.checkpoint()
    return UnavailableError(f"rollout stopped: {reason}")


async def run(inputs: RolloutInputs, ctx: TaskContext) -> None:
    state = ctx.result.kserve
    if state is None:
        raise TaskError("rollout needs the versions of an InferenceService: set kserve.isvc")
    client = await asyncio.to_thread(KubeClient.connect, ctx.kubeconfig, ctx.kube_context)
    try:
        await _roll(inputs, ctx, _Cluster(client, state))
    finally:
        await asyncio.to_thread(client.close)


async def _roll(inputs: RolloutInputs, ctx: TaskContext, cluster: _Cluster) -> None:
    obj = await cluster.read()
    found = discover(obj, where=f"kserve.isvc {cluster.state.isvc}")
    record = ctx.result.rollout
    if record is None:
        if found.baseline is None:
            log.info("%s: %s has no canary to roll out (%s serves all traffic)", ctx.log_prefix(),
                     found.isvc, found.versions[0].revision)
            return
        record = RolloutRecord(percent=found.canary_percent, candidate=found.versions[0].revision,
                               baseline=found.baseline.revision, generation=found.generation)
        ctx.result.rollout = record
    if record.state == "stopped":
        raise UnavailableError(f"rollout stopped earlier: {record.reason}")
    if record.pending is not None and _reconcile(record, found.generation, found.canary_percent,
                                                 ctx):
        return
    candidate = found.versions[0].revision
    if found.generation != record.generation or candidate != record.candidate:
        raise _stop(record, f"InferenceService {found.isvc} changed since the rollout began "
                    f"(generation {record.generation} -> {found.generation}, candidate "
                    f"{record.candidate} -> {candidate}); canarist changed nothing", ctx)
    if record.ended:
        log.info("%s: rollout %s at %s %%; nothing to do", ctx.log_prefix(), record.state,
                 record.percent)
        return
    verdict = judge(ctx.experiment)
    record.loops_at_step += 1
    record.holds = record.holds + 1 if verdict.outcome == "inconclusive" else 0
    decision = decide(record, verdict.outcome, verdict.reason, inputs.policy())
    action = RolloutAction(time=_now(), action=decision.action, to=decision.to,
                           verdict=verdict.outcome, reason=decision.reason,
                           dryRun=inputs.dry_run, **{"from": record.percent})
    if decision.action == "hold" or inputs.dry_run:
        _log(ctx, action, dry_run=inputs.dry_run)
        if not inputs.dry_run:
            record.state = "held"
        _record(record, action)
        return
    await _apply(cluster, obj, record, action, decision, ctx)


async def _apply(cluster: _Cluster, obj: dict[str, Any], record: RolloutRecord,
                 action: RolloutAction, decision: Decision, ctx: TaskContext) -> None:
    assert decision.to is not None
    record.pending = action
    ctx.checkpoint()  # the intent is on record before the cluster changes
    try:
        patched = await cluster.patch(obj, decision.to)
    except KubeConflict:
        fresh = await cluster.read()
        if _generation(fresh) != record.generation:
            record.pending = None
            raise _stop(record, f"InferenceService {cluster.state.isvc} changed while the "
                        f"rollout patched it (generation {record.generation} -> "
                        f"{_generation(fresh)}); canarist changed nothing", ctx) from None
        patched = await cluster.patch(fresh, decision.to)
    _done(record, action, _generation(patched))
    _log(ctx, action, dry_run=False)
    ctx.checkpoint()


def _done(record: RolloutRecord, action: RolloutAction, generation: int) -> None:
    record.pending = None
    record.generation = generation
    record.percent = action.to
    record.state = STATES[action.action]  # type: ignore[assignment]
    record.loops_at_step = 0
    record.holds = 0
    _record(record, action)


def _reconcile(record: RolloutRecord, generation: int, percent: int | None,
               ctx: TaskContext) -> bool:
    """Settle an action whose patch may have been sent without its record. True when it
    had landed (this loop then only records it: the new split has not been measured)."""
    pending = record.pending
    assert pending is not None
    if generation == record.generation + 1 and percent == pending.to:
        pending.reason = f"{pending.reason} (recorded after a restart)".strip()
        _done(record, pending, generation)
        log.info("%s: the %s to %s %% sent before a restart had landed; recorded it",
                 ctx.log_prefix(), pending.action, pending.to)
        ctx.checkpoint()
        return True
    if generation == record.generation:
        log.info("%s: the %s to %s %% prepared before a restart was never sent",
                 ctx.log_prefix(), pending.action, pending.to)
    record.pending = None
    return False


def _log(ctx: TaskContext, action: RolloutAction, *, dry_run: bool) -> None:
    if action.action == "hold":
        log.info("%s: hold at %s %% (%s: %s)", ctx.log_prefix(), action.from_, action.verdict,
                 action.reason)
        return
    verb = "would patch" if dry_run else "patched"
    log.info("%s: %s: %s canaryTrafficPercent %s -> %s (%s: %s)", ctx.log_prefix(),
             action.action, verb, action.from_, action.to, action.verdict, action.reason)


TASK = TaskDefinition(name="rollout", inputs=RolloutInputs, run=run)
