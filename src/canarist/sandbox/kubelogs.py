"""Pod logs for the sandbox's Kubernetes API: container output by pod and container, and
`pods/<name>/log` (tail, byte limit, follow until the pod ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from canarist.sandbox.kubewire import ApiError, Target, read_object
from canarist.sandbox.store import ObjectStore, StoreError

Obj = dict[str, Any]


class PodLogs:
    """Container output the API serves at `pods/<name>/log`, per pod and container.

    Text can be set or appended, or a file can be attached and is read on every request
    (how the sandbox's job runner exposes a process's output).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: dict[tuple[str, str, str], str] = {}
        self._files: dict[tuple[str, str, str], Path] = {}

    def set(self, namespace: str, pod: str, text: str, container: str = "") -> None:
        with self._lock:
            self._text[(namespace, pod, container)] = text

    def append(self, namespace: str, pod: str, text: str, container: str = "") -> None:
        with self._lock:
            key = (namespace, pod, container)
            self._text[key] = self._text.get(key, "") + text

    def attach(self, namespace: str, pod: str, path: str | Path, container: str = "") -> None:
        with self._lock:
            self._files[(namespace, pod, container)] = Path(path)

    def forget(self, namespace: str, pod: str) -> None:
        with self._lock:
            for table in (self._text, self._files):
                for key in [k for k in table if k[:2] == (namespace, pod)]:
                    del table[key]

    def read(self, namespace: str, pod: str, container: str = "") -> str:
        with self._lock:
            for key in ((namespace, pod, container), (namespace, pod, "")):
                if key in self._files:
                    try:
                        return self._files[key].read_text(errors="replace")
                    except OSError:
                        return ""
                if key in self._text:
                    return self._text[key]
        return ""


async def serve_log(request: web.Request, target: Target, store: ObjectStore, pod_logs: PodLogs,
                    stopping: asyncio.Event) -> web.StreamResponse:
    """`pods/<name>/log`: the container's output so far, or followed until the pod ends."""
    assert target.name is not None
    namespace = target.namespace or ""
    pod = read_object(store, Target(target.resource, target.namespace, target.name))
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    container = request.query.get("container", "")
    if container and containers and container not in containers:
        raise ApiError(400, "BadRequest",
                       f"container {container} is not valid for pod {target.name}")
    if not container and len(containers) > 1:
        raise ApiError(400, "BadRequest", f"a container name must be specified for pod "
                       f"{target.name}, choose one of: [{' '.join(containers)}]")
    container = container or (containers[0] if containers else "")
    tail = request.query.get("tailLines")
    limit = request.query.get("limitBytes")

    def current() -> str:
        text = pod_logs.read(namespace, target.name or "", container)
        if tail is not None and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail):]) if int(tail) else ""
        if limit is not None and limit.isdigit():
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return text

    if request.query.get("follow") != "true":
        return web.Response(text=current(), content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        while True:
            text = pod_logs.read(namespace, target.name or "", container)
            if sent == 0 and tail is not None:
                chunk = current()
                sent = len(text)
            else:
                chunk = text[sent:]
                sent = len(text)
            if chunk:
                await response.write(chunk.encode())
            try:
                phase = (store.get(target.resource.key, namespace, target.name or "")
                         .get("status") or {}).get("phase")
            except StoreError:
                break
            if phase in ("Succeeded", "Failed") or stopping.is_set():
                rest = pod_logs.read(namespace, target.name or "", container)[sent:]
                if rest:
                    await response.write(rest.encode())
                break
            await asyncio.sleep(0.2)
        await response.write_eof()
    return response
