"""Sending each request body to every version at once, rate-limited, and collecting the
predictions (or why there are none).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canarist.backends.inference import (
    CallFailed,
    Endpoint,
    InferenceClient,
)
from canarist.core.agreement import (
    NonConforming,
    PayloadRow,
    Prediction,
    Protocol,
    v1_predictions,
    v2_predictions,
)
from canarist.tasks.agreement.inputs import AgreementInputs
from canarist.tasks.agreement.targets import Targets


@dataclass
class Answers:
    """What every version answered to one request body: predictions, or the failure."""

    row: PayloadRow
    sent: dict[str, Any]
    first: list[list[Prediction] | CallFailed | None]
    second: list[Prediction] | CallFailed | None = None
    """The baseline's second answer (the noise floor)."""


def predictions(answer: Any, protocol: Protocol, expected: int,
                output: str | None) -> list[Prediction]:
    try:
        if protocol == "v1":
            return v1_predictions(answer, expected)
        return v2_predictions(answer, expected, output)
    except NonConforming as exc:
        raise CallFailed("invalid-response", str(exc)) from None


class Sender:
    """Sends each body to every version at once (and to the baseline a second time), at
    most `qps` bodies a second and `concurrency` bodies in flight, and hands each body's
    answers to `done` as they come in."""

    def __init__(self, inputs: AgreementInputs, targets: Targets, client: InferenceClient,
                 done: Callable[[Answers], None]) -> None:
        self.inputs, self.targets, self.client, self.done = inputs, targets, client, done

    async def one(self, endpoint: Endpoint | None, row: PayloadRow,
                  body: dict[str, Any]) -> list[Prediction] | CallFailed | None:
        if endpoint is None:
            return None
        try:
            answer = await self.client.infer(endpoint, body)
            return predictions(answer, endpoint.protocol, row.instances, self.inputs.output)
        except CallFailed as exc:
            return exc

    async def row(self, row: PayloadRow, body: dict[str, Any], limit: asyncio.Semaphore) -> None:
        try:
            calls = [self.one(e, row, body) for e in self.targets.endpoints]
            if self.inputs.noise_floor:
                calls.append(self.one(self.targets.endpoints[self.targets.baseline], row, body))
            found = await asyncio.gather(*calls)
        finally:
            limit.release()
        answers = Answers(row, body, list(found[: len(self.targets.endpoints)]))
        if self.inputs.noise_floor:
            answers.second = found[-1]
        self.done(answers)

    async def send(self, bodies: list[tuple[PayloadRow, dict[str, Any]]]) -> None:
        """Each body when it is due, none before a slot is free; tasks are made as they go,
        so a long payload costs no more than `concurrency` bodies in flight."""
        limit = asyncio.Semaphore(self.inputs.concurrency)
        started = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                for k, (row, body) in enumerate(bodies):
                    await limit.acquire()
                    delay = started + k / self.inputs.qps - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    group.create_task(self.row(row, body, limit))
        except BaseExceptionGroup as failed:  # a bug, or an input only met now (FP16 on gRPC)
            raise failed.exceptions[0] from None
