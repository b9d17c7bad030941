"""Fetching an agreement payload by URL, through a transport that answers as told."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from tests.fakes.http import FakeResponse, FakeTransport

from canarist.backends.inference import MAX_PAYLOAD_BYTES, fetch_payload
from canarist.core.errors import InputError, UnavailableError

URL = "https://data.example/payload.jsonl"


def fetch(answer: FakeResponse | BaseException, url: str = URL) -> str:
    return asyncio.run(fetch_payload(url, 2.5, FakeTransport(answer)))


def test_a_payload_is_fetched_as_text() -> None:
    assert fetch(FakeResponse(200, b'{"instances": [[1]]}\n')) == '{"instances": [[1]]}\n'


@pytest.mark.parametrize(("answer", "error", "message"), [
    (FakeResponse(404, b"x" * (MAX_PAYLOAD_BYTES + 1)), UnavailableError,
     f"agreement.payloadURL: HTTP 404 from {URL}"),
    (FakeResponse(200, b"x" * (MAX_PAYLOAD_BYTES + 1)), InputError,
     f"agreement.payloadURL: {URL} is larger than {MAX_PAYLOAD_BYTES} bytes"),
    (FakeResponse(200, b"\xff"), InputError, f"agreement.payloadURL: {URL} is not UTF-8 text"),
    (TimeoutError(), UnavailableError, f"agreement.payloadURL: no answer from {URL} within 2.5s"),
    (aiohttp.ServerDisconnectedError(), UnavailableError,
     f"agreement.payloadURL: cannot fetch {URL}: Server disconnected"),
    (aiohttp.ClientPayloadError(), UnavailableError,
     f"agreement.payloadURL: cannot fetch {URL}: ClientPayloadError"),
])
def test_each_way_a_fetch_fails_is_one_line(answer: FakeResponse | BaseException,
                                            error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        fetch(answer)
    assert str(caught.value) == message


def test_credentials_in_the_url_are_not_shown_when_the_fetch_fails() -> None:
    with pytest.raises(UnavailableError) as caught:
        fetch(aiohttp.ClientOSError("reset"), "https://user:pa55word@data.example/p.jsonl")
    assert "pa55word" not in str(caught.value)
