"""WATCH for the sandbox's Kubernetes API: the store's recent events, kept so a watch can
resume from a resourceVersion, fanned out to open watches as newline-delimited JSON, with
objects entering or leaving a selection sent as ADDED or DELETED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from canarist.sandbox import kuberesources
from canarist.sandbox.kuberesources import RESOURCES
from canarist.sandbox.kubewire import ApiError, Target, as_served
from canarist.sandbox.store import EventType, ObjectStore, ResourceKey

Obj = dict[str, Any]
DEFAULT_WATCH_TIMEOUT_S = 1800.0


@dataclass
class Event:
    rv: int
    key: ResourceKey
    type: EventType
    obj: Obj


@dataclass(eq=False)
class Watcher:
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


class Watches:
    """The store's recent events (to resume a watch from a resourceVersion) and the open
    watches they are fanned out to."""

    def __init__(self, store: ObjectStore, history: int) -> None:
        self.store = store
        self._history: deque[Event] = deque(maxlen=history)
        self._lock = threading.Lock()
        self._oldest_rv = store.resource_version
        self._watchers: set[Watcher] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()

    def begin(self, loop: asyncio.AbstractEventLoop, stopping: asyncio.Event) -> None:
        """Serve watches on `loop` until `stopping` is set."""
        self._loop = loop
        self._stopping = stopping

    def end(self) -> None:
        """End every open watch."""
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)

    def on_change(self, event: EventType, obj: Obj) -> None:
        """Store listener (writer's thread, in resourceVersion order): record and fan out."""
        key = key_of(obj)
        if key is None:
            return
        try:
            rv = int(obj["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return
        item = Event(rv, key, event, obj)
        with self._lock:
            if len(self._history) == self._history.maxlen:
                self._oldest_rv = self._history[0].rv
            self._history.append(item)
            watchers = list(self._watchers)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for watcher in watchers:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(watcher.queue.put_nowait, item)

    async def watch(self, request: web.Request, target: Target,
                    matches: Callable[[Obj], bool]) -> web.StreamResponse:
        """A WATCH: the objects as they are (or the events since a resourceVersion), then
        every change until the timeout, the client leaves or the server stops."""
        namespace = target.namespace if target.resource.namespaced else ""
        key = target.resource.key
        timeout = _float(request.query.get("timeoutSeconds"), DEFAULT_WATCH_TIMEOUT_S)
        since = request.query.get("resourceVersion", "")
        watcher = Watcher()
        with self._lock:
            self._watchers.add(watcher)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            initial: list[Event] = []
            if since in ("", "0"):
                items, last = self.store.list_with_version(key, namespace)
                initial = [Event(last, key, "ADDED", o) for o in items]
            else:
                try:
                    last = int(since)
                except ValueError:
                    raise ApiError(400, "BadRequest", f"invalid resource version: {since}") from None
                with self._lock:
                    if last < self._oldest_rv:
                        gone = ApiError(410, "Expired", f"too old resource version: {last} "
                                        f"({self._oldest_rv})")
                        await _send(response, "ERROR", gone.status())
                        return response
                    initial = [e for e in self._history if e.rv > last and e.key == key]
                    if initial:
                        last = initial[-1].rv
            stream = _Filter(matches, namespace, complete=since in ("", "0"))
            for event in initial:
                await stream.send(response, event)
            deadline = time.monotonic() + timeout
            while not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    arrived = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    break
                if arrived is None:
                    break
                if arrived.key != key or arrived.rv <= last:
                    continue
                last = arrived.rv
                await stream.send(response, arrived)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self._lock:
                self._watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


class _Filter:
    """Selection for one watch: objects entering or leaving the selection are sent as ADDED
    or DELETED, as the API server's watch cache does."""

    def __init__(self, matches: Callable[[Obj], bool], namespace: str | None, *,
                 complete: bool) -> None:
        self.matches = matches
        self.namespace = namespace
        self.complete = complete  # every object's state is known (the watch began with a list)
        self.inside: set[tuple[str, str]] = set()
        self.outside: set[tuple[str, str]] = set()

    def classify(self, event: Event) -> str | None:
        meta = event.obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return None
        ident = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        was_inside = ident in self.inside
        if event.type == "DELETED":
            known_outside = ident in self.outside or (self.complete and not was_inside)
            self.inside.discard(ident)
            self.outside.discard(ident)
            return None if known_outside or not (was_inside or self.matches(event.obj)) else "DELETED"
        if not self.matches(event.obj):
            self.inside.discard(ident)
            self.outside.add(ident)
            return "DELETED" if was_inside else None
        entered = not was_inside and (event.type == "ADDED" or self.complete or ident in self.outside)
        self.outside.discard(ident)
        self.inside.add(ident)
        return "ADDED" if entered else "MODIFIED"

    async def send(self, response: web.StreamResponse, event: Event) -> None:
        kind = self.classify(event)
        if kind is None:
            return
        resource = kuberesources.by_key(event.key)
        body = as_served(resource, event.obj) if resource else event.obj
        await _send(response, kind, body)


async def _send(response: web.StreamResponse, kind: str, obj: Obj) -> None:
    line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
    await response.write(line.encode())


def key_of(obj: Obj) -> ResourceKey | None:
    api_version = str(obj.get("apiVersion", ""))
    kind = obj.get("kind")
    group, _, version = api_version.rpartition("/")
    for resource in RESOURCES:
        if resource.kind == kind and resource.group == group and resource.version == version:
            return resource.key
    return None


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default
