"""One sandbox revision: a real KServe ModelServer on loopback, run as its own process.

    python modelserver.py --name NAME --model iris-logreg|iris-forest --http-port P --grpc-port G
                          [--added-latency-ms MS] [--error-rate R]

It runs in the interpreter that has `kserve` and scikit-learn installed (often a separate
virtualenv, because kserve pins protobuf and grpcio), so it imports nothing from canarist.
It serves V1 REST (`/v1/models/NAME:predict`), V2 REST (`/v2/models/NAME/infer`) and V2 gRPC
(`inference.GRPCInferenceService`) for one scikit-learn model trained at start-up on the iris
data set bundled with scikit-learn; nothing is downloaded.

The bundled models stand in for the tutorial's storage URIs:

* `iris-logreg` (`.../sklearn/1.0/model`): `LogisticRegression(max_iter=1000)`.
* `iris-forest` (`.../sklearn/1.0/model-2`): `RandomForestClassifier(n_estimators=25,
  random_state=0)`. It agrees with `iris-logreg` on the tutorial's two inputs, disagrees on
  4 of the 150 iris rows (for example `[5.9, 3.2, 4.8, 1.8]`: class 2 against class 1), and
  each prediction waits a fixed 15 ms (`ADDED_LATENCY_S`, without blocking other requests)
  before it answers, so the canary is measurably slower and latency SLOs can tell the two
  apart. The forest itself is only a few milliseconds slower than the linear model.

Faults (the InferenceService's `sandbox.canarist.dev/*` annotations): `--added-latency-ms`
adds that pause to every prediction, on top of the model's own (also without blocking);
`--error-rate R` fails each prediction with probability R, drawn per request, after the
pause: HTTP 500 with `{"error": "..."}` on V1 and V2 REST (KServe's answer to an
`InferenceError`), `INTERNAL` on gRPC (its answer to any other exception). The failures it
injects are not logged.

kserve binds 0.0.0.0 and [::]; both are pinned to 127.0.0.1 before kserve is imported.
Per-request logging is off. The process exits when its parent (the sandbox) goes away.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import random
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
# The bundled models, and the fixed time each one adds to every prediction (seconds).
ADDED_LATENCY_S = {"iris-logreg": 0.0, "iris-forest": 0.015}
MODELS = tuple(ADDED_LATENCY_S)
PARENT_CHECK_S = 1.0


def _drop_own_directory() -> None:
    """This file runs as a script: keep its siblings from shadowing installed modules."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]


def _pin_to_loopback() -> None:
    aio_server = importlib.import_module("grpc.aio._server")
    uvicorn = importlib.import_module("uvicorn")
    config_init = uvicorn.Config.__init__

    def loopback_config(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = LOOPBACK
        config_init(self, *args, **kwargs)

    uvicorn.Config.__init__ = loopback_config
    add_port = aio_server.Server.add_insecure_port

    def loopback_port(self: Any, address: str) -> Any:
        host, _, port = address.rpartition(":")
        if host in ("[::]", "0.0.0.0", ""):
            address = f"{LOOPBACK}:{port}"
        return add_port(self, address)

    aio_server.Server.add_insecure_port = loopback_port


class InjectedFault(Exception):
    """A failure the revision was asked to inject (`--error-rate`)."""


class _DropPerCallLines(logging.Filter):
    """Drops kserve's line per gRPC call and its error logs of injected failures."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], InjectedFault):
            return False
        return not str(record.msg).startswith("grpc method:")


def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated")
    for name in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("kserve").addFilter(_DropPerCallLines())


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def train(model: str) -> Any:
    datasets = importlib.import_module("sklearn.datasets")
    features, labels = datasets.load_iris(return_X_y=True)
    if model == "iris-logreg":
        linear = importlib.import_module("sklearn.linear_model")
        return linear.LogisticRegression(max_iter=1000).fit(features, labels)
    ensemble = importlib.import_module("sklearn.ensemble")
    return ensemble.RandomForestClassifier(n_estimators=25, random_state=0).fit(features, labels)


def describe_faults(added_latency_ms: float, error_rate: float) -> str:
    parts = []
    if added_latency_ms:
        parts.append(f"added latency {added_latency_ms:g} ms")
    if error_rate:
        parts.append(f"error rate {error_rate:g}")
    return "; faults: " + ", ".join(parts) if parts else ""


def serve(name: str, model: str, http_port: int, grpc_port: int,
          added_latency_ms: float = 0.0, error_rate: float = 0.0) -> None:
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated")
    _pin_to_loopback()
    kserve = importlib.import_module("kserve")
    utils = importlib.import_module("kserve.utils.utils")
    errors = importlib.import_module("kserve.errors")
    added_latency_s = ADDED_LATENCY_S[model] + added_latency_ms / 1000.0
    reason = f"injected failure (sandbox.canarist.dev/error-rate: {error_rate:g})"

    class InjectedRestFault(InjectedFault, errors.InferenceError):  # type: ignore[misc,name-defined]
        """REST answers an InferenceError with HTTP 500; gRPC would say INVALID_ARGUMENT."""

    def failure(payload: Any) -> Exception:
        if getattr(payload, "from_grpc", False):
            return InjectedFault(reason)  # gRPC: INTERNAL, "Internal server error"
        return InjectedRestFault(reason)

    class IrisModel(kserve.Model):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(name)
            self.classifier: Any = None
            self.load()

        def load(self) -> bool:
            self.classifier = train(model)
            self.ready = True
            return True

        async def predict(self, payload: Any, headers: Any = None,
                          response_headers: Any = None) -> Any:
            rows = utils.get_predict_input(payload)
            classes = self.classifier.predict(rows)
            if added_latency_s:
                await asyncio.sleep(added_latency_s)
            if error_rate and random.random() < error_rate:
                raise failure(payload)
            return utils.get_predict_response(payload, classes, self.name)

    served = IrisModel()
    server = kserve.ModelServer(http_port=http_port, grpc_port=grpc_port, enable_grpc=True,
                                enable_latency_logging=False)
    _quiet()
    print(f"serving model {name} ({model}) on http {LOOPBACK}:{http_port} grpc {LOOPBACK}:{grpc_port}"
          + describe_faults(added_latency_ms, error_rate), flush=True)
    server.start([served])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="A sandbox revision: a KServe ModelServer.")
    parser.add_argument("--name", required=True, help="model name (the InferenceService's name)")
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--added-latency-ms", type=float, default=0.0,
                        help="pause added to every prediction (milliseconds)")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="probability that a prediction fails (0 to 1)")
    args = parser.parse_args(argv)
    if args.added_latency_ms < 0 or not 0 <= args.error_rate <= 1:
        parser.error("--added-latency-ms must be 0 or more and --error-rate between 0 and 1")
    _exit_with_parent()
    serve(args.name, args.model, args.http_port, args.grpc_port, args.added_latency_ms,
          args.error_rate)
    return 0


if __name__ == "__main__":
    _drop_own_directory()
    raise SystemExit(main(sys.argv[1:]))
