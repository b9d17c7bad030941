"""Failed requests of the load tests (`insights.errors`) as every report shows them.

One group per version and provider (`http`, `grpc-<id>`), with the total the provider sent
(its `request-count`, when known) and each status's count and first message. Messages are
redacted and shortened again here: the file may have been written or edited by hand.
Experiments without failed requests (every Iter8-written one) have no groups, so reports
render them exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from canarist.core.experiment import Insights
from canarist.core.insights import short_message
from canarist.core.metrics import scalar_value


@dataclass(frozen=True)
class Failure:
    code: str
    count: int
    message: str


@dataclass(frozen=True)
class FailureGroup:
    version: int
    label: str
    provider: str
    total: int | None
    """How many requests the provider sent (its latest `request-count`), if recorded."""
    noun: str
    """`calls` for gRPC providers, `requests` for HTTP ones."""
    failures: tuple[Failure, ...]

    @property
    def failed(self) -> int:
        return sum(f.count for f in self.failures)

    @property
    def headline(self) -> str:
        """`50 of 50 calls failed` (or `50 calls failed` when the total is unknown)."""
        if self.total is None:
            return f"{self.failed} {self.noun} failed"
        return f"{self.failed} of {self.total} {self.noun} failed"


def failure_groups(insights: Insights) -> list[FailureGroup]:
    """Groups by version, then provider (bytewise), each with its failures most frequent first."""
    groups = []
    for version in range(insights.num_versions):
        errors = insights.errors[version] if version < len(insights.errors) else {}
        for provider in sorted(errors, key=lambda p: p.encode()):
            failures = tuple(
                Failure(e.code, e.count, short_message(e.message))
                for e in sorted(errors[provider], key=lambda e: (-e.count, e.code))
            )
            if not failures:
                continue
            total = scalar_value(insights, version, f"{provider}/request-count").value
            groups.append(FailureGroup(
                version=version,
                label=insights.version_label(version),
                provider=provider,
                total=int(total) if total is not None else None,
                noun="calls" if provider.split("-", 1)[0] == "grpc" else "requests",
                failures=failures,
            ))
    return groups
