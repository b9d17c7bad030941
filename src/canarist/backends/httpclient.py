"""The one HTTP client for what canarist fetches or sends: metrics queries, templates,
values files and notifications.

    async with HttpClient(timeout_s=10) as client:
        body = await client.fetch("https://example.com/provider.tpl", limit=1 << 20)
        answer = await client.send(Request("POST", url, body=b"{}", follow_redirects=False),
                                   limit=2048, cut=True)

Every request has a timeout (`timeout_s`, for the whole exchange) and a bound on the body it
reads (`limit`). What goes wrong raises a `RequestFailed` with a one-line `reason` that
shows the URL without user info, query or fragment and masks every secret the client was
given; `cause` keeps the library's own exception for callers that describe it themselves.

The network is reached through a `Transport`. `AiohttpTransport` (the default) is aiohttp;
tests pass their own to answer with a status, headers and a body, or to fail as a network
does (TimeoutError, aiohttp's errors), without a server.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Protocol, Self

import aiohttp
from yarl import URL

from canarist.core.durations import format_duration
from canarist.core.redact import path_url

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AiohttpTransport",
    "Answer",
    "ConnectFailed",
    "HTTPStatusError",
    "HttpClient",
    "Request",
    "RequestFailed",
    "RequestTimeout",
    "Response",
    "ResponseTooLarge",
    "Transport",
    "format_size",
    "has_user_info",
    "http_url_problem",
    "mask",
    "read_up_to",
    "redirect_target",
    "with_params",
]

DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_CONCURRENCY: Final = 8
MASK: Final = "***"


class RequestFailed(Exception):
    """A request got no usable answer; `reason` says why in one line, free of secrets, and
    `cause` is the exception that ended it, if any."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class ConnectFailed(RequestFailed):
    """No connection: refused, unknown host, TLS failure, connection dropped."""


class RequestTimeout(RequestFailed):
    """No complete answer within the timeout."""


class HTTPStatusError(RequestFailed):
    """The server answered with a status outside 2xx."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class ResponseTooLarge(RequestFailed):
    """The body is larger than the caller accepts."""


@dataclass(frozen=True)
class Request:
    """One request: `params` are added to the URL's query string, `body` is sent as is
    (text as UTF-8)."""

    method: str
    url: str
    params: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    follow_redirects: bool = True
    verify: ssl.SSLContext | bool = True
    """TLS verification: the system's trust store (True), a context, or none (False)."""


@dataclass(frozen=True)
class Answer:
    """What came back: the status, the headers (any case) and the body read."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class Response(Protocol):
    """An answer whose body has not been read yet."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_length(self) -> int | None: ...

    async def read(self, size: int) -> bytes:
        """The body until its end or until `size` bytes are read, whichever comes first."""
        ...


class Transport(Protocol):
    """Sends a request and hands over the answer; raises what its library raises."""

    def request(self, request: Request) -> AbstractAsyncContextManager[Response]: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def content_length(self) -> int | None:
        return self._response.content_length

    async def read(self, size: int) -> bytes:
        return await read_up_to(self._response.content, size)


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


class AiohttpTransport:
    """aiohttp: one session, a total timeout per request, no proxy from the environment."""

    def __init__(self, *, timeout_s: float) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            connector=aiohttp.TCPConnector(limit=0),
            trust_env=False,
        )

    @asynccontextmanager
    async def request(self, request: Request) -> AsyncIterator[Response]:
        async with self._session.request(
            request.method, request.url, params=list(request.params) or None,
            headers=dict(request.headers), ssl=request.verify,
            data=request.body.encode() if isinstance(request.body, str) else request.body,
            allow_redirects=request.follow_redirects,
        ) as response:
            yield _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


class HttpClient:
    """Requests with a timeout each, at most `max_concurrency` at a time, and reasons that
    never show `secrets`. Use it as an async context manager; a `transport` given is used
    as it is and left open."""

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        secrets: Sequence[str] = (),
        transport: Transport | None = None,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self._secrets = tuple(secrets)
        self._semaphore = asyncio.Semaphore(max(1, max_concurrency))
        self._given = transport
        self._transport: Transport | None = transport

    async def __aenter__(self) -> Self:
        if self._transport is None:
            self._transport = AiohttpTransport(timeout_s=self.timeout_s)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None and self._transport is not self._given:
            await self._transport.aclose()
        self._transport = self._given

    def redact(self, text: str) -> str:
        """`text` with every secret the client knows replaced by ***."""
        return mask(text, self._secrets)

    async def fetch(self, url: str, *, limit: int) -> bytes:
        """GET `url` (redirects followed, no credentials): the body of a 2xx answer, at
        most `limit` bytes (HTTPStatusError for another status, whatever its body)."""
        answer = await self.send(Request("GET", url), limit=limit + 1, cut=True)
        if not 200 <= answer.status < 300:
            raise HTTPStatusError(f"HTTP {answer.status} from {path_url(url)}", answer.status)
        if len(answer.body) > limit:
            raise _too_large(path_url(url), limit)
        return answer.body

    async def send(self, request: Request, *, limit: int, cut: bool = False) -> Answer:
        """Send `request`; its answer with at most `limit` bytes of body. A longer body is
        ResponseTooLarge (known from Content-Length before reading, else once the bytes read
        pass it), or with `cut` its first `limit` bytes."""
        if self._transport is None:
            raise RuntimeError("use HttpClient as an async context manager")
        shown = path_url(request.url)
        async with self._semaphore:
            try:
                async with self._transport.request(request) as response:
                    length = response.content_length
                    if cut:
                        body = await response.read(limit)
                    elif length is not None and length > limit:
                        raise _too_large(shown, limit)
                    else:
                        body = await response.read(limit + 1)
                        if len(body) > limit:
                            raise _too_large(shown, limit)
                    return Answer(response.status, response.headers, body)
            except RequestFailed:
                raise
            except TimeoutError as exc:
                raise RequestTimeout(
                    f"timed out after {format_duration(self.timeout_s)} ({shown})", exc) from None
            except aiohttp.ClientConnectorCertificateError as exc:
                raise ConnectFailed(
                    f"TLS certificate of {shown} not trusted: {exc.certificate_error}",
                    exc) from None
            except aiohttp.ClientConnectorError as exc:
                raise ConnectFailed(self.redact(_connect_reason(exc, shown)), exc) from None
            except aiohttp.ServerDisconnectedError as exc:
                raise ConnectFailed(f"server closed the connection ({shown})", exc) from None
            except aiohttp.InvalidURL as exc:
                raise ConnectFailed(f"invalid URL {shown!r}", exc) from None
            except (aiohttp.ClientError, ValueError, OSError) as exc:
                raise ConnectFailed(self.redact(f"request to {shown} failed: {exc}"),
                                    exc) from None


def _too_large(shown: str, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"response from {shown} is too large: more than {format_size(limit)}")


def _connect_reason(exc: aiohttp.ClientConnectorError, shown: str) -> str:
    os_error = exc.os_error
    if getattr(os_error, "errno", None) == errno.ECONNREFUSED:
        return f"connection refused ({shown})"
    if isinstance(os_error, ssl.SSLError):
        return f"TLS error with {shown}: {os_error.reason or os_error}"
    detail = getattr(os_error, "strerror", None) or str(os_error) or type(os_error).__name__
    return f"cannot connect to {exc.host}:{exc.port}: {detail}"


def mask(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def format_size(size: int) -> str:
    """`33554432` -> "32 MiB", `1000` -> "1000 bytes"."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


# -- URLs as the client reads them ------------------------------------------------------------


def http_url_problem(url: str) -> str | None:
    """None for an http:// or https:// URL with a host, else what is wrong."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        return "expected an http:// or https:// URL with a host"
    return None


def has_user_info(url: str) -> bool:
    """Whether `url` carries `user[:password]@` (sent as an Authorization header)."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return False
    return parsed.user is not None or parsed.password is not None


def with_params(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` added to its query string, as the request sends it."""
    return str(URL(url).extend_query(params)) if params else url


def redirect_target(url: str, location: str | None) -> str | None:
    """The URL a redirect from `url` to `location` points at; None without a location or
    when it does not parse."""
    if not location:
        return None
    try:
        return str(URL(url).join(URL(location)))
    except (ValueError, TypeError):
        return None
