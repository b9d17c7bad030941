"""A small aiohttp server on 127.0.0.1 for the tests that need a real HTTP peer.

`serving(handler)` runs it in the test's own event loop (an async context manager);
`serving_in_thread(handler)` runs it on a thread with its own loop, for code under test that
starts its own loop (`asyncio.run`, a subprocess). Either gives the base URL,
`http://127.0.0.1:<port>`. Every path and method goes to `handler`. A handler still running when
the server stops (a test's `/hang`) is cancelled after half a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answering(body: Any) -> Handler:
    """A handler that answers every request with `body` as JSON."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(body)

    return answer


@contextlib.asynccontextmanager
async def serving(handler: Handler, *, ssl_context: ssl.SSLContext | None = None
                  ) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:  # any awaitable callable
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serving_in_thread(handler: Handler) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    urls: list[str] = []
    failures: list[BaseException] = []
    stop: asyncio.Future[None] = loop.create_future()

    async def main() -> None:
        try:
            async with serving(handler) as url:
                urls.append(url)
                started.set()
                await stop
        except BaseException as exc:
            failures.append(exc)
            started.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10), "the test server did not start within 10 s"
    if failures:
        thread.join(10)
        loop.close()
        raise failures[0]
    try:
        yield urls[0]
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    path_qs: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.path_qs}"

    @property
    def text(self) -> str:
        """The body as text, whatever bytes it holds (latin-1 maps each byte to a character)."""
        return self.body.decode("latin-1")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingServer:
    """The base URL of a running `recording_server` and the requests it kept, in order."""

    base: str = ""
    requests: list[Recorded] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _everything(request: web.Request) -> bool:
    return True


S = TypeVar("S", bound=RecordingServer)


@contextlib.contextmanager
def serve_recording(server: S, respond: Handler, *,
                    keep: Callable[[web.Request], bool] = _everything) -> Iterator[S]:
    """Serve on a thread (`serving_in_thread`); each request that `keep` accepts is added to
    `server.requests` before `respond` answers it; `server.base` is set while it runs."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if keep(request):
            body = await request.read()
            server.requests.append(Recorded(request.method, request.path, request.path_qs,
                                            dict(request.query), dict(request.headers), body))
        return await respond(request)

    with serving_in_thread(handle) as base:
        server.base = base
        yield server
