"""How the HTTP load engine words what went wrong: a failed initial request, a connection
that could not be made or was lost, and an excerpt of an error response (markup removed).
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
from http import HTTPStatus

import httptools

from canarist.backends.loadgen.recorder import (
    CONNECTION_CLOSED,
    CONNECTION_ERROR,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    DNS_ERROR,
    MESSAGE_CHARS,
    TIMEOUT,
    TLS_ERROR,
    clip_message,
)
from canarist.core.errors import UnavailableError


class InitialRequestError(UnavailableError):
    """The first request of a duration run (fortio's warmup) failed.

    `status` is the HTTP status or a negative connection-level kind; `excerpt` what the
    response body (or the failure) said. The http task turns it into a message with a hint.
    """

    def __init__(self, target: str, status: int, excerpt: str) -> None:
        self.target = target
        self.status = status
        self.excerpt = excerpt
        what = f"returned {status_text(status)}" if status >= 0 else "failed"
        super().__init__(f"the first request to {target} {what}"
                         + (f": {excerpt}" if excerpt else ""))


def status_text(status: int) -> str:
    """`404 Not Found`, or the bare number for a status without a standard phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def connect_error_kind(exc: BaseException) -> tuple[int, str]:
    """The status a failed connection attempt is recorded as, and what went wrong."""
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED, "connection refused"
    if isinstance(exc, TimeoutError):
        return TIMEOUT, "connect timed out"
    if isinstance(exc, socket.gaierror):
        return DNS_ERROR, f"cannot resolve host ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return TLS_ERROR, f"TLS error ({exc.reason or exc})"
    if isinstance(exc, ConnectionResetError):
        return CONNECTION_RESET, "connection reset by peer"
    if isinstance(exc, OSError) and exc.strerror:
        return CONNECTION_ERROR, exc.strerror.lower()
    return CONNECTION_ERROR, str(exc) or type(exc).__name__


def connect_error_text(exc: BaseException) -> str:
    return connect_error_kind(exc)[1]


def lost_connection_kind(exc: BaseException | None, target: str) -> tuple[int, str]:
    """Status and message for a request whose connection ended before its response did."""
    if exc is None:
        return CONNECTION_CLOSED, f"{target} closed the connection before the response was complete"
    if isinstance(exc, ssl.SSLError):
        return TLS_ERROR, f"TLS error from {target} ({exc.reason or exc})"
    if isinstance(exc, ConnectionResetError):
        return CONNECTION_RESET, f"connection reset by {target} before the response was complete"
    text = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
    return CONNECTION_ERROR, f"connection to {target} lost: {text or type(exc).__name__}"


_MARKUP = re.compile(r"<(style|script)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


class _Capture:
    """A parser protocol that keeps the reason phrase and the start of the body."""

    def __init__(self) -> None:
        self.reason = b""
        self.body = bytearray()

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_body(self, body: bytes) -> None:
        room = MESSAGE_CHARS * 4 - len(self.body)
        if room > 0:
            self.body += body[:room]


def response_excerpt(head: bytes | None, status: int, *, reason: bool = True) -> str:
    """What a response says, from its first bytes: the start of its body as text, else (with
    `reason`) its reason phrase. Parsed again here, once per new error status, so the hot
    path never copies bodies."""
    capture = _Capture()
    if head:
        parser = httptools.HttpResponseParser(capture)
        with contextlib.suppress(httptools.HttpParserError):
            parser.feed_data(head)
    text = bytes(capture.body).decode("utf-8", "replace")
    if text.lstrip().startswith("<"):
        text = _MARKUP.sub(" ", text)  # an HTML error page: its words, not its tags
    text = clip_message(text)
    if text or not reason:
        return text
    phrase = capture.reason.decode("latin-1").strip()
    return phrase or status_text(status).partition(" ")[2]
