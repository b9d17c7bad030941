"""`agreement`: do the candidate and the baseline answer the same way? A paired comparison.

The same requests (JSON lines from `payloadFile` or `payloadURL`, a seeded sample of
`numRequests` of them) go to the baseline and to every candidate at once, rate-limited by
`qps`, and the predictions are compared pair by pair (see `canarist.core.agreement`). With
`noiseFloor` (the default) every request goes to the baseline twice, and the baseline's
agreement with itself is its noise floor: a model that does not answer the same way twice is
not made a regression by its own noise.

Each version's row of the result's insights holds its comparison with the baseline
(`agreement/rate`, `agreed`, `compared`, `error-count`, ...); the baseline's own row holds
its comparison with itself, so `assess.relative.lower.agreement/rate=1%` judges each
candidate against the noise floor, and `assess.SLOs.lower.agreement/rate=0.95` asks every
version to agree that well, judged on the counts (see `canarist.core.judge`). The confusion
tables and the first disagreements are in `result.agreement`.

Versions are reached through KServe discovery (`kserve: true`, which the chart sets when
`kserve.isvc` is set: each version through its tag host) or listed in `versions`, each with
its `url` and `headers`. Requests go to those endpoints only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from canarist.backends.files import read_bytes_bounded
from canarist.backends.inference import (
    InferenceClient,
    fetch_payload,
)
from canarist.core.agreement import (
    PayloadError,
    PayloadRow,
    Protocol,
    Tally,
    Tolerance,
    confidence_of,
    parse_payload,
    rate_interval,
    request_body,
    sample_rows,
)
from canarist.core.durations import parse_duration
from canarist.core.errors import InputError
from canarist.core.experiment import (
    AgreementRecord,
)
from canarist.core.insights import (
    ensure_insights,
)
from canarist.core.metrics import MetricCatalog
from canarist.core.validation import Location
from canarist.tasks.agreement.counting import METRICS, record, tally_answers
from canarist.tasks.agreement.inputs import AgreementInputs
from canarist.tasks.agreement.sending import Answers, Sender
from canarist.tasks.agreement.targets import Targets, discovered_targets, explicit_targets
from canarist.tasks.base import (
    TaskCheck,
    TaskContext,
    TaskDefinition,
)

log = logging.getLogger("canarist")

PAYLOAD_FETCH_TIMEOUT_S = 30.0


def read_payload(inputs: AgreementInputs, base_dir: Path) -> tuple[str, str]:
    """(what to call it, its text) for a payload file; InputError naming the key."""
    assert inputs.payload_file is not None
    path = Path(inputs.payload_file)
    full = path if path.is_absolute() else base_dir / path
    try:
        return inputs.payload_file, read_bytes_bounded(
            full, name=f"agreement.payloadFile {inputs.payload_file}").decode("utf-8")
    except OSError as exc:
        raise InputError(f"agreement.payloadFile: cannot read {inputs.payload_file}: "
                         f"{exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"agreement.payloadFile: {inputs.payload_file} is not UTF-8 "
                         "text") from None


def payload_bodies(text: str, source: str, protocol: Protocol,
                   key: str) -> list[tuple[PayloadRow, dict[str, Any]]]:
    """Every row with the body to send in `protocol`; InputError at `key` for a bad line."""
    try:
        rows = parse_payload(text)
        prepared = []
        for row in rows:
            try:
                prepared.append((row, request_body(row.body, protocol)))
            except PayloadError as exc:
                raise PayloadError(f"line {row.line}: {exc}") from None
    except PayloadError as exc:
        raise InputError(f"{key}: {source} {exc}") from None
    return prepared


def check(inputs: AgreementInputs, base_dir: Path) -> TaskCheck:
    problems: list[tuple[Location, str]] = []
    if inputs.payload_file:
        try:
            source, text = read_payload(inputs, base_dir)
            payload_bodies(text, source, inputs.resolved_protocol(), "agreement.payloadFile")
        except InputError as exc:
            problems.append((("payloadFile",), exc.message.split(": ", 1)[1]))
    return TaskCheck(MetricCatalog(METRICS), problems)


async def load_rows(inputs: AgreementInputs, ctx: TaskContext,
                    protocol: Protocol) -> tuple[str, list[tuple[PayloadRow, dict[str, Any]]]]:
    if inputs.payload_url:
        text = await fetch_payload(inputs.payload_url, PAYLOAD_FETCH_TIMEOUT_S)
        return inputs.payload_url, payload_bodies(text, inputs.payload_url, protocol,
                                                  "agreement.payloadURL")
    source, text = read_payload(inputs, ctx.run_dir)
    return source, payload_bodies(text, source, protocol, "agreement.payloadFile")


async def run(inputs: AgreementInputs, ctx: TaskContext) -> None:
    targets = (discovered_targets(inputs, ctx.result.kserve) if inputs.kserve
               else explicit_targets(inputs))
    source, rows = await load_rows(inputs, ctx, targets.protocol)
    chosen = sample_rows(len(rows), inputs.num_requests, inputs.seed)
    num_versions = len(targets.endpoints)
    insights = ensure_insights(ctx.result, num_versions)
    labels = [insights.version_label(j) for j in range(num_versions)]
    tolerance = Tolerance.parse(inputs.tolerance)
    tallies = [Tally() for _ in range(num_versions)]
    timeout_s = parse_duration(inputs.timeout, field="timeout")
    if num_versions == 1:
        log.info("%s: only %s was found: it is compared with itself (its noise floor)",
                 ctx.log_prefix(), labels[0])
    answered = 0

    def done(answers: Answers) -> None:
        nonlocal answered
        answered += 1
        tally_answers(answers, tallies, targets.baseline, inputs.outputs, tolerance,
                      inputs.examples)
        ctx.progress(f"agreement: {answered} of {len(chosen)} requests answered")

    async with InferenceClient(timeout_s=timeout_s) as client:
        await client.prepare([e for e in targets.endpoints if e is not None])
        await Sender(inputs, targets, client, done).send([rows[i] for i in chosen])
    record(insights, tallies, targets, inputs.noise_floor, labels)
    ctx.result.agreement = AgreementRecord(
        source=source, protocol=targets.protocol, outputs=inputs.outputs,
        tolerance=tolerance.text, rows=len(rows), sent=len(chosen), seed=inputs.seed,
        baseline=targets.baseline, noiseFloor=inputs.noise_floor,
        versions=[tally.record(j, "" if targets.endpoints[j] is not None else "not routed")
                  for j, tally in enumerate(tallies)])
    _log_summary(ctx, tallies, targets, labels, inputs.noise_floor,
                 confidence_of(ctx.experiment.spec))


def _log_summary(ctx: TaskContext, tallies: list[Tally], targets: Targets, labels: list[str],
                 noise_floor: bool, confidence: float) -> None:
    baseline = targets.baseline
    for index, tally in enumerate(tallies):
        if targets.endpoints[index] is None:
            continue
        for code, (count, message) in tally.errors.items():
            log.warning("%s: %s: %d of %d requests failed: %s ×%d: \"%s\"", ctx.log_prefix(),
                        labels[index], tally.error_count, tally.requests, code, count, message)
        if index == baseline and not noise_floor:
            continue
        against = "itself (noise floor)" if index == baseline else labels[baseline]
        if not tally.compared:
            log.warning("%s: %s against %s: no prediction could be compared", ctx.log_prefix(),
                        labels[index], against)
            continue
        low, high = rate_interval(tally.agreed, tally.compared, confidence)
        log.info("%s: %s agrees with %s on %d of %d predictions (%.1f %%; %.1f %% to %.1f %% at "
                 "%g %% confidence)", ctx.log_prefix(), labels[index], against, tally.agreed,
                 tally.compared, 100 * tally.agreed / tally.compared, 100 * low, 100 * high,
                 100 * confidence)


TASK = TaskDefinition(name="agreement", inputs=AgreementInputs, run=run, check=check)
