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

import asyncio
import base64
import errno
import json
import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from canarist.core.durations import format_duration
from canarist.core.errors import UnavailableError
from canarist.core.redact import path_url

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AuthSource",
    "Credentials",
    "HttpQuery",
    "MetricsHttpClient",
    "QueryUnavailable",
    "Secret",
    "load_credentials",
    "redact",
]

DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_CONCURRENCY: Final = 8
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
JSON_CONTENT_TYPE: Final = "application/json;charset=utf-8"
_EXCERPT_CHARS: Final = 200
_MASK: Final = "***"


class QueryUnavailable(Exception):
    """A provider could not answer; `reason` says why in one line, free of secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailed(QueryUnavailable):
    """No connection: refused, unknown host, TLS failure, connection dropped."""


class QueryTimeout(QueryUnavailable):
    """No complete answer within the timeout."""


class HTTPStatusError(QueryUnavailable):
    """The server answered with a status outside 2xx."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class NotJSON(QueryUnavailable):
    """The body does not parse as JSON."""


class ResponseTooLarge(QueryUnavailable):
    """The body is larger than the client accepts."""


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


@dataclass(frozen=True)
class HttpQuery:
    """One request: `params` go into the URL's query string, `body` is sent as is."""

    method: str
    url: str
    params: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, _MASK)
    return text


def _one_line(text: str, limit: int = _EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class MetricsHttpClient:
    """An aiohttp session with a timeout per request, bounded concurrency and credentials."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        credentials: Credentials | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self.credentials = credentials or Credentials()
        self.max_response_bytes = max_response_bytes
        self._semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self._session: aiohttp.ClientSession | None = None
        self._query_ssl = _ssl_context(self.credentials)
        self._secrets = self.credentials.secrets()

    async def __aenter__(self) -> MetricsHttpClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=0),
            trust_env=False,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    async def query_json(self, query: HttpQuery) -> Any:
        """Send `query` with the credentials; the decoded JSON body of a 2xx answer."""
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        for key, value in query.headers.items():
            _set_header(headers, key, value)
        for key, value in self.credentials.headers().items():
            _set_header(headers, key, value)
        status, body = await self._send(query.method, query.url, list(query.params), headers,
                                        query.body, self._query_ssl,
                                        follow_redirects=not self.credentials.headers())
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
        status, body = await self._send("GET", url, [], {}, None, True, follow_redirects=True)
        if not 200 <= status < 300:
            raise HTTPStatusError(f"HTTP {status} from {path_url(url)}", status)
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise QueryUnavailable(f"response from {path_url(url)} is not UTF-8 text") from None

    async def _send(
        self, method: str, url: str, params: list[tuple[str, str]], headers: dict[str, str],
        body: str | None, ssl_setting: ssl.SSLContext | bool, *, follow_redirects: bool,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("use MetricsHttpClient as an async context manager")
        shown = path_url(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"invalid URL {shown!r}: expected http:// or https:// and a host")
        async with self._semaphore:
            try:
                async with self._session.request(
                    method.upper() or "GET", url, params=params or None, headers=headers,
                    data=body.encode() if body is not None else None, ssl=ssl_setting,
                    allow_redirects=follow_redirects,
                ) as response:
                    return response.status, await self._read_body(response, shown)
            except TimeoutError:
                raise QueryTimeout(
                    f"timed out after {format_duration(self.timeout_s)} ({shown})") from None
            except aiohttp.ClientConnectorCertificateError as exc:
                raise ConnectFailed(
                    f"TLS certificate of {shown} not trusted: {exc.certificate_error}") from None
            except aiohttp.ClientConnectorError as exc:
                raise ConnectFailed(self.redact(_connect_reason(exc, shown))) from None
            except aiohttp.ServerDisconnectedError:
                raise ConnectFailed(f"server closed the connection ({shown})") from None
            except aiohttp.InvalidURL:
                raise ConnectFailed(f"invalid URL {shown!r}") from None
            except aiohttp.ClientError as exc:
                raise ConnectFailed(self.redact(f"request to {shown} failed: {exc}")) from None
            except ValueError as exc:
                raise ConnectFailed(self.redact(f"request to {shown} failed: {exc}")) from None


    async def _read_body(self, response: aiohttp.ClientResponse, shown: str) -> bytes:
        """The whole body, or ResponseTooLarge as soon as it is known to pass the limit
        (from Content-Length before reading, else once the bytes read pass it)."""
        limit = self.max_response_bytes
        length = response.content_length
        data = b"" if length is not None and length > limit else \
            await read_up_to(response.content, limit + 1)
        if len(data) > limit or (length is not None and length > limit):
            raise ResponseTooLarge(f"response from {shown} is too large: more than "
                                   f"{format_size(limit)}, the most a query may return")
        return data


async def read_up_to(content: aiohttp.StreamReader, size: int) -> bytes:
    """The body until its end or until `size` bytes are read, whichever comes first.
    (`StreamReader.read(n)` returns what has arrived so far, which can be far less.)"""
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = await content.read(size - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def format_size(size: int) -> str:
    """`33554432` -> "32 MiB", `1000` -> "1000 bytes"."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def _set_header(headers: dict[str, str], key: str, value: str) -> None:
    for existing in [k for k in headers if k.lower() == key.lower()]:
        del headers[existing]
    headers[key] = value


def _connect_reason(exc: aiohttp.ClientConnectorError, shown: str) -> str:
    os_error = exc.os_error
    if getattr(os_error, "errno", None) == errno.ECONNREFUSED:
        return f"connection refused ({shown})"
    if isinstance(os_error, ssl.SSLError):
        return f"TLS error with {shown}: {os_error.reason or os_error}"
    detail = getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__
    return f"cannot connect to {exc.host}:{exc.port}: {detail}"


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
