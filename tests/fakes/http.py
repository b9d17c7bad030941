"""Fakes for HTTP: a transport that answers each request as told, with no server.

`canarist.backends.httpclient.HttpClient` (and the metrics client and notify, which send
through it) take a `transport`; these answer with a status, headers and a body, or raise
what a network raises (TimeoutError, aiohttp's errors).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from canarist.backends.httpclient import Request, Response


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    declared: int | None = None
    """Content-Length as the server says it (None: chunked)."""
    read_sizes: list[int] = field(default_factory=list)

    @property
    def content_length(self) -> int | None:
        return self.declared

    async def read(self, size: int) -> bytes:
        self.read_sizes.append(size)
        return self.body[:size]


class FakeTransport:
    """Answers each request with the next of `answers`; an exception is raised instead."""

    def __init__(self, *answers: FakeResponse | BaseException) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []
        self.closed = False

    @asynccontextmanager
    async def request(self, request: Request) -> AsyncIterator[Response]:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        yield answer

    async def aclose(self) -> None:
        self.closed = True
