"""KServe's rollout rules, read and applied as data. No I/O.

* `discover` reads an InferenceService object (serverless mode: Knative revisions and the
  `canaryTrafficPercent` split) and names its versions: the **candidate** is the latest
  created revision (tag `latest`), the **baseline** the latest rolled-out one (tag `prev`).
  Version 0 is the candidate and version 1 the baseline, the order of Iter8's tutorial.
* `measurement_window` is the window that holds only traffic at the current split.
* `decide` is the rollout policy: step on pass, roll back on fail, hold when inconclusive.

KServe's own rules this relies on (KServe docs, "Canary rollout strategy"; kserve#5984):
`canaryTrafficPercent` only takes effect once a previous revision has been rolled out;
Knative routes `latestRevision` targets to the latest *ready* revision, so a candidate that
is not ready gets no traffic whatever the spec says; setting the percent to 100 promotes the
candidate (it becomes `latestRolledoutRevision`); setting it to 0 sends everything to the
previously rolled-out revision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from canarist.core.errors import InputError
from canarist.core.experiment import KServeVersion, RolloutActionKind, RolloutRecord
from canarist.core.redact import redact_text

Obj = dict[str, Any]

REVISION_SUFFIX = re.compile(r"-[0-9]{5}$")
MIN_WINDOW_S = 60
"""Two scrape intervals of Knative's queue-proxy metrics at Prometheus's usual 30 s."""
MAX_WINDOW_S = 3600
DEFAULT_STEPS: tuple[int, ...] = (10, 25, 50, 100)


@dataclass(frozen=True)
class Discovery:
    """What an InferenceService says about its versions right now."""

    isvc: str
    namespace: str
    service: str
    generation: int
    canary_percent: int | None
    versions: tuple[KServeVersion, ...]
    candidate_ready_since: datetime | None

    @property
    def candidate(self) -> KServeVersion | None:
        return next((v for v in self.versions if v.role == "candidate"), None)

    @property
    def baseline(self) -> KServeVersion | None:
        return next((v for v in self.versions if v.role == "baseline"), None)


def _field(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def service_of(revision: str) -> str:
    """The Knative service (and configuration) a revision belongs to:
    `sklearn-iris-predictor-default-00002` -> `sklearn-iris-predictor-default`; KServe's
    newer `-predictor` naming works the same way."""
    return REVISION_SUFFIX.sub("", revision)


def discover(obj: Obj, *, where: str) -> Discovery:
    """The versions of an InferenceService. `where` names it in errors
    (`kserve.isvc sklearn-iris in default`). Raises InputError when the object is not one
    canarist can judge: no revision yet, RawDeployment's own canary API."""
    meta: Obj = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
    annotations = meta.get("annotations") or {}
    mode = annotations.get("serving.kserve.io/deploymentMode", "") if isinstance(
        annotations, dict) else ""
    if mode in ("RawDeployment", "Standard") or _field(obj, "spec", "canary"):
        raise InputError(f"{where}: runs in {mode or 'Standard'} mode; canarist discovers the "
                         "versions of serverless InferenceServices (canaryTrafficPercent) only; "
                         "set versionValues by hand for this one")
    predictor = _field(obj, "status", "components", "predictor")
    if not isinstance(predictor, dict) or not predictor.get("latestCreatedRevision"):
        raise InputError(f"{where}: has no revision yet (status.components.predictor."
                         "latestCreatedRevision is empty); wait until it is Ready")
    created = str(predictor["latestCreatedRevision"])
    ready_revision = str(predictor.get("latestReadyRevision") or "")
    rolled_out = str(predictor.get("latestRolledoutRevision") or "")
    traffic = [t for t in predictor.get("traffic") or [] if isinstance(t, dict)]

    def share(revision: str) -> tuple[int, str, str]:
        percent, host, url = 0, "", ""
        for target in traffic:
            if target.get("revisionName") != revision:
                continue
            percent += int(target.get("percent") or 0)
            if target.get("url") and not url:
                url = str(target["url"])
                host = urlsplit(url).hostname or ""
        return percent, host, url

    versions: list[KServeVersion] = []
    percent, host, url = share(created)
    versions.append(KServeVersion(role="candidate", revision=created, percent=percent,
                                  ready=created == ready_revision, host=host, url=url))
    if rolled_out and rolled_out != created:
        percent, host, url = share(rolled_out)
        versions.append(KServeVersion(role="baseline", revision=rolled_out, percent=percent,
                                      ready=True, host=host, url=url))
    spec_percent = _field(obj, "spec", "predictor", "canaryTrafficPercent")
    since = None
    for condition in _field(obj, "status", "conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "PredictorConfigurationReady" \
                and condition.get("status") == "True":
            since = _time(condition.get("lastTransitionTime"))
    return Discovery(
        isvc=name, namespace=namespace, service=service_of(created),
        generation=int(meta.get("generation") or 0),
        canary_percent=int(spec_percent) if isinstance(spec_percent, int) else None,
        versions=tuple(versions), candidate_ready_since=since,
    )


def version_address(version: KServeVersion, ingress: str) -> tuple[str, str] | None:
    """Where `version` alone answers: (base URL, Host header). Through the ingress, with the
    version's tag host in `Host`; without one, the tag URL itself (no Host needed). None for
    a version without a tag host (it is not routed)."""
    if not version.host:
        return None
    if ingress:
        return ingress.rstrip("/"), version.host
    return version.url.rstrip("/"), ""


def measurement_window(now: datetime, since: datetime | None, *, default_s: int) -> int:
    """Seconds of history to query: since the current split began, bounded to
    [MIN_WINDOW_S, MAX_WINDOW_S]; `default_s` when the start is unknown."""
    if since is None:
        return default_s
    seconds = int((now - since) / timedelta(seconds=1))
    return max(MIN_WINDOW_S, min(MAX_WINDOW_S, seconds))


# -- the rollout policy ----------------------------------------------------------------------

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Policy:
    steps: tuple[int, ...] = DEFAULT_STEPS
    max_holds: int = 10
    """Inconclusive loops in a row at one step before rolling back; 0 holds for ever."""
    min_loops_per_step: int = 1


@dataclass(frozen=True)
class Decision:
    action: RolloutActionKind
    to: int | None
    reason: str


def next_step(steps: Sequence[int], percent: int | None) -> int:
    """The first step above `percent` (100 when none is)."""
    current = percent or 0
    return next((s for s in steps if s > current), 100)


def decide(record: RolloutRecord, verdict: Verdict, reason: str, policy: Policy) -> Decision:
    """What to do with this loop's verdict. `record` holds the state before this loop
    (its `loops_at_step` and `holds` already count this loop)."""
    if verdict == "fail":
        return Decision("rollback", 0, reason)
    if verdict == "pass":
        if record.loops_at_step < policy.min_loops_per_step:
            return Decision("hold", record.percent, f"passed; {record.loops_at_step} of "
                            f"{policy.min_loops_per_step} loops at {record.percent} % so far")
        target = next_step(policy.steps, record.percent)
        return Decision("promote" if target >= 100 else "step", min(target, 100), reason)
    if policy.max_holds and record.holds >= policy.max_holds:
        return Decision("rollback", 0, f"still inconclusive after {record.holds} loops at "
                        f"{record.percent} % (rollout.maxHolds={policy.max_holds}): {reason}")
    return Decision("hold", record.percent, reason)


# -- how a rollout is told -------------------------------------------------------------------

_STATES = {
    "in-progress": "in progress at {percent} %",
    "held": "held at {percent} %",
    "promoted": "promoted at {percent} %",
    "rolled-back": "rolled back to {percent} %",
    "stopped": "stopped at {percent} %",
}


def rollout_headline(record: RolloutRecord) -> str:
    """`Rollout: promoted at 100 % (candidate A over baseline B)`."""
    text = _STATES[record.state].format(percent=record.percent if record.percent is not None
                                        else "?")
    line = f"Rollout: {text} (candidate {record.candidate}, baseline {record.baseline})"
    if record.state == "stopped" and record.reason:
        line += f": {redact_text(record.reason)}"
    return line
