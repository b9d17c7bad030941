"""A controllable HTTP/1.1 server for load-generator tests. It binds 127.0.0.1 only.

Any path answers; the query string chooses the behaviour:

    status=<code>            answer with that status (default 200)
    delay_ms=<ms>            answer after that many milliseconds
    size=<n>                 body of n bytes (default: a 22-byte JSON)
    body=<text>              this text as the body (text/html when it starts with `<`,
                             else text/plain)
    chunked=1                send the body with chunked transfer encoding, in 3 chunks
    close=1                  answer with `Connection: close` and close the connection
    reset=1                  reset the connection (RST) instead of answering
    reset_every=<n>          reset on every n-th request to this path, answer the others
    hang=1                   never answer
    stall_after=<n>&stall_ms=<ms>
                             when the n-th request carrying these parameters arrives, the
                             whole server stalls for <ms>: no request is answered until then
                             (once per server)

`GET /__stats` returns JSON: `requests` (answered or not, stats calls excluded), `by_path`,
and `last` (method, headers, body of the last request); `POST /__stats/clear` resets them.

In-process use: `with ThreadedHttpTarget() as url: ...` (its own thread and event loop).
Subprocess: `python tests/servers/http_target.py [--port N] [--cert C --key K]` prints
`PORT <n>` once it listens and stops on SIGTERM/SIGINT; `with target_process() as url: ...`
wraps that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from aiohttp import web

JSON_BODY = b'{"predictions":[1.0]}\n'


class _State:
    def __init__(self) -> None:
        self.requests = 0
        self.by_path: dict[str, int] = {}
        self.last: dict[str, Any] = {}
        self.stall_seen = 0
        self.stalled = False
        self.pause_until = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "by_path": self.by_path, "last": self.last}


def _abort_with_reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def make_app() -> web.Application:
    state = _State()

    async def stats(request: web.Request) -> web.Response:
        if request.method == "POST":
            state.__init__()  # type: ignore[misc]
        return web.json_response(state.as_json())

    async def handle(request: web.Request) -> web.StreamResponse:
        q = request.query
        body = await request.read()
        state.requests += 1
        state.by_path[request.path] = state.by_path.get(request.path, 0) + 1
        state.last = {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": body.decode("latin-1"),
        }
        loop = asyncio.get_running_loop()
        if "stall_after" in q and not state.stalled:
            state.stall_seen += 1
            if state.stall_seen >= int(q["stall_after"]):
                state.stalled = True
                state.pause_until = loop.time() + float(q.get("stall_ms", "200")) / 1000
        if state.pause_until > loop.time():
            await asyncio.sleep(state.pause_until - loop.time())
        if "hang" in q:
            await asyncio.sleep(3600)
        if "delay_ms" in q:
            await asyncio.sleep(float(q["delay_ms"]) / 1000)
        every = int(q.get("reset_every", "0"))
        if "reset" in q or (every and state.by_path[request.path] % every == 0):
            _abort_with_reset(request)
            return web.Response(status=500)
        status = int(q.get("status", "200"))
        payload = b"x" * int(q["size"]) if "size" in q else JSON_BODY
        content_type = "application/json"
        if "body" in q:
            payload = q["body"].encode()
            content_type = "text/html" if q["body"].startswith("<") else "text/plain"
        headers = {"Connection": "close"} if "close" in q else {}
        if "chunked" in q:
            resp = web.StreamResponse(status=status, headers=headers)
            resp.enable_chunked_encoding()
            resp.content_type = content_type
            await resp.prepare(request)
            third = max(1, len(payload) // 3)
            for i in range(0, len(payload), third):
                await resp.write(payload[i : i + third])
            await resp.write_eof()
            return resp
        return web.Response(
            status=status, body=payload, content_type=content_type, headers=headers
        )

    app = web.Application()
    app.router.add_route("*", "/__stats", stats)
    app.router.add_route("*", "/__stats/clear", stats)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _serve(port: int, ready: Any, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(
        make_app(),
        access_log=None,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, ssl_context=ssl_context)
    await site.start()
    ready(int(runner.addresses[0][1]))
    return runner


class ThreadedHttpTarget:
    """The server on its own thread and event loop; the context value is its base URL."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> str:
        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def main() -> None:
                self._stop = asyncio.Event()

                def ready(port: int) -> None:
                    self.port = port
                    self._started.set()

                runner = await _serve(self.port, ready)
                try:
                    await self._stop.wait()
                finally:
                    await runner.cleanup()

            try:
                loop.run_until_complete(main())
            finally:
                self._started.set()
                loop.close()

        self._thread = threading.Thread(target=run, name="http-target", daemon=True)
        self._thread.start()
        self._started.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


@contextlib.contextmanager
def target_process(port: int = 0, tls: tuple[str, str] | None = None) -> Iterator[str]:
    """Run the server as a subprocess; yield its base URL; always stop it.

    `tls` is (certificate file, key file): serve https instead of http.
    """
    argv = [sys.executable, __file__, "--port", str(port)]
    if tls is not None:
        argv += ["--cert", tls[0], "--key", tls[1]]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"http_target did not start: {line!r}")
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{int(line.split()[1])}"
    finally:
        from tests.helpers import stop_process  # here: this file also runs as a script

        stop_process(proc)


def get_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "/__stats", timeout=10) as resp:
        data: dict[str, Any] = json.load(resp)
    return data


def clear_stats(base_url: str) -> None:
    req = urllib.request.Request(base_url + "/__stats/clear", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10):
        pass


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", help="serve https with this certificate (PEM)")
    parser.add_argument("--key", help="private key of --cert (PEM)")
    args = parser.parse_args(argv)
    ssl_context = None
    if args.cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.cert, args.key)
    try:
        import uvloop

        runner_factory: Any = uvloop.new_event_loop
    except ImportError:
        runner_factory = asyncio.new_event_loop
    loop = runner_factory()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def ready(port: int) -> None:
        print(f"PORT {port}", flush=True)

    async def run() -> None:
        runner = await _serve(args.port, ready, ssl_context)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


if __name__ == "__main__":
    main()
