"""A real KServe ModelServer with a scikit-learn iris model, on loopback only.

    python tests/servers/kserve_server.py HTTP_PORT GRPC_PORT [MODEL_NAME]

Serves V1 REST (`/v1/models/<name>:predict`), V2 REST (`/v2/models/<name>/infer`) and V2
gRPC (`inference.GRPCInferenceService`) for one `LogisticRegression` trained in `load()` on
the iris data set bundled with scikit-learn (nothing is downloaded). The model name
defaults to `sklearn-iris`.

kserve binds 0.0.0.0 (REST) and [::] (gRPC) itself; both are pinned to 127.0.0.1 here,
before kserve is imported. Per-request logging is turned off so long load tests do not
write megabytes of log.

This file runs in the interpreter that has kserve installed and imports nothing from
canarist.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

LOOPBACK = "127.0.0.1"


def _pin_to_loopback() -> None:
    import grpc.aio._server as aio_server
    import uvicorn

    config_init = uvicorn.Config.__init__

    def loopback_config(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = LOOPBACK
        config_init(self, *args, **kwargs)

    uvicorn.Config.__init__ = loopback_config  # type: ignore[method-assign]

    add_port = aio_server.Server.add_insecure_port

    def loopback_port(self: Any, address: str) -> int:
        host, _, port = address.rpartition(":")
        if host in ("[::]", "0.0.0.0", ""):
            address = f"{LOOPBACK}:{port}"
        return add_port(self, address)  # type: ignore[no-any-return]

    aio_server.Server.add_insecure_port = loopback_port  # type: ignore[method-assign]


class _DropPerCallLines(logging.Filter):
    """Drops the line kserve's gRPC interceptor logs for every call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("grpc method:")


def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated")
    for name in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("kserve").addFilter(_DropPerCallLines())


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    http_port, grpc_port = int(argv[0]), int(argv[1])
    model_name = argv[2] if len(argv) > 2 else "sklearn-iris"

    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated")
    _pin_to_loopback()

    import kserve
    from kserve.utils.utils import get_predict_input, get_predict_response
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    class IrisModel(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.classifier: LogisticRegression | None = None
            self.load()

        def load(self) -> bool:
            features, labels = load_iris(return_X_y=True)
            self.classifier = LogisticRegression(max_iter=1000).fit(features, labels)
            self.ready = True
            return True

        def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            assert self.classifier is not None
            rows = get_predict_input(payload)
            return get_predict_response(payload, self.classifier.predict(rows), self.name)

    model = IrisModel(model_name)
    server = kserve.ModelServer(
        http_port=http_port,
        grpc_port=grpc_port,
        enable_grpc=True,
        enable_latency_logging=False,
    )
    _quiet()
    server.start([model])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
