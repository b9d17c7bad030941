"""A stand-in for the web services the docs send to (Slack, a team's webhook, a template
host): on 127.0.0.1, it answers every request with 200 and keeps it, and serves the
templates a page shows (`GET …/<name>.tpl`) from the page's working directory."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class Receiver:
    url: str = ""
    files: Path | None = None
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, body))
        name = request.path.rsplit("/", 1)[-1]
        if request.method == "GET" and name.endswith(".tpl") and self.files is not None:
            path = self.files / name
            if path.is_file():
                return web.Response(text=path.read_text())
            return web.Response(status=404, text=f"no template {name}")
        return web.json_response({"ok": True})


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", receiver.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.url = f"http://127.0.0.1:{port}"
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
