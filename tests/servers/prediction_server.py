"""A model server whose predictions tests choose, for the agreement task. Binds 127.0.0.1 only.

It answers KServe's V1 (`POST /v1/models/<name>:predict`) and V2 REST
(`POST /v2/models/<name>/infer`) with predictions computed from each instance (a list of
numbers), chosen by the model name:

    sum               the sum of the instance's numbers (a float)
    sum-plus-<d>      that sum plus d
    proba             three scores, the highest at index (sum mod 3): a vector
    argmax            that index, as a class (an integer)
    coin              class 0 or 1 at random (seeded): a model that does not answer the same
                      way twice
    wrong-count       one prediction too many
    no-predictions    V1: `{"outputs": []}`; V2: `{"model_name": ...}` with no outputs
    not-json          a text body
    error             HTTP 500 with `{"error": "model exploded"}`

`GET /payload.jsonl` answers `payload`. Every prediction request is recorded (`requests`:
path, Host header, arrival time, body); use it as
`with PredictionServer() as server: server.url`.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    path: str
    host: str
    time: float
    body: Any = None


@dataclass
class PredictionServer:
    seed: int = 1
    requests: list[Seen] = field(default_factory=list)
    port: int = 0
    payload: str = ""
    """What `GET /payload.jsonl` answers."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def predict(self, model: str, row: list[Any]) -> Any:
        total = float(sum(row))
        if model == "sum":
            return round(total, 6)
        if model.startswith("sum-plus-"):
            return round(total + float(model.removeprefix("sum-plus-")), 6)
        if model == "proba":
            scores = [0.1, 0.1, 0.1]
            scores[int(total) % 3] = 0.8
            return scores
        if model == "argmax":
            return int(total) % 3
        if model == "coin":
            return self._rng.randint(0, 1)
        return 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Seen(request.path, request.headers.get("Host", ""), time.monotonic(),
                                  body))
        v2 = request.path.startswith("/v2/")
        model = request.match_info["model"]
        if v2:
            tensor = body["inputs"][0]
            width = tensor["shape"][1] if len(tensor["shape"]) > 1 else 1
            rows = [tensor["data"][i:i + width] for i in range(0, len(tensor["data"]), width)]
        else:
            rows = body["instances"]
        if model == "error":
            return web.json_response({"error": "model exploded"}, status=500)
        if model == "not-json":
            return web.Response(text="<html>maintenance</html>")
        if model == "no-predictions":
            return web.json_response({"model_name": model} if v2 else {"outputs": []})
        found = [self.predict(model, row) for row in rows]
        if model == "wrong-count":
            found.append(0)
        if not v2:
            return web.json_response({"predictions": found})
        vector = isinstance(found[0], list)
        data = [x for item in found for x in item] if vector else found
        shape = [len(found), 3] if vector else [len(found)]
        datatype = "INT64" if all(isinstance(x, int) for x in data) else "FP64"
        return web.json_response({"model_name": model, "outputs": [
            {"name": "output-0", "shape": shape, "datatype": datatype, "data": data}]})

    async def serve_payload(self, request: web.Request) -> web.Response:
        return web.Response(text=self.payload)

    def __enter__(self) -> PredictionServer:
        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def main() -> None:
                self._stop = asyncio.Event()
                app = web.Application()
                app.router.add_post(r"/v1/models/{model}:predict", self.handle)
                app.router.add_post(r"/v2/models/{model}/infer", self.handle)
                app.router.add_get("/payload.jsonl", self.serve_payload)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", self.port)
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self._started.set()
                try:
                    await self._stop.wait()
                finally:
                    await runner.cleanup()

            try:
                loop.run_until_complete(main())
            finally:
                self._started.set()
                loop.close()

        self._thread = threading.Thread(target=run, name="prediction-server", daemon=True)
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


def v1(server: PredictionServer, model: str) -> str:
    return f"{server.url}/v1/models/{model}:predict"


def v2(server: PredictionServer, model: str) -> str:
    return f"{server.url}/v2/models/{model}/infer"


__all__ = ["PredictionServer", "Seen", "v1", "v2"]
