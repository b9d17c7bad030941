"""The one HTTP client, through a transport that answers as told: no server, no clock.

Each unhappy path a network can take (a timeout, a refused or dropped connection, an error
status, a redirect, a body larger than allowed) is one fake answer away. The same client
against real servers is tested in test_metrics_http.py and tests/tasks/test_notify.py.
"""

from __future__ import annotations

import asyncio
import errno

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from tests.fakes.http import FakeResponse, FakeTransport

from canarist.backends.httpclient import (
    Answer,
    ConnectFailed,
    HttpClient,
    HTTPStatusError,
    Request,
    RequestFailed,
    RequestTimeout,
    ResponseTooLarge,
    has_user_info,
    http_url_problem,
    redirect_target,
    with_params,
)

SECRET = "tok-5ecret-value"


def send(transport: FakeTransport, request: Request, *, limit: int = 100, cut: bool = False,
         timeout_s: float = 7.0) -> Answer:
    async def go() -> Answer:
        async with HttpClient(timeout_s=timeout_s, secrets=[SECRET],
                              transport=transport) as client:
            return await client.send(request, limit=limit, cut=cut)
    return asyncio.run(go())


def fetch(transport: FakeTransport, url: str = "https://u:p@host.example/t.tpl?k=v",
          limit: int = 100) -> bytes:
    async def go() -> bytes:
        async with HttpClient(transport=transport) as client:
            return await client.fetch(url, limit=limit)
    return asyncio.run(go())


def _connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    key = ConnectionKey("prom.example", 9090, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, os_error)


def test_the_request_goes_to_the_transport_as_given_and_the_answer_comes_back() -> None:
    transport = FakeTransport(FakeResponse(201, b"done", {"Location": "/x"}, declared=4))
    request = Request("POST", "https://host.example/hook", params=[("a", "1")],
                      headers={"X-Team": "t"}, body=b"{}", follow_redirects=False)
    answer = send(transport, request)
    assert transport.requests == [request]
    assert (answer.status, answer.body, answer.header("location")) == (201, b"done", "/x")
    assert answer.header("Content-Type") is None
    assert not transport.closed, "a transport that was given is left open"


def test_a_timeout_is_one_line_with_the_timeout_and_the_url_without_secrets() -> None:
    with pytest.raises(RequestTimeout) as caught:
        send(FakeTransport(TimeoutError()), Request("GET", "https://u:pw@h.example/q?t=1#f"),
             timeout_s=2.5)
    assert caught.value.reason == "timed out after 2.5s (https://h.example/q)"
    assert isinstance(caught.value.cause, TimeoutError)


@pytest.mark.parametrize(("error", "reason"), [
    (_connector_error(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")),
     "connection refused (https://h.example/q)"),
    (_connector_error(OSError(errno.EHOSTUNREACH, f"No route to {SECRET}")),
     "cannot connect to prom.example:9090: No route to ***"),
    (aiohttp.ServerDisconnectedError(), "server closed the connection (https://h.example/q)"),
    (aiohttp.InvalidURL("https://h.example/q"), "invalid URL 'https://h.example/q'"),
    (aiohttp.ClientPayloadError(f"broken body near {SECRET}"),
     "request to https://h.example/q failed: broken body near ***"),
    (OSError("no buffer space"), "request to https://h.example/q failed: no buffer space"),
])
def test_a_failed_connection_is_one_line_that_never_shows_a_secret(
        error: BaseException, reason: str) -> None:
    with pytest.raises(ConnectFailed) as caught:
        send(FakeTransport(error), Request("GET", "https://h.example/q?token=x"))
    assert caught.value.reason == reason
    assert caught.value.cause is error


def test_an_error_status_is_an_answer_to_send_and_a_failure_to_fetch() -> None:
    assert send(FakeTransport(FakeResponse(500, b"oops")), Request("GET", "http://h/")).status \
        == 500
    with pytest.raises(HTTPStatusError) as caught:
        fetch(FakeTransport(FakeResponse(404, b"x" * 1000)))
    assert (caught.value.status, caught.value.reason) == (404, "HTTP 404 from https://host.example/t.tpl")


def test_a_redirect_is_handed_back_when_not_followed() -> None:
    transport = FakeTransport(FakeResponse(302, b"", {"location": "https://elsewhere/x"}))
    answer = send(transport, Request("POST", "https://h/hook", follow_redirects=False))
    assert answer.status == 302 and answer.header("Location") == "https://elsewhere/x"
    assert transport.requests[0].follow_redirects is False


def test_a_body_declared_too_large_is_refused_before_it_is_read() -> None:
    response = FakeResponse(200, b"x" * 10, declared=50 * 1024 * 1024)
    with pytest.raises(ResponseTooLarge, match=r"^response from http://h/q is too large: "
                                               r"more than 100 bytes$"):
        send(FakeTransport(response), Request("GET", "http://h/q"))
    assert response.read_sizes == []


def test_a_chunked_body_is_read_one_byte_past_the_limit_then_refused() -> None:
    response = FakeResponse(200, b"x" * 101)
    with pytest.raises(ResponseTooLarge):
        send(FakeTransport(response), Request("GET", "http://h/q"))
    assert response.read_sizes == [101]
    assert send(FakeTransport(FakeResponse(200, b"x" * 100)), Request("GET", "http://h/q")).body \
        == b"x" * 100


def test_a_cut_body_is_its_first_bytes() -> None:
    response = FakeResponse(200, b"y" * 5000, declared=5000)
    assert send(FakeTransport(response), Request("POST", "http://h/"), limit=2048,
                cut=True).body == b"y" * 2048


def test_fetch_reads_at_most_the_limit_and_refuses_more() -> None:
    assert fetch(FakeTransport(FakeResponse(200, b"{{ . }}"))) == b"{{ . }}"
    with pytest.raises(ResponseTooLarge, match=r"https://host\.example/t\.tpl is too large"):
        fetch(FakeTransport(FakeResponse(200, b"z" * 101)))


def test_the_client_owns_the_transport_it_makes_and_needs_to_be_entered() -> None:
    async def go() -> None:
        client = HttpClient(timeout_s=1)
        with pytest.raises(RuntimeError, match="async context manager"):
            await client.send(Request("GET", "http://h/"), limit=1)
        async with client:
            assert client._transport is not None
        assert client._transport is None
    asyncio.run(go())
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        HttpClient(timeout_s=0)


def test_every_failure_is_a_request_failure() -> None:
    for kind in (ConnectFailed, RequestTimeout, ResponseTooLarge):
        assert issubclass(kind, RequestFailed)
    assert issubclass(HTTPStatusError, RequestFailed)


def test_urls_as_the_client_reads_them() -> None:
    assert http_url_problem("https://h.example/x") is None
    assert http_url_problem("ftp://h.example/x") == "expected an http:// or https:// URL with a host"
    assert http_url_problem("http:///x") is not None
    assert has_user_info("https://u:p@h/") and has_user_info("https://u@h/")
    assert not has_user_info("https://h/") and not has_user_info("http://[::1/")
    assert with_params("https://h/x?a=1", {"b": "2 3"}) == "https://h/x?a=1&b=2+3"
    assert with_params("https://h/x", {}) == "https://h/x"
    assert redirect_target("https://h/a/b?q=1", "../c") == "https://h/c"
    assert redirect_target("https://h/a", "https://other:8443/z") == "https://other:8443/z"
    assert redirect_target("https://h/a", None) is None
    assert redirect_target("https://h/a", "http://[::1") is None
