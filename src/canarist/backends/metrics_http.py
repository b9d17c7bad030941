"""HTTP/JSON queries to metrics providers (Prometheus or any REST API), and template downloads.

    async with MetricsHttpClient(timeout_s=10, credentials=creds) as client:
        data = await client.query_json(HttpQuery("GET", url, params=[("query", "up")]))
        text = await client.fetch_text("https://example.com/provider.tpl")

Every request has a timeout. A query that cannot be answered raises `QueryUnavailable` with a
short `reason` ("HTTP 500 from http://prom:9090/api/v1/query", "timed out after 10s",
"connection refused", "response is not JSON: ..."). Reasons never contain credentials: URLs
are shown without user info and query string, and every known secret is masked.

Credentials (a bearer token, or a user name and password) are sent with queries only, never
with template downloads, and queries that carry them do not follow redirects. TLS is
verified against the system trust store or `ca_file`; `insecure_skip_verify` turns
verification off for queries.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from canarist.backends.httpclient import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT_S,
    MASK,
    Answer,
    ConnectFailed,
    HttpClient,
    HTTPStatusError,
    Request,
    RequestFailed,
    RequestTimeout,
    ResponseTooLarge,
    Transport,
    mask,
)
from canarist.core.errors import UnavailableError
from canarist.core.redact import path_url

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AuthSource",
    "ConnectFailed",
    "Credentials",
    "HTTPStatusError",
    "HttpQuery",
    "MetricsHttpClient",
    "NotJSON",
    "QueryTimeout",
    "QueryUnavailable",
    "ResponseTooLarge",
    "Secret",
    "load_credentials",
    "redact",
]

DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
JSON_CONTENT_TYPE: Final = "application/json;charset=utf-8"
_EXCERPT_CHARS: Final = 200
_MASK: Final = MASK


QueryUnavailable = RequestFailed
"""A provider could not answer; `reason` says why in one line, free of secrets."""
QueryTimeout = RequestTimeout
"""No complete answer within the timeout."""


class NotJSON(QueryUnavailable):
    """The body does not parse as JSON."""


@dataclass(frozen=True)
class Secret:
    """A credential. It prints as *** so it cannot leak through repr, str or logs."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK


@dataclass(frozen=True)
class Credentials:
    """What queries authenticate and verify TLS with."""

    bearer_token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False

    def headers(self) -> dict[str, str]:
        if self.bearer_token is not None:
            return {"Authorization": f"Bearer {self.bearer_token.value}"}
        if self.username is not None:
            raw = f"{self.username}:{self.password.value if self.password else ''}"
            return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode("ascii")}
        return {}

    def secrets(self) -> tuple[str, ...]:
        """Every text that must never be shown (the secrets and the headers made from them)."""
        found = [s.value for s in (self.bearer_token, self.password) if s is not None and s.value]
        found.extend(v.split(" ", 1)[1] for v in self.headers().values())
        return tuple(found)


@dataclass(frozen=True)
class AuthSource:
    """Where credentials come from: files and environment variable names, never the secrets."""

    bearer_token_file: str | None = None
    bearer_token_env: str | None = None
    username: str | None = None
    username_env: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False


def load_credentials(source: AuthSource, *, base_dir: Path, where: str = "auth") -> Credentials:
    """Read the secrets `source` names. UnavailableError if a file or variable is missing."""
    token = _secret(source.bearer_token_file, source.bearer_token_env, base_dir,
                    f"{where}.bearerTokenFile", f"{where}.bearerTokenEnv")
    username = source.username
    if source.username_env is not None:
        username = _env(source.username_env, f"{where}.usernameEnv").value
    password = _secret(source.password_file, source.password_env, base_dir,
                       f"{where}.passwordFile", f"{where}.passwordEnv")
    ca_file = None
    if source.ca_file is not None:
        ca_file = _path(source.ca_file, base_dir)
        if not ca_file.is_file():
            raise UnavailableError(f"{where}.caFile: {ca_file} is not a readable file")
    return Credentials(bearer_token=token, username=username, password=password, ca_file=ca_file,
                       insecure_skip_verify=source.insecure_skip_verify)


def _secret(file: str | None, env: str | None, base_dir: Path, file_key: str,
            env_key: str) -> Secret | None:
    if file is not None:
        path = _path(file, base_dir)
        try:
            return Secret(path.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise UnavailableError(f"{file_key}: cannot read {path}: {detail}") from None
    if env is not None:
        return _env(env, env_key)
    return None


def _env(name: str, key: str) -> Secret:
    value = os.environ.get(name)
    if value is None:
        raise UnavailableError(f"{key}: environment variable {name} is not set")
    return Secret(value.strip())


def _path(text: str, base_dir: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base_dir / path


HttpQuery = Request
"""One query: `params` go into the URL's query string, `body` (text) is sent as is; the
client adds the credentials and decides on redirects and TLS."""


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by ***."""
    return mask(text, secrets)


def _one_line(text: str, limit: int = _EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class MetricsHttpClient(HttpClient):
    """The HTTP client with credentials for queries, and a limit on what a query returns.
    A `transport` given (tests) is used as it is, see `canarist.backends.httpclient`."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        credentials: Credentials | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: Transport | None = None,
    ) -> None:
        self.credentials = credentials or Credentials()
        super().__init__(timeout_s=timeout_s, max_concurrency=max_concurrency,
                         secrets=self.credentials.secrets(), transport=transport)
        self.max_response_bytes = max_response_bytes
        self._query_ssl = _ssl_context(self.credentials)

    async def query_json(self, query: HttpQuery) -> Any:
        """Send `query` with the credentials; the decoded JSON body of a 2xx answer."""
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        for key, value in query.headers.items():
            _set_header(headers, key, value)
        for key, value in self.credentials.headers().items():
            _set_header(headers, key, value)
        answer = await self._send(Request(
            query.method.upper() or "GET", query.url, list(query.params), headers,
            query.body.encode() if isinstance(query.body, str) else query.body,
            follow_redirects=not self.credentials.headers(), verify=self._query_ssl))
        status, body = answer.status, answer.body
        shown = path_url(query.url)
        text = body.decode("utf-8", errors="replace")
        payload: Any = None
        parsed = True
        try:
            payload = json.loads(text)
        except ValueError:
            parsed = False
        if not 200 <= status < 300:
            detail = _error_detail(payload) if parsed else _one_line(text)
            reason = f"HTTP {status} from {shown}" + (f": {detail}" if detail else "")
            raise HTTPStatusError(self.redact(reason), status)
        if not parsed:
            excerpt = _one_line(text) or "empty body"
            raise NotJSON(self.redact(f"response is not JSON: {excerpt} (from {shown})"))
        return payload

    async def fetch_text(self, url: str) -> str:
        """GET `url` without credentials; the body of a 2xx answer as UTF-8 text."""
        answer = await self._send(Request("GET", url))
        if not 200 <= answer.status < 300:
            raise HTTPStatusError(f"HTTP {answer.status} from {path_url(url)}", answer.status)
        try:
            return answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise QueryUnavailable(f"response from {path_url(url)} is not UTF-8 text") from None

    async def _send(self, request: Request) -> Answer:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"invalid URL {path_url(request.url)!r}: expected http:// or "
                                "https:// and a host")
        try:
            return await self.send(request, limit=self.max_response_bytes)
        except ResponseTooLarge as exc:
            raise ResponseTooLarge(f"{exc.reason}, the most a query may return") from None


def _set_header(headers: dict[str, str], key: str, value: str) -> None:
    for existing in [k for k in headers if k.lower() == key.lower()]:
        del headers[existing]
    headers[key] = value


def _error_detail(payload: Any) -> str:
    """Prometheus puts `errorType` and `error` in its error bodies; show them."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        kind = payload.get("errorType")
        text = f"{kind}: {payload['error']}" if isinstance(kind, str) and kind else payload["error"]
        return _one_line(text)
    return _one_line(json.dumps(payload)) if payload is not None else ""


def _ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    if credentials.insecure_skip_verify:
        return False
    if credentials.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(credentials.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise UnavailableError(f"auth.caFile: cannot load {credentials.ca_file}: {exc}") from None
