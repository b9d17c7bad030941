"""`agreement`'s inputs: the payload, the versions (or KServe discovery), the comparison.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, NonNegativeInt, PositiveFloat, field_validator, model_validator

from canarist.core.agreement import (
    DEFAULT_EXAMPLES,
    Protocol,
    Tolerance,
)
from canarist.core.chart import CHART_ONLY_KEYS
from canarist.core.fields import Duration, PositiveInt, Text
from canarist.core.validation import FieldProblem, Location
from canarist.tasks.base import (
    TaskInputs,
)

DEFAULT_QPS = 10.0
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = "5s"


class VersionInput(TaskInputs):
    url: str | None = None
    headers: dict[str, Text] | None = None


def _tolerance(value: Any) -> str:
    try:
        return Tolerance.parse(value).text
    except ValueError as exc:
        raise ValueError(str(exc).replace("a percentage such as 20%", "a percentage such as 1%")
                         .replace("a number such as 5", "a number such as 0.01")) from None


class AgreementInputs(TaskInputs):
    tolerated_keys: ClassVar[frozenset[str]] = CHART_ONLY_KEYS - {"payloadURL"}

    payload_file: str | None = Field(default=None, alias="payloadFile")
    payload_url: str | None = Field(default=None, alias="payloadURL")
    num_requests: PositiveInt | None = Field(default=None, alias="numRequests")
    seed: int = 0
    protocol: Literal["v1", "v2", "grpc"] | None = None
    model: str | None = None
    url: str | None = None
    headers: dict[str, Text] | None = None
    versions: list[VersionInput] | None = None
    baseline: NonNegativeInt | None = None
    noise_floor: bool = Field(default=True, alias="noiseFloor")
    tolerance: str = "0"
    outputs: Literal["auto", "class", "numeric"] = "auto"
    output: str | None = None
    qps: PositiveFloat = DEFAULT_QPS
    concurrency: PositiveInt = DEFAULT_CONCURRENCY
    timeout: Duration = DEFAULT_TIMEOUT
    examples: NonNegativeInt = DEFAULT_EXAMPLES
    kserve: bool = False
    """Compare the versions `kserve.isvc` discovery found, each through its tag host; `url`
    is then the path (REST) or the gRPC address of the ingress."""

    @field_validator("tolerance", mode="before")
    @classmethod
    def _parse_tolerance(cls, value: Any) -> str:
        return _tolerance(value)

    @model_validator(mode="after")
    def _consistent(self) -> AgreementInputs:
        if not self.payload_file and not self.payload_url:
            raise FieldProblem("payloadFile", "required: a JSON-lines file, one request body a "
                               "line (or payloadURL)")
        if self.payload_file and self.payload_url:
            raise FieldProblem("payloadURL", "set payloadFile or payloadURL, not both")
        if self.kserve:
            if self.url and not (self.url.startswith("/") or is_grpc(self.url)):
                raise FieldProblem("url", "with kserve.isvc, expected the path of every "
                                   "version's URL (/v1/models/sklearn-iris:predict) or the "
                                   "gRPC address of the ingress (grpc://127.0.0.1:8081)")
            return self
        versions = self.versions or []
        if len(versions) < 2:
            raise FieldProblem("versions", "expected at least two versions, each with its url "
                               "(version 1, the baseline, and a candidate), or kserve.isvc")
        for index, version in enumerate(versions):
            if not (version.url or self.url):
                raise FieldProblem(("versions", index, "url"), "required: where this version "
                                   "answers (http://host:port/v1/models/NAME:predict, or "
                                   "grpc://host:port)")
        if self.baseline is not None and self.baseline >= len(versions):
            raise FieldProblem("baseline", f"there is no version {self.baseline}: "
                               f"{len(versions)} versions are listed, numbered from 0")
        protocol = self.resolved_protocol()
        for index, version in enumerate(versions):
            where: Location = ("versions", index, "url") if version.url else ("url",)
            given = version.url or self.url or ""
            if protocol == "grpc" and given.startswith(("http://", "https://")):
                raise FieldProblem(where, f"expected grpc://host:port over gRPC, got {given!r}")
            if protocol != "grpc" and not given.startswith(("http://", "https://")):
                raise FieldProblem(where, "expected an http:// or https:// URL such as "
                                   f"http://127.0.0.1:8080/v1/models/NAME:predict, got {given!r}")
        if protocol == "grpc" and not self.model:
            raise FieldProblem("model", "required over gRPC: the model name each request "
                               "carries (the InferenceService's name)")
        return self

    def urls(self) -> list[str]:
        listed = [v.url or self.url or "" for v in self.versions or []]
        return listed or ([self.url] if self.url else [])

    def resolved_protocol(self) -> Protocol:
        """`protocol`, or what the URLs say: grpc:// is gRPC, a path ending in /infer V2."""
        if self.protocol is not None:
            return self.protocol
        urls = self.urls()
        if any(is_grpc(u) for u in urls):
            return "grpc"
        if urls and all(urlsplit(u).path.rstrip("/").endswith("/infer") for u in urls):
            return "v2"
        return "v1"


def is_grpc(url: str) -> bool:
    return url.startswith(("grpc://", "grpcs://"))
