"""The sandbox's object store: Kubernetes objects in memory, with Kubernetes' update rules.

The API server serves it over HTTP; the sandbox's controllers (InferenceServices, Jobs,
CronJobs) read it and write status through it, and hear of every change through `watch`.
Objects are plain dicts in the wire format (`apiVersion`, `kind`, `metadata`, `spec`,
`status`). Every write bumps a store-wide resourceVersion; an update that names a stale
`metadata.resourceVersion` is a conflict, as in Kubernetes.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Obj = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Listener = Callable[[EventType, Obj], None]
Objects = list[Obj]

log = logging.getLogger("canarist.sandbox")


@dataclass(frozen=True)
class ResourceKey:
    """Which collection an object lives in: API group/version and plural resource name."""

    group: str  # "" for the core group
    version: str
    resource: str  # plural, e.g. "inferenceservices"


class StoreError(Exception):
    """An API-level failure; `code` and `reason` map onto a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def qualified(key: ResourceKey) -> str:
    """The resource as Kubernetes names it in messages: `secrets`, `jobs.batch`."""
    return f"{key.resource}.{key.group}" if key.group else key.resource


def not_found(key: ResourceKey, name: str) -> StoreError:
    return StoreError(404, "NotFound", f'{qualified(key)} "{name}" not found')


class ObjectStore:
    """Thread-safe in-memory objects keyed by (resource, namespace, name).

    Cluster-scoped objects (namespaces) use the namespace "".
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[ResourceKey, str, str], Obj] = {}
        self._version = 0
        self._listeners: list[tuple[ResourceKey | None, Listener]] = []
        self._pending: deque[tuple[ResourceKey, EventType, Obj]] = deque()
        self._delivering = False

    @property
    def resource_version(self) -> int:
        return self._version

    def watch(self, listener: Listener, key: ResourceKey | None = None) -> Callable[[], None]:
        """Call `listener(event, object)` after every change (of `key`'s resource, if given).

        Listeners run on the writer's thread after the write, one event at a time and in
        resourceVersion order, holding the store's lock (so a write that happens inside a
        listener is delivered after the event being delivered). They must be quick and must
        not block on other threads; an exception from a listener is logged and ignored.
        Returns a function that removes the listener.
        """
        entry = (key, listener)
        with self._lock:
            self._listeners.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return remove

    def get(self, key: ResourceKey, namespace: str, name: str) -> Obj:
        with self._lock:
            obj = self._objects.get((key, namespace, name))
            if obj is None:
                raise not_found(key, name)
            return copy.deepcopy(obj)

    def list(self, key: ResourceKey, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        return self.list_with_version(key, namespace, label_selector)[0]

    def list_with_version(self, key: ResourceKey, namespace: str | None = None,
                          label_selector: dict[str, str] | None = None) -> tuple[Objects, int]:
        """The objects and the store's resourceVersion they are consistent with."""
        with self._lock:
            items = [
                copy.deepcopy(obj) for (k, ns, _), obj in sorted(
                    self._objects.items(), key=lambda item: (item[0][1], item[0][2]))
                if k == key and (namespace is None or ns == namespace)
                and _matches(obj, label_selector)
            ]
            return items, self._version

    def create(self, key: ResourceKey, namespace: str, obj: Obj) -> Obj:
        name = obj.get("metadata", {}).get("name")
        if not name:
            raise StoreError(422, "Invalid", "metadata.name: Required value")
        with self._lock:
            if (key, namespace, name) in self._objects:
                raise StoreError(409, "AlreadyExists", f'{qualified(key)} "{name}" already exists')
            stored = copy.deepcopy(obj)
            meta = stored.setdefault("metadata", {})
            meta["namespace"] = namespace
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            meta["resourceVersion"] = self._bump()
            self._objects[(key, namespace, name)] = stored
            result = copy.deepcopy(stored)
            self._notify(key, "ADDED", result)
        return result

    def update(self, key: ResourceKey, namespace: str, obj: Obj, *, status: bool = False) -> Obj:
        """Replace an object (or only its status). A stale resourceVersion is a 409 Conflict."""
        name = obj.get("metadata", {}).get("name", "")
        with self._lock:
            current = self._objects.get((key, namespace, name))
            if current is None:
                raise not_found(key, name)
            wanted = obj.get("metadata", {}).get("resourceVersion")
            if wanted not in (None, "") and str(wanted) != current["metadata"]["resourceVersion"]:
                raise StoreError(409, "Conflict",
                                 f'Operation cannot be fulfilled on {qualified(key)} "{name}": '
                                 "the object has been modified; please apply your changes to "
                                 "the latest version and try again")
            stored = copy.deepcopy(current)
            if status:
                stored["status"] = copy.deepcopy(obj.get("status"))
            else:
                new = copy.deepcopy(obj)
                meta = new.setdefault("metadata", {})
                for field in ("uid", "creationTimestamp", "namespace", "generation"):
                    meta[field] = current["metadata"].get(field)
                if new.get("spec") != current.get("spec"):
                    meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
                if "status" in current and "status" not in obj:
                    new["status"] = current["status"]
                stored = new
            stored["metadata"]["resourceVersion"] = self._bump()
            self._objects[(key, namespace, name)] = stored
            result = copy.deepcopy(stored)
            self._notify(key, "MODIFIED", result)
        return result

    def delete(self, key: ResourceKey, namespace: str, name: str) -> Obj:
        """Remove an object; the result (and the DELETED event) carry the deletion's version."""
        with self._lock:
            obj = self._objects.pop((key, namespace, name), None)
            if obj is None:
                raise not_found(key, name)
            obj.setdefault("metadata", {})["resourceVersion"] = self._bump()
            self._notify(key, "DELETED", obj)
            return copy.deepcopy(obj)

    def _bump(self) -> str:
        self._version += 1
        return str(self._version)

    def _notify(self, key: ResourceKey, event: EventType, obj: Obj) -> None:
        """Deliver events in order; called with the lock held, right after the write."""
        self._pending.append((key, event, copy.deepcopy(obj)))
        if self._delivering:
            return  # a listener wrote: its event follows once the current one is delivered
        self._delivering = True
        try:
            while self._pending:
                k, ev, item = self._pending.popleft()
                for wanted, listener in list(self._listeners):
                    if wanted is None or wanted == k:
                        try:
                            listener(ev, copy.deepcopy(item))
                        except Exception:
                            log.exception("store listener failed on %s %s", ev, qualified(k))
        finally:
            self._delivering = False


def _matches(obj: Obj, selector: dict[str, str] | None) -> bool:
    if not selector:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
