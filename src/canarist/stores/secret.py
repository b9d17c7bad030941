"""An experiment in a Kubernetes Secret: `<group>` in the namespace, key `experiment.yaml`.

* Reads retry HTTP 403 for up to a minute (RBAC granted at launch takes a moment to reach
  the API server); any other failure is reported at once.
* Writes are updates conditioned on the resourceVersion last seen. When someone else wrote
  in between (409 Conflict), the latest Secret is read again and this writer's changes are
  re-applied onto it by a three-way merge (values appended by both writers are all kept),
  then the update is retried. A Secret that was relaunched (its revision changed) or deleted
  meanwhile is never overwritten: the run stops with an error.
* A run holds a lease on the Secret for as long as it runs: the annotation
  `canarist.dev/run-lease` names the holder (pid and host, i.e. the pod), an id and an
  expiry `LEASE_S` ahead, renewed by every write and by a heartbeat every `RENEW_S`. It is
  taken with a conditional update, so of two runs starting together exactly one gets it; a
  run that finds another's unexpired lease stops at once (exit 3) without writing anything.
  A crashed run's lease lapses `LEASE_S` after its last renewal, so it never blocks for
  longer. Should a stalled run lose its lease, both runs' results are still kept (merge).
* The stored result stays well under Kubernetes' 1 MiB Secret limit however many loops
  run: each metric keeps its latest values only (the reports and SLOs use the latest
  anyway), histograms merge equal buckets, and if the text is still too large the kept
  history shrinks until it fits.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import yaml

from canarist.backends.kube import KubeConflict, KubeError, KubeForbidden, KubeNotFound
from canarist.core.errors import InputError, SpecError, UnavailableError
from canarist.core.experiment import Experiment, experiment_to_data, parse_experiment
from canarist.core.yamltext import dump_yaml, load_yaml

EXPERIMENT_KEY: Final = "experiment.yaml"
REVISION_ANNOTATION: Final = "canarist.dev/revision"
LEASE_ANNOTATION: Final = "canarist.dev/run-lease"
LEASE_S: Final = 60.0
"""How long a run's lease lasts after its last renewal (a crashed run blocks no longer)."""
RENEW_S: Final = 15.0
"""How often a run that has not written meanwhile renews its lease."""
FORBIDDEN_WAIT_S: Final = 60.0
RETRY_INTERVAL_S: Final = 1.0
MAX_CONFLICT_RETRIES: Final = 20
PER_VERSION_KEYS: Final = frozenset(
    {"nonHistMetricValues", "histMetricValues", "SummaryMetricValues", "unavailable"})

log = logging.getLogger("canarist")

Obj = dict[str, Any]


class SecretsApi(Protocol):
    """What the store needs from a Kubernetes client. Failures raise the `KubeError` classes
    of canarist.backends.kube (`KubeNotFound`, `KubeForbidden`, `KubeConflict`, ...)."""

    def get_secret(self, namespace: str, name: str) -> Obj: ...

    def replace_secret(self, namespace: str, name: str, body: Obj) -> Obj: ...


@dataclass(frozen=True)
class HistoryLimits:
    """How much per-loop history the Secret keeps."""

    values: int = 50
    """Latest values kept per Counter/Gauge metric and version."""
    samples: int = 2000
    """Latest observations kept per Sample metric and version."""
    buckets: int = 200
    """Buckets kept per histogram and version (equal buckets are merged first)."""
    max_bytes: int = 700 * 1024
    """Largest `experiment.yaml` text written (Kubernetes allows 1 MiB for the whole Secret)."""


class ExperimentLocked(UnavailableError):
    """Another run holds the experiment's lease."""


@dataclass(frozen=True)
class Lease:
    """Who runs the experiment, until when (unless renewed)."""

    holder: str
    id: str
    expires: datetime

    def text(self) -> str:
        expires = self.expires.astimezone(UTC).isoformat(timespec="milliseconds")
        return json.dumps({"holder": self.holder, "id": self.id,
                           "expires": expires.replace("+00:00", "Z")}, sort_keys=True)

    @classmethod
    def of(cls, secret: Obj | None) -> Lease | None:
        """The lease recorded on `secret`; None if there is none or it does not parse."""
        annotations = ((secret or {}).get("metadata") or {}).get("annotations") or {}
        try:
            data = json.loads(annotations.get(LEASE_ANNOTATION) or "null")
            expires = datetime.fromisoformat(str(data["expires"]).replace("Z", "+00:00"))
            return cls(str(data["holder"]), str(data["id"]), expires.astimezone(UTC))
        except (ValueError, TypeError, KeyError):
            return None


def _holder_died_here(holder: str) -> bool:
    """Whether the lease's holder ran on this host and its process is gone: then its lease
    need not lapse first (a pod's host is its own name, so in a cluster this never holds)."""
    match = re.fullmatch(r"pid (\d+) on host (.+)", holder)
    if match is None or match.group(2) != socket.gethostname():
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SecretStore:
    """Reads and writes one experiment group's Secret; an `ExperimentStore` for the engine."""

    def __init__(self, kube: SecretsApi, namespace: str, group: str, *,
                 limits: HistoryLimits | None = None,
                 forbidden_wait_s: float = FORBIDDEN_WAIT_S,
                 retry_interval_s: float = RETRY_INTERVAL_S,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 lease_s: float = LEASE_S, renew_s: float = RENEW_S,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.kube = kube
        self.namespace = namespace
        self.group = group
        self.limits = limits or HistoryLimits()
        self.forbidden_wait_s = forbidden_wait_s
        self.retry_interval_s = retry_interval_s
        self._sleep = sleep
        self._clock = clock
        self._secret: Obj | None = None  # the Secret as last read or written
        self._server: Obj | None = None  # its experiment data
        self._own: Obj | None = None  # what this writer last meant to store
        self.lease_s = lease_s
        self.renew_s = renew_s
        self._wall = wall
        self.holder = f"pid {os.getpid()} on host {socket.gethostname()}"
        self._lease_id = secrets.token_hex(8)
        self._leased = False  # whether this store means to hold the lease
        self._lost_to: str | None = None
        self._lock = threading.RLock()  # the engine and the heartbeat both write
        self._last_write = 0.0

    @property
    def where(self) -> str:
        return f"experiment group {self.group} in namespace {self.namespace}"

    # -- reading ----------------------------------------------------------------------------

    def read(self) -> Experiment:
        with self._lock:
            secret = self._get(wait_forbidden=True)
            data = self._decode(secret)
            self._secret, self._server, self._own = secret, data, copy.deepcopy(data)
        return parse_experiment(data, source=f"secret {self.namespace}/{self.group}")

    # -- the run lease ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """Hold the experiment's run lease (renewed in the background) for the block; raise
        ExperimentLocked at once if another run holds it."""
        self.acquire()
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True,
                                     name=f"lease {self.namespace}/{self.group}")
        heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            heartbeat.join()
            self.release()

    def acquire(self) -> None:
        """Take the lease with a conditional update; of two runs, exactly one gets it."""
        with self._lock:
            for _attempt in range(MAX_CONFLICT_RETRIES):
                secret = self._get(wait_forbidden=True)
                held = Lease.of(secret)
                if (held is not None and held.id != self._lease_id
                        and held.expires > self._wall() and not _holder_died_here(held.holder)):
                    raise ExperimentLocked(
                        f"{self.where} (Secret {self.namespace}/{self.group}) is being run by "
                        f"another canarist run ({held.holder[:120]}, lease until "
                        f"{_iso(held.expires)} unless renewed); this one stops without changing it")
                self._secret, self._leased = secret, True
                try:
                    self._secret = self._replace(self._body(secret, None))
                except _Conflict:
                    continue
                except BaseException:
                    self._leased = False
                    raise
                self._last_write = self._clock()
                log.debug("holding the run lease on %s until %s", self.where,
                          _iso(self._wall() + timedelta(seconds=self.lease_s)))
                return
            self._leased = False
        raise UnavailableError(f"unable to update secret {self.group} in namespace "
                               f"{self.namespace}: too many concurrent writers")

    def release(self) -> None:
        """Give the lease up (a failure only logs: the lease lapses by itself)."""
        with self._lock:
            if not self._leased:
                return
            self._leased = False
            try:
                self._update(None)
            except Exception as error:  # the lease lapses after lease_s anyway
                log.warning("could not release the run lease on %s: %s", self.where,
                            getattr(error, "message", None) or str(error))

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.renew_s):
            with self._lock:
                if not self._leased or self._clock() - self._last_write < self.renew_s / 2:
                    continue  # a write renewed it
                try:
                    self._update(None)
                except Exception as error:  # the next write of the run meets it too
                    log.warning("could not renew the run lease on %s: %s", self.where,
                                getattr(error, "message", None) or str(error))

    def _get(self, *, wait_forbidden: bool) -> Obj:
        deadline = self._clock() + (self.forbidden_wait_s if wait_forbidden else 0.0)
        while True:
            try:
                return self.kube.get_secret(self.namespace, self.group)
            except KubeNotFound:
                raise InputError(f"experiment group {self.group} not found in namespace "
                                 f"{self.namespace}") from None
            except KubeError as error:
                if isinstance(error, KubeForbidden) and self._clock() < deadline:
                    log.debug("not yet allowed to read secret %s/%s; retrying", self.namespace,
                              self.group)
                    self._sleep(self.retry_interval_s * random.uniform(0.9, 1.1))
                    continue
                if not error.status:
                    raise
                raise UnavailableError(f"unable to get secret {self.group} in namespace "
                                       f"{self.namespace}: {error.detail}") from None

    def _decode(self, secret: Obj) -> Obj:
        source = f"secret {self.namespace}/{self.group}"
        text: str | None = None
        encoded = (secret.get("data") or {}).get(EXPERIMENT_KEY)
        if encoded is not None:
            try:
                text = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise SpecError(f"{source}: {EXPERIMENT_KEY} is not base64-encoded UTF-8") from None
        else:
            text = (secret.get("stringData") or {}).get(EXPERIMENT_KEY)
        if text is None:
            raise SpecError(f"{source}: no {EXPERIMENT_KEY} key")
        data = _load(text, source=f"{source}:{EXPERIMENT_KEY}")
        if not isinstance(data, dict):
            raise SpecError(f"{source}: {EXPERIMENT_KEY} is not a mapping with spec and result")
        return data

    # -- writing ----------------------------------------------------------------------------

    def write(self, experiment: Experiment) -> None:
        own = experiment_to_data(experiment)
        with self._lock:
            if self._secret is None or self._server is None:
                self.read()
            self._update(own)

    def _update(self, own: Obj | None) -> None:
        """Write `own` (our changes merged onto the Secret as it is now; None: its data as
        it is) with the lease as this store holds it; on a conflict, re-read and retry."""
        for _attempt in range(MAX_CONFLICT_RETRIES):
            assert self._secret is not None
            merged: Obj | None = None
            text: str | None = None
            if own is not None:
                assert self._server is not None and self._own is not None
                merged, text = compact_text(merge(self._own, own, self._server), self.limits)
            try:
                written = self._replace(self._body(self._secret, text))
            except _Conflict:
                log.debug("secret %s/%s changed meanwhile; merging", self.namespace, self.group)
                self._refresh()
                continue
            self._secret = written
            if own is not None:
                self._server, self._own = merged, own
            self._last_write = self._clock()
            return
        raise UnavailableError(f"unable to update secret {self.group} in namespace "
                               f"{self.namespace}: too many concurrent writers")

    def _replace(self, body: Obj) -> Obj:
        """One conditional update; _Conflict on 409."""
        try:
            return self.kube.replace_secret(self.namespace, self.group, body)
        except KubeConflict:
            raise _Conflict from None
        except KubeNotFound:
            raise UnavailableError(f"{self.where} was deleted; this run stops") from None
        except KubeError as error:
            if not error.status:
                raise
            raise UnavailableError(f"unable to update secret {self.group} in namespace "
                                   f"{self.namespace}: {error.detail}") from None

    def _refresh(self) -> None:
        try:
            latest = self._get(wait_forbidden=False)
        except InputError:
            raise UnavailableError(f"{self.where} was deleted; this run stops") from None
        assert self._secret is not None
        if _revision(latest) != _revision(self._secret):
            raise UnavailableError(
                f"{self.where} was relaunched (revision {_revision(self._secret)} -> "
                f"{_revision(latest)}); this run stops")
        self._secret = latest
        if self._server is not None:
            self._server = self._decode(latest)

    def _body(self, secret: Obj, text: str | None) -> Obj:
        """The Secret to write: `text` as its experiment (None: its data as it is), its
        metadata kept, and the lease renewed, given up or left to its holder."""
        meta = secret.get("metadata") or {}
        kept = {key: copy.deepcopy(meta[key]) for key in (
            "name", "namespace", "labels", "annotations", "resourceVersion", "ownerReferences")
            if meta.get(key)}
        kept["name"] = self.group
        annotations: dict[str, str] = kept.get("annotations") or {}
        held = Lease.of(secret)
        if held is not None and held.id != self._lease_id:
            if self._leased and self._lost_to != held.holder:
                self._lost_to = held.holder
                log.warning("the run lease on %s passed to %s (it was not renewed for %gs); "
                            "both runs' results are kept", self.where, held.holder, self.lease_s)
        elif self._leased:
            expires = self._wall() + timedelta(seconds=self.lease_s)
            annotations[LEASE_ANNOTATION] = Lease(self.holder, self._lease_id, expires).text()
        else:
            annotations.pop(LEASE_ANNOTATION, None)
        if annotations:
            kept["annotations"] = annotations
        else:
            kept.pop("annotations", None)
        if text is None:
            data = dict(secret.get("data") or {})
            string_data = (secret.get("stringData") or {}).get(EXPERIMENT_KEY)
            if EXPERIMENT_KEY not in data and isinstance(string_data, str):
                data[EXPERIMENT_KEY] = base64.b64encode(string_data.encode()).decode("ascii")
        else:
            data = {EXPERIMENT_KEY: base64.b64encode(text.encode("utf-8")).decode("ascii")}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": kept,
                "type": secret.get("type") or "Opaque", "data": data}


class _Conflict(Exception):
    """The Secret changed since it was read (HTTP 409)."""


_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", None)


def _load(text: str, *, source: str) -> Any:
    """YAML text to data, within load_yaml's bounds (libyaml when present)."""
    return load_yaml(text, source=source)


def _dump(data: Obj) -> str:
    """Data to YAML text in dump_yaml's layout, with libyaml when present."""
    if _FAST_DUMPER is None:
        return dump_yaml(data)
    return str(yaml.dump(data, Dumper=_LiteralDumper, sort_keys=True, default_flow_style=False,
                         allow_unicode=True, width=1_000_000))


if _FAST_DUMPER is not None:
    class _LiteralDumper(_FAST_DUMPER):  # type: ignore[misc]
        """Multi-line strings as literal blocks, as dump_yaml writes them."""

    def _literal(dumper: Any, value: str) -> Any:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                       style="|" if "\n" in value else None)

    _LiteralDumper.add_representer(str, _literal)


def _revision(secret: Obj) -> str:
    return str(((secret.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION, ""))


# -- three-way merge ----------------------------------------------------------------------

_MISSING: Final[Any] = object()


def merge(base: Any, ours: Any, theirs: Any, key: str = "") -> Any:
    """Our changes (from `base` to `ours`) applied onto `theirs`.

    Maps merge key by key; what we appended to a list is appended to theirs; per-version
    lists merge element by element; anything else both sides changed takes our value.
    """
    if _same(ours, base):
        return theirs
    if _same(theirs, base) or _same(theirs, ours):
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        base_map = base if isinstance(base, dict) else {}
        merged: Obj = {}
        for name in [*theirs, *(k for k in ours if k not in theirs)]:
            value = merge(base_map.get(name, _MISSING), ours.get(name, _MISSING),
                          theirs.get(name, _MISSING), str(name))
            if value is not _MISSING:
                merged[name] = value
        return merged
    if isinstance(ours, list) and isinstance(theirs, list):
        base_list = base if isinstance(base, list) else []
        if key in PER_VERSION_KEYS and len(ours) == len(theirs):
            return [merge(base_list[i] if i < len(base_list) else _MISSING, o, t)
                    for i, (o, t) in enumerate(zip(ours, theirs, strict=True))]
        size = len(base_list)
        if ours[:size] == base_list:
            return theirs + ours[size:]
    return ours


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return bool(a == b)


# -- bounded history ----------------------------------------------------------------------


def compact(data: Obj, limits: HistoryLimits) -> Obj:
    """`data` with per-loop history trimmed so that its YAML text fits `limits.max_bytes`."""
    return compact_text(data, limits)[0]


def compact_text(data: Obj, limits: HistoryLimits) -> tuple[Obj, str]:
    """`compact`, and the YAML text of the result."""
    current = limits
    while True:
        trimmed = _trim(data, current)
        text = _dump(trimmed)
        if len(text.encode("utf-8")) <= current.max_bytes:
            return trimmed, text
        if current.values == 1 and current.samples == 1 and current.buckets == 1:
            log.warning("experiment is larger than %d bytes even without history",
                        current.max_bytes)
            return trimmed, text
        current = HistoryLimits(values=max(1, current.values // 2),
                                samples=max(1, current.samples // 2),
                                buckets=max(1, current.buckets // 2),
                                max_bytes=current.max_bytes)


def _trim(data: Obj, limits: HistoryLimits) -> Obj:
    insights = (data.get("result") or {}).get("insights")
    if not isinstance(insights, dict):
        return data
    out = copy.deepcopy(data)
    insights = out["result"]["insights"]
    info = insights.get("metricsInfo") or {}
    for per_version in insights.get("nonHistMetricValues") or []:
        for name, values in list(per_version.items()):
            kind = (info.get(name) or {}).get("type")
            keep = limits.samples if kind == "Sample" else limits.values
            if isinstance(values, list) and len(values) > keep:
                per_version[name] = values[-keep:]
    for per_version in insights.get("histMetricValues") or []:
        for name, buckets in list(per_version.items()):
            if isinstance(buckets, list):
                per_version[name] = _merge_buckets(buckets, limits.buckets)
    return out


def _merge_buckets(buckets: list[Obj], most: int) -> list[Obj]:
    """Equal buckets summed; then neighbours joined until at most `most` remain."""
    totals: dict[tuple[float, float], int] = {}
    for bucket in buckets:
        key = (float(bucket["lower"]), float(bucket["upper"]))
        totals[key] = totals.get(key, 0) + int(bucket["count"])
    ordered = [{"lower": lo, "upper": hi, "count": n} for (lo, hi), n in sorted(totals.items())]
    while len(ordered) > most:
        joined: list[Obj] = []
        for index in range(0, len(ordered), 2):
            pair = ordered[index:index + 2]
            joined.append({"lower": min(b["lower"] for b in pair),
                           "upper": max(b["upper"] for b in pair),
                           "count": sum(b["count"] for b in pair)})
        ordered = joined
    if len(ordered) == len(buckets) and all(
            float(a["lower"]) == b["lower"] and float(a["upper"]) == b["upper"]
            for a, b in zip(buckets, ordered, strict=True)):
        return buckets
    return ordered
