"""Do two models agree? The rules of the `agreement` task's paired comparison, as data. No I/O.

The same request is sent to the baseline and to each candidate, and the answers are compared
prediction by prediction (one prediction per instance of a request):

* **classes** (an integer, a string or a boolean; or, for a vector of scores, the index of
  the highest score, the top-1 class): a pair agrees when both name the same class. Each
  pair also counts in a baseline × candidate confusion table.
* **numbers** (a float, or a vector of floats): the absolute differences are summed up
  (`mean-abs-diff`, `max-abs-diff`) and a pair is *within tolerance* when every element
  differs by at most the tolerance (absolute, `0.01`, or relative to the baseline's value,
  `1%`). A float scalar agrees when it is within tolerance; a vector agrees when its top-1
  class is the same (with `outputs: numeric`, when it is within tolerance).

`agreement/rate` is agreed pairs over compared pairs: a proportion, judged on those two
counts with the confidence sequence of `canarist.core.stats.sequences.proportion_interval`
(the judge's own), so a handful of requests gives a wide interval and never a pass.

Requests come from JSON lines, one request body a line, in KServe's V1 shape
(`{"instances": [...]}`) or V2 shape (`{"inputs": [{"name", "shape", "datatype", "data"}]}`);
either is converted to what the protocol in use expects (V1 REST, V2 REST, V2 gRPC), so one
payload file serves all three.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from canarist.core.experiment import AgreementExample, AgreementVersion, ConfusionCell, TaskEntry
from canarist.core.redact import redact
from canarist.core.stats.compare import Allowance

Protocol = Literal["v1", "v2", "grpc"]
OutputsMode = Literal["auto", "class", "numeric"]

PROTOCOLS: tuple[Protocol, ...] = ("v1", "v2", "grpc")
SHOWN_CHARS = 200
"""Longest request or prediction kept as an example of a disagreement (after redaction)."""
DEFAULT_EXAMPLES = 5

_INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = _INT_TYPES | _FLOAT_TYPES | {"BOOL", "BYTES"}


class PayloadError(ValueError):
    """A payload line that is not a request body canarist can send (the message names the
    line; the task puts the key in front)."""


class NonConforming(ValueError):
    """A response that is not what the protocol promises (the message says what is wrong)."""


# -- the payload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayloadRow:
    """One request body of the payload: its line (1-based) and how many predictions it asks."""

    line: int
    body: dict[str, Any]
    instances: int


def parse_payload(text: str) -> list[PayloadRow]:
    """The request bodies of a JSON-lines payload; blank lines are skipped."""
    rows: list[PayloadRow] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"line {number}: not JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(body, dict):
            raise PayloadError(f"line {number}: expected a JSON object (a V1 or V2 request body), "
                               f"got {type(body).__name__}")
        try:
            rows.append(PayloadRow(number, body, instance_count(body)))
        except PayloadError as exc:
            raise PayloadError(f"line {number}: {exc}") from None
    if not rows:
        raise PayloadError("holds no request body (one JSON object a line, such as "
                           '{"instances": [[6.8, 2.8, 4.8, 1.4]]})')
    return rows


def body_shape(body: dict[str, Any]) -> Literal["v1", "v2"]:
    """Whether a body is in V1's shape (`instances`, or `inputs` as a list of rows) or V2's
    (`inputs` as a list of named tensors)."""
    if "instances" in body:
        return "v1"
    inputs = body.get("inputs")
    if isinstance(inputs, list) and inputs and all(isinstance(i, dict) and "datatype" in i
                                                  for i in inputs):
        return "v2"
    if isinstance(inputs, list):
        return "v1"
    raise PayloadError('expected a V1 body ({"instances": [...]}) or a V2 body ({"inputs": '
                       '[{"name", "shape", "datatype", "data"}]})')


def instance_count(body: dict[str, Any]) -> int:
    """How many predictions a body asks for (V1: its instances; V2: the first dimension)."""
    if body_shape(body) == "v1":
        instances = body.get("instances", body.get("inputs"))
        if not isinstance(instances, list) or not instances:
            raise PayloadError("instances: expected a non-empty list")
        return len(instances)
    tensors = [_tensor(t, i) for i, t in enumerate(body["inputs"])]
    return tensors[0].shape[0] if tensors[0].shape else 1


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: tuple[Any, ...]
    """Flattened, in row-major order."""


def _tensor(raw: Any, index: int, where: str = "inputs") -> Tensor:
    """A V2 tensor (`data`, or gRPC JSON's `contents`), checked against its shape."""
    at = f"{where}[{index}]"
    if not isinstance(raw, dict):
        raise PayloadError(f"{at}: expected a tensor object")
    datatype = str(raw.get("datatype", "")).upper()
    if datatype not in DATATYPES:
        raise PayloadError(f"{at}.datatype: expected one of {', '.join(sorted(DATATYPES))}, "
                           f"got {raw.get('datatype')!r}")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise PayloadError(f"{at}.shape: expected a list of sizes, got {shape!r}")
    data = raw.get("data")
    if data is None and isinstance(raw.get("contents"), dict) and len(raw["contents"]) == 1:
        data = next(iter(raw["contents"].values()))
    if not isinstance(data, list):
        raise PayloadError(f"{at}.data: expected a list")
    flat = tuple(flatten(data))
    if math.prod(shape) != len(flat):
        raise PayloadError(f"{at}: shape {shape} holds {math.prod(shape)} values, data has "
                           f"{len(flat)}")
    return Tensor(str(raw.get("name", f"input-{index}")), datatype, tuple(shape), flat)


def flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from flatten(item)
    else:
        yield value


def _nested_shape(value: Any) -> tuple[int, ...]:
    """The shape of a rectangular nested list (`[[1, 2], [3, 4]]` -> (2, 2))."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = {_nested_shape(item) for item in value}
    if len(inner) != 1:
        raise PayloadError("instances: rows of different lengths cannot make one V2 tensor")
    return (len(value), *inner.pop())


def _datatype(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"  # FP32 would round the features: a row near a boundary could change class
    if all(isinstance(v, str) for v in values):
        return "BYTES"
    raise PayloadError("instances: mix numbers, booleans and strings, so no single V2 datatype fits")


def v2_tensors(body: dict[str, Any]) -> list[Tensor]:
    """A body's inputs as V2 tensors: V1 instances become one tensor `input-0`."""
    if body_shape(body) == "v2":
        return [_tensor(t, i) for i, t in enumerate(body["inputs"])]
    instances = body.get("instances", body.get("inputs"))
    shape = _nested_shape(instances)
    flat = tuple(flatten(instances))
    return [Tensor("input-0", _datatype(flat), shape, flat)]


def request_body(body: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
    """The body to send over REST: V1 for `v1`, V2 for `v2` (and gRPC's JSON form of it)."""
    shape = body_shape(body)
    if protocol == "v1":
        if shape == "v1":
            return body
        tensors = v2_tensors(body)
        if len(tensors) != 1:
            raise PayloadError(f"has {len(tensors)} input tensors; a V1 request has one list of "
                               "instances (use agreement.protocol=v2 or grpc)")
        return {"instances": _unflatten(list(tensors[0].data), tensors[0].shape)}
    if shape == "v2":
        return {**body, "inputs": [_tensor_json(t) for t in v2_tensors(body)]}
    return {"inputs": [_tensor_json(t) for t in v2_tensors(body)]}


def _tensor_json(tensor: Tensor) -> dict[str, Any]:
    return {"name": tensor.name, "shape": list(tensor.shape), "datatype": tensor.datatype,
            "data": list(tensor.data)}


def _unflatten(flat: list[Any], shape: Sequence[int]) -> Any:
    if len(shape) <= 1:
        return flat
    size = math.prod(shape[1:])
    return [_unflatten(flat[i * size:(i + 1) * size], shape[1:]) for i in range(shape[0])]


def sample_rows(count: int, limit: int | None, seed: int) -> list[int]:
    """Which rows to send: all of them in order, or `limit` of them drawn with `seed` (kept in
    payload order, so the first disagreements shown are the first in the file)."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), limit))


# -- the responses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One prediction as a server gave it: a class, a number, or a vector of numbers."""

    shown: str
    """Compact JSON of the value, as the server sent it."""
    kind: Literal["class", "number", "vector"]
    label: str | None = None
    """The class, as text (integers, strings and booleans)."""
    numbers: tuple[float, ...] | None = None

    @classmethod
    def of(cls, value: Any) -> Prediction:
        shown = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        if isinstance(value, bool | str):
            return cls(shown, "class", label=shown if isinstance(value, bool) else value)
        if isinstance(value, int):
            return cls(shown, "class", label=str(value), numbers=(float(value),))
        if isinstance(value, float):
            return cls(shown, "number", numbers=(value,))
        if isinstance(value, list):
            flat = list(flatten(value))
            if flat and all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
                return cls(shown, "vector", numbers=tuple(float(v) for v in flat))
        return cls(shown, "class", label=shown)  # anything else is compared as it is

    def top1(self) -> str:
        """The class this prediction names (a vector's index of its highest score; a whole
        float as the integer it is, so `1.0` and `1` name one class)."""
        if self.kind == "vector" and self.numbers:
            return str(max(range(len(self.numbers)), key=self.numbers.__getitem__))
        if self.kind == "number" and self.numbers and self.numbers[0].is_integer():
            return str(int(self.numbers[0]))
        return self.label if self.label is not None else self.shown


def v1_predictions(doc: Any, expected: int) -> list[Prediction]:
    """The predictions of a V1 response (`{"predictions": [...]}`), one per instance."""
    if not isinstance(doc, dict) or "predictions" not in doc:
        keys = ", ".join(sorted(doc)) if isinstance(doc, dict) else type(doc).__name__
        raise NonConforming(f"not a V1 response: no \"predictions\" (got {keys or 'an empty object'})")
    predictions = doc["predictions"]
    if not isinstance(predictions, list):
        raise NonConforming(f"\"predictions\" is a {type(predictions).__name__}, not a list")
    if len(predictions) != expected:
        raise NonConforming(f"{len(predictions)} predictions for {expected} instances")
    return [Prediction.of(p) for p in predictions]


def v2_predictions(doc: Any, expected: int, output: str | None = None) -> list[Prediction]:
    """The predictions of a V2 response, from the output tensor named `output` (the first one
    when None), one per instance: the tensor's first dimension."""
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list) or not doc["outputs"]:
        raise NonConforming("not a V2 response: no \"outputs\" tensors")
    outputs = doc["outputs"]
    if output is None:
        chosen = outputs[0]
    else:
        names = [o.get("name") for o in outputs if isinstance(o, dict)]
        if output not in names:
            raise NonConforming(f"no output tensor {output!r} (outputs: {', '.join(map(str, names))})")
        chosen = outputs[names.index(output)]
    try:
        tensor = _tensor(chosen, outputs.index(chosen), "outputs")
    except PayloadError as exc:
        raise NonConforming(str(exc)) from None
    rows = tensor.shape[0] if tensor.shape else 1
    if rows != expected:
        raise NonConforming(f"output {tensor.name} has {rows} predictions for {expected} instances")
    size = math.prod(tensor.shape[1:]) if len(tensor.shape) > 1 else 1
    values = list(tensor.data)
    if tensor.datatype in _FLOAT_TYPES:
        values = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                  for v in values]
    elif tensor.datatype in _INT_TYPES:
        values = [int(v) if isinstance(v, int | float) and not isinstance(v, bool)
                  and float(v).is_integer() else v for v in values]
    elif tensor.datatype == "BOOL":
        values = [bool(v) if isinstance(v, int | bool) else v for v in values]
    if size == 1:
        return [Prediction.of(v) for v in values]
    return [Prediction.of(values[i * size:(i + 1) * size]) for i in range(rows)]


# -- comparing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How far two numbers may differ and still count as the same: absolute or relative."""

    amount: float
    relative: bool
    text: str

    @classmethod
    def parse(cls, value: str | float) -> Tolerance:
        """`0.01` (absolute) or `1%` (of the baseline's value); raises ValueError."""
        found = Allowance.parse(value)
        return cls(found.amount, found.relative, found.text)

    def holds(self, baseline: float, candidate: float) -> bool:
        limit = self.amount * abs(baseline) if self.relative else self.amount
        return abs(candidate - baseline) <= limit


@dataclass(frozen=True)
class Pair:
    """The outcome of comparing one prediction of the candidate with the baseline's."""

    agree: bool
    classes: tuple[str, str] | None
    """(baseline, candidate) classes, for the confusion table; None for numbers."""
    diffs: tuple[float, ...] | None = None
    within: bool | None = None


def compare(baseline: Prediction, candidate: Prediction, mode: OutputsMode,
            tolerance: Tolerance) -> Pair:
    """Compare two predictions. Raises NonConforming when `mode` is `numeric` and an output is
    not a number, or when two numeric outputs differ in length."""
    numeric = baseline.numbers is not None and candidate.numbers is not None
    if mode == "numeric" and not numeric:
        shown = candidate.shown if candidate.numbers is None else baseline.shown
        raise NonConforming(f"agreement.outputs is numeric, but a prediction is {shown[:60]}")
    diffs: tuple[float, ...] | None = None
    within = None
    if numeric and (mode == "numeric" or baseline.kind == candidate.kind != "class"):
        b, c = baseline.numbers or (), candidate.numbers or ()
        if len(b) != len(c):
            raise NonConforming(f"a prediction has {len(c)} values, the baseline's {len(b)}")
        diffs = tuple(abs(x - y) for x, y in zip(b, c, strict=True))
        within = all(tolerance.holds(x, y) for x, y in zip(b, c, strict=True))
    if mode == "numeric" or (mode == "auto" and diffs is not None and baseline.kind == "number"):
        return Pair(bool(within), None, diffs, within)
    classes = (baseline.top1(), candidate.top1())
    return Pair(classes[0] == classes[1], classes, diffs, within)


# -- counting ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one version's comparisons add up to (for the baseline: with its own second answer)."""

    requests: int = 0
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    """By code (`500`, `timeout`, `UNAVAILABLE`, `invalid-response`): count and first message."""
    compared: int = 0
    agreed: int = 0
    numeric: int = 0
    within: int = 0
    diff_sum: float = 0.0
    diff_count: int = 0
    diff_max: float = 0.0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[AgreementExample] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(count for count, _ in self.errors.values())

    def error(self, code: str, message: str) -> None:
        count, first = self.errors.get(code, (0, message))
        self.errors[code] = (count + 1, first)

    def add(self, pair: Pair, example: AgreementExample | None, max_examples: int) -> None:
        self.compared += 1
        self.agreed += pair.agree
        if pair.classes is not None:
            self.confusion[pair.classes] += 1
        if pair.diffs is not None:
            self.numeric += 1
            self.within += bool(pair.within)
            self.diff_sum += sum(pair.diffs)
            self.diff_count += len(pair.diffs)
            self.diff_max = max(self.diff_max, *pair.diffs, 0.0)
        if not pair.agree and example is not None and max_examples:
            # the first ones in the payload, whatever order the answers come in
            self.examples.append(example)
            if len(self.examples) > max_examples:
                self.examples.sort(key=lambda e: (e.line, e.instance))
                del self.examples[max_examples:]

    @property
    def rate(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def all_numeric(self) -> bool:
        return self.compared > 0 and self.numeric == self.compared

    def record(self, version: int, reason: str = "") -> AgreementVersion:
        self.examples.sort(key=lambda e: (e.line, e.instance))
        return AgreementVersion(
            version=version, requests=self.requests, errors=self.error_count,
            compared=self.compared, agreed=self.agreed,
            confusion=[ConfusionCell(baseline=b, candidate=c, count=n)
                       for (b, c), n in sorted(self.confusion.items(),
                                               key=lambda item: (label_order(item[0][0]),
                                                                 label_order(item[0][1])))],
            disagreements=list(self.examples), reason=reason)


def label_order(label: str) -> tuple[int, float, str]:
    """Classes in a natural order: numbers by value, then text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """Compact JSON of `value` with secret-looking fields redacted, at most `limit` characters."""
    text = json.dumps(redact(value), separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rate_interval(agreed: int, compared: int, confidence: float) -> tuple[float, float]:
    """The agreement rate's interval at `confidence`, valid at every look (the judge's
    confidence sequence for a proportion, Jeffreys' mixture). Its numerics are imported
    here, so that reports without agreement start without numpy."""
    from canarist.core.stats.sequences import proportion_interval

    return proportion_interval(agreed, compared, 1 - confidence)


DEFAULT_CONFIDENCE = 0.95


def confidence_of(spec: Sequence[TaskEntry]) -> float:
    """The confidence the experiment judges at: its `assess` task's, else 0.95."""
    for entry in spec:
        if entry.task != "assess":
            continue
        given = {k.lower(): v for k, v in entry.with_.items()}.get("confidence")
        if isinstance(given, int | float) and not isinstance(given, bool) and 0.5 <= given < 1:
            return float(given)
    return DEFAULT_CONFIDENCE
