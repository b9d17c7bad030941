"""The failures of a Kubernetes call, by kind.

* the API server cannot be reached (refused, timed out, TLS) -> `KubeUnreachable` (exit 3);
* the API answered with a failure `Status` -> `KubeError` and a subclass per kind:
  `KubeNotFound` (404), `KubeForbidden` (403), `KubeUnauthorized` (401), `KubeConflict`
  (409: AlreadyExists or a stale resourceVersion, see `.reason`), `KubeInvalid` (400/422,
  exit 2); others (5xx, 429) stay `KubeError` (exit 3).
"""

from __future__ import annotations

import json

from canarist.core.errors import UnavailableError


class KubeError(UnavailableError):
    """The API server answered with a failure Status."""

    def __init__(self, message: str, *, status: int, reason: str = "",
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of the failure Status; 0 when there was none (no answer, or not JSON)."""
        self.reason = reason
        self.detail = message if detail is None else detail
        """What went wrong without naming the server: the Status's message, as a caller quotes it."""


class KubeUnreachable(KubeError):
    """No answer from the API server (connection refused, timeout, TLS failure)."""


class KubeNotFound(KubeError):
    """404: the object, its namespace or the resource type does not exist."""


class KubeForbidden(KubeError):
    """403: the credentials may not do this (RBAC)."""


class KubeUnauthorized(KubeError):
    """401: the credentials were not accepted."""


class KubeConflict(KubeError):
    """409: `reason` is AlreadyExists (create) or Conflict (stale resourceVersion)."""


class KubeInvalid(KubeError):
    """400/422: the API rejected the object or request as malformed."""

    exit_code = 2


_BY_STATUS: dict[int, type[KubeError]] = {
    401: KubeUnauthorized, 403: KubeForbidden, 404: KubeNotFound, 409: KubeConflict,
    400: KubeInvalid, 422: KubeInvalid,
}


def failure(server: str, status: int, data: bytes) -> KubeError:
    """The error for a non-2xx answer: its Status message (or the start of the body)."""
    message, reason = "", ""
    try:
        parsed = json.loads(data)
        if isinstance(parsed, dict):
            message = str(parsed.get("message") or "")
            reason = str(parsed.get("reason") or "")
    except ValueError:
        message = data.decode("utf-8", errors="replace").strip()[:200]
    kind = _BY_STATUS.get(status, KubeError)
    text = message or reason or f"HTTP {status}"
    return kind(f"Kubernetes API {server}: {text}", status=status, reason=reason, detail=text)
