"""Where the ingress sends a request: host name -> revisions with traffic weights.

The controller publishes one `Route` per host name whenever an InferenceService's traffic or
its revisions' readiness changes; the ingress looks the host up and picks a revision at
random in proportion to the weights, as Knative's data plane splits traffic.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """A serving revision and the labels its queue-proxy metrics carry."""

    revision: str
    service: str  # the Knative service (and configuration): <isvc>-predictor-default
    namespace: str
    isvc: str
    http_port: int
    grpc_port: int


@dataclass(frozen=True)
class Route:
    isvc: str
    namespace: str
    targets: tuple[tuple[Backend, int], ...]  # ready backends with their percent

    def choose(self, rng: random.Random) -> Backend | None:
        """A backend picked in proportion to its percent; None when nothing can serve."""
        weighted = [(b, p) for b, p in self.targets if p > 0]
        if not weighted:
            return None
        total = sum(p for _, p in weighted)
        point = rng.uniform(0, total)
        for backend, percent in weighted:
            point -= percent
            if point <= 0:
                return backend
        return weighted[-1][0]


class RouteTable:
    """Thread-safe host -> Route map, replaced per InferenceService."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_service: dict[tuple[str, str], dict[str, Route]] = {}
        self._by_host: dict[str, Route] = {}

    def publish(self, namespace: str, isvc: str, routes: dict[str, Route]) -> None:
        with self._lock:
            if routes:
                self._by_service[(namespace, isvc)] = dict(routes)
            else:
                self._by_service.pop((namespace, isvc), None)
            self._by_host = {host: route for hosts in self._by_service.values()
                             for host, route in hosts.items()}

    def lookup(self, host: str) -> Route | None:
        name = host.strip().lower()
        if name.startswith("["):
            return None
        name = name.rsplit(":", 1)[0] if ":" in name else name
        return self._by_host.get(name.rstrip("."))

    def main_hosts(self) -> list[str]:
        """The main host of every InferenceService with a route (`<isvc>.<namespace>.example.com`)."""
        with self._lock:
            return sorted(host for (namespace, isvc), hosts in self._by_service.items()
                          if (host := f"{isvc}.{namespace}.example.com") in hosts)

    def services(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._by_service)

    def by_model_name(self, model: str) -> Route | None:
        """The route of the InferenceService named `model` (namespace `default` first)."""
        with self._lock:
            matches = sorted((ns, name) for ns, name in self._by_service if name == model)
        if not matches:
            return None
        namespace, name = next(((ns, n) for ns, n in matches if ns == "default"), matches[0])
        return self.main_route(namespace, name)

    def only_route(self) -> Route | None:
        with self._lock:
            keys = list(self._by_service)
        return self.main_route(*keys[0]) if len(keys) == 1 else None

    def main_route(self, namespace: str, isvc: str) -> Route | None:
        with self._lock:
            hosts = self._by_service.get((namespace, isvc), {})
            return hosts.get(f"{isvc}.{namespace}.example.com")
