"""The metrics query transport against small local servers: statuses, timeouts, bodies, auth, TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.fakes.http import FakeResponse, FakeTransport
from tests.helpers import require
from tests.servers.web import Handler, serving

from canarist.backends.metrics_http import (
    AuthSource,
    ConnectFailed,
    Credentials,
    HttpQuery,
    HTTPStatusError,
    MetricsHttpClient,
    NotJSON,
    QueryTimeout,
    QueryUnavailable,
    ResponseTooLarge,
    Secret,
    load_credentials,
)
from canarist.core.errors import UnavailableError

TOKEN = "s3cr3t-token-value"


def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None
          ) -> contextlib.AbstractAsyncContextManager[str]:
    """An HTTP server on 127.0.0.1 and a free port, in this event loop; yields its base URL."""
    return serving(handler, ssl_context=ssl_context)


def prometheus_answer(value: str) -> dict[str, Any]:
    return {"status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, value]}]}}


class Recorder:
    """A handler that records each request and answers as told."""

    def __init__(self, status: int = 200, body: Any = None, text: str | None = None,
                 delay_s: float = 0.0) -> None:
        self.status, self.body, self.text, self.delay_s = status, body, text, delay_s
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"method": request.method, "path": request.path,
                              "query": list(request.query.items()),
                              "headers": dict(request.headers), "body": await request.text()})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.text is not None:
            return web.Response(status=self.status, text=self.text, content_type="text/plain")
        return web.json_response(self.body if self.body is not None else prometheus_answer("1"),
                                 status=self.status)


def query(url: str, **kwargs: Any) -> HttpQuery:
    return HttpQuery(method="GET", url=url, params=[("query", "up")], **kwargs)


def test_a_query_sends_params_headers_and_body_and_decodes_json() -> None:
    recorder = Recorder(body=prometheus_answer("21.7"))

    async def main() -> Any:
        async with serve(recorder) as base, MetricsHttpClient() as client:
            return await client.query_json(HttpQuery(
                method="post", url=f"{base}/api/v1/query?dedup=true",
                params=[("query", 'sum(x{a="b"})'), ("time", "5")],
                headers={"X-Scope-OrgID": "team-a"}, body='{"k": 1}'))

    assert asyncio.run(main()) == prometheus_answer("21.7")
    [seen] = recorder.requests
    assert seen["method"] == "POST"
    assert seen["query"] == [("dedup", "true"), ("query", 'sum(x{a="b"})'), ("time", "5")]
    assert seen["headers"]["Content-Type"] == "application/json;charset=utf-8"
    assert seen["headers"]["X-Scope-OrgID"] == "team-a"
    assert seen["body"] == '{"k": 1}'
    assert "Authorization" not in seen["headers"]


def test_an_error_status_is_unavailable_with_prometheus_error_text() -> None:
    recorder = Recorder(status=400, body={"status": "error", "errorType": "bad_data",
                                          "error": "1:9: parse error: unclosed left parenthesis"})

    async def main() -> None:
        async with serve(recorder) as base, MetricsHttpClient() as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.query_json(query(f"{base}/api/v1/query"))
            assert caught.value.status == 400
            assert caught.value.reason == (
                f"HTTP 400 from {base}/api/v1/query: "
                "bad_data: 1:9: parse error: unclosed left parenthesis")

    asyncio.run(main())


def test_http_500_with_a_text_body() -> None:
    async def main() -> None:
        async with serve(Recorder(status=500, text="upstream\nexploded")) as base, \
                MetricsHttpClient() as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.query_json(query(f"{base}/api/v1/query?x=1"))
            assert caught.value.reason == f"HTTP 500 from {base}/api/v1/query: upstream exploded"

    asyncio.run(main())


def test_a_body_that_is_not_json() -> None:
    async def main() -> None:
        async with serve(Recorder(text="<html>login</html>")) as base, MetricsHttpClient() as client:
            with pytest.raises(NotJSON) as caught:
                await client.query_json(query(f"{base}/q"))
            assert caught.value.reason == f"response is not JSON: <html>login</html> (from {base}/q)"
            with pytest.raises(NotJSON, match="response is not JSON: empty body"):
                async with serve(Recorder(text="")) as other:
                    await client.query_json(query(f"{other}/q"))

    asyncio.run(main())


def test_a_slow_server_times_out_on_time() -> None:
    async def main() -> float:
        async with serve(Recorder(delay_s=5.0)) as base, MetricsHttpClient(timeout_s=0.3) as client:
            began = time.monotonic()
            with pytest.raises(QueryTimeout) as caught:
                await client.query_json(query(f"{base}/api/v1/query"))
            assert caught.value.reason == f"timed out after 300ms ({base}/api/v1/query)"
            return time.monotonic() - began

    assert asyncio.run(main()) < 2.0


def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/v1/query"

    async def main() -> None:
        async with MetricsHttpClient() as client:
            with pytest.raises(ConnectFailed) as caught:
                await client.query_json(query(url))
            assert caught.value.reason == f"connection refused (http://127.0.0.1:{port}/api/v1/query)"
            with pytest.raises(ConnectFailed, match="invalid URL 'ftp://x/y'"):
                await client.query_json(query("ftp://x/y"))
            with pytest.raises(ConnectFailed, match="invalid URL"):
                await client.query_json(query("not a url"))

    asyncio.run(main())


def test_an_oversized_answer_is_refused() -> None:
    async def main() -> None:
        async with serve(Recorder(text="x" * 5000)) as base, \
                MetricsHttpClient(max_response_bytes=1000) as client:
            with pytest.raises(ResponseTooLarge, match="too large: more than 1000 bytes"):
                await client.query_json(query(f"{base}/q"))

    asyncio.run(main())


def _big_answer(size: int) -> bytes:
    """A Prometheus answer of `size` bytes: JSON that parses when it is complete."""
    head = b'{"status":"success","data":{"resultType":"vector","result":[]},"padding":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_answer_is_reported_as_too_large_with_the_limit(chunked: bool) -> None:
    body = _big_answer(50 * 1024 * 1024)

    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 1 << 20):
            try:
                await response.write(body[start:start + (1 << 20)])
            except ConnectionError:  # the client stopped reading, as it should
                break
        return response

    async def main() -> None:
        async with serve(handler) as base, MetricsHttpClient(timeout_s=30) as client:
            with pytest.raises(ResponseTooLarge) as caught:
                await client.query_json(query(f"{base}/api/v1/query"))
            assert caught.value.reason == (
                f"response from {base}/api/v1/query is too large: more than 32 MiB, "
                f"the most a query may return")

    asyncio.run(main())


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_just_under_the_limit_arrives_whole(chunked: bool) -> None:
    body = _big_answer(32 * 1024 * 1024)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), 65536):  # many small writes: many partial reads
            await response.write(body[start:start + 65536])
        return response

    async def main() -> None:
        async with serve(handler) as base, MetricsHttpClient(timeout_s=30) as client:
            answer = await client.query_json(query(f"{base}/api/v1/query"))
            assert answer["status"] == "success"
            assert len(answer["padding"]) == len(body) - 76  # the head (74) and `"}`

    asyncio.run(main())


def test_bearer_token_is_sent_and_never_shown() -> None:
    async def echo(request: web.Request) -> web.Response:
        # a server that echoes credentials back in its error page
        return web.Response(status=401, text=f"bad credentials: {request.headers['Authorization']}")

    creds = Credentials(bearer_token=Secret(TOKEN))
    recorder = Recorder()

    async def main() -> None:
        async with serve(recorder) as base, MetricsHttpClient(credentials=creds) as client:
            await client.query_json(query(f"{base}/q", headers={"authorization": "Bearer other"}))
        async with serve(echo) as base, MetricsHttpClient(credentials=creds) as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.query_json(query(f"{base}/q"))
            assert caught.value.reason == f"HTTP 401 from {base}/q: bad credentials: Bearer ***"

    asyncio.run(main())
    assert recorder.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(creds) and TOKEN not in str(creds.bearer_token)


def test_basic_auth_and_no_redirects_with_credentials() -> None:
    recorder = Recorder()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://elsewhere.example/steal")

    creds = Credentials(username="reader", password=Secret("pa55"))

    async def main() -> None:
        async with serve(recorder) as base, MetricsHttpClient(credentials=creds) as client:
            await client.query_json(query(f"{base}/q"))
        async with serve(redirect) as base, MetricsHttpClient(credentials=creds) as client:
            with pytest.raises(HTTPStatusError, match="HTTP 302 from"):
                await client.query_json(query(f"{base}/q"))

    asyncio.run(main())
    expected = "Basic " + base64.b64encode(b"reader:pa55").decode()
    assert recorder.requests[0]["headers"]["Authorization"] == expected


def test_templates_are_fetched_without_credentials_and_must_answer_2xx() -> None:
    recorder = Recorder(text="url: x\n")

    async def main() -> None:
        creds = Credentials(bearer_token=Secret(TOKEN))
        async with serve(recorder) as base, MetricsHttpClient(credentials=creds) as client:
            assert await client.fetch_text(f"{base}/t.tpl") == "url: x\n"
            recorder.status = 404
            with pytest.raises(HTTPStatusError) as caught:
                await client.fetch_text(f"{base}/missing.tpl?token=abc")
            assert caught.value.reason == f"HTTP 404 from {base}/missing.tpl"

    asyncio.run(main())
    assert "Authorization" not in recorder.requests[0]["headers"]


def test_load_credentials_from_files_and_environment(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    creds = load_credentials(AuthSource(bearer_token_file="token"), base_dir=tmp_path)
    assert creds.headers() == {"Authorization": f"Bearer {TOKEN}"}
    monkeypatch.setenv("PROM_USER", "reader")
    monkeypatch.setenv("PROM_PASSWORD", "pa55")
    creds = load_credentials(AuthSource(username_env="PROM_USER", password_env="PROM_PASSWORD"),
                             base_dir=tmp_path)
    assert creds.username == "reader" and creds.password == Secret("pa55")
    assert set(creds.secrets()) == {"pa55", base64.b64encode(b"reader:pa55").decode()}
    with pytest.raises(UnavailableError, match=r"^auth\.bearerTokenFile: cannot read .*/nope: No such"):
        load_credentials(AuthSource(bearer_token_file="nope"), base_dir=tmp_path)
    with pytest.raises(UnavailableError, match=r"^auth\.bearerTokenEnv: environment variable NOPE_X"):
        load_credentials(AuthSource(bearer_token_env="NOPE_X"), base_dir=tmp_path)
    with pytest.raises(UnavailableError, match=r"^auth\.caFile: .* is not a readable file"):
        load_credentials(AuthSource(ca_file="ca.pem"), base_dir=tmp_path)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_is_verified_unless_told_otherwise(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(cert), str(key))

    async def main() -> None:
        async with serve(Recorder(), server_context) as base:
            async with MetricsHttpClient() as client:
                with pytest.raises(ConnectFailed, match=f"TLS certificate of {base}/q not trusted"):
                    await client.query_json(query(f"{base}/q"))
            async with MetricsHttpClient(credentials=Credentials(ca_file=cert)) as client:
                assert await client.query_json(query(f"{base}/q")) == prometheus_answer("1")
            insecure = Credentials(insecure_skip_verify=True)
            async with MetricsHttpClient(credentials=insecure) as client:
                assert await client.query_json(query(f"{base}/q")) == prometheus_answer("1")

    asyncio.run(main())


def test_queries_are_bounded_in_concurrency() -> None:
    active = 0
    peak = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return web.json_response(prometheus_answer("1"))

    async def main() -> None:
        async with serve(handler) as base, MetricsHttpClient(max_concurrency=3) as client:
            results = await asyncio.gather(*(client.query_json(query(f"{base}/q"))
                                             for _ in range(12)))
            assert len(results) == 12

    asyncio.run(main())
    assert peak == 3


def test_reasons_are_one_line_and_the_base_class_is_shared() -> None:
    assert issubclass(QueryTimeout, QueryUnavailable)
    assert issubclass(NotJSON, QueryUnavailable)
    assert json.dumps(QueryUnavailable("x").reason) == '"x"'


# -- the same client through a transport that answers as told (no server) ----------------------


def _query_through(transport: FakeTransport, query: HttpQuery, **options: Any) -> Any:
    async def go() -> Any:
        async with MetricsHttpClient(transport=transport, **options) as client:
            return await client.query_json(query)
    return asyncio.run(go())


def test_a_query_carries_its_credentials_and_does_not_follow_redirects_with_them() -> None:
    transport = FakeTransport(FakeResponse(200, json.dumps(prometheus_answer("1")).encode()))
    creds = Credentials(bearer_token=Secret(TOKEN))
    got = _query_through(transport, HttpQuery("post", "https://prom.example/api/v1/query",
                                              params=[("query", "up")], headers={"X": "1"},
                                              body="b"), credentials=creds)
    assert got == prometheus_answer("1")
    [sent] = transport.requests
    assert (sent.method, sent.params, sent.body) == ("POST", [("query", "up")], b"b")
    assert sent.headers == {"Content-Type": "application/json;charset=utf-8", "X": "1",
                            "Authorization": f"Bearer {TOKEN}"}
    assert sent.follow_redirects is False
    anonymous = FakeTransport(FakeResponse(200, b"{}"))
    _query_through(anonymous, HttpQuery("GET", "https://prom.example/q"))
    assert anonymous.requests[0].follow_redirects is True


def test_a_500_without_a_server_names_the_error_and_masks_the_token() -> None:
    body = json.dumps({"status": "error", "errorType": "bad_data",
                       "error": f"parse error near {TOKEN}"}).encode()
    with pytest.raises(HTTPStatusError) as caught:
        _query_through(FakeTransport(FakeResponse(500, body)),
                       HttpQuery("GET", "https://u:p@prom.example/api/v1/query?x=1"),
                       credentials=Credentials(bearer_token=Secret(TOKEN)))
    assert caught.value.status == 500
    assert caught.value.reason == ("HTTP 500 from https://prom.example/api/v1/query: "
                                   "bad_data: parse error near ***")


def test_a_timeout_and_a_body_too_large_without_a_server() -> None:
    with pytest.raises(QueryTimeout, match=r"^timed out after 3s \(https://prom\.example/q\)$"):
        _query_through(FakeTransport(TimeoutError()), HttpQuery("GET", "https://prom.example/q"),
                       timeout_s=3)
    with pytest.raises(ResponseTooLarge, match=r"^response from https://prom\.example/q is too "
                                               r"large: more than 1 KiB, the most a query may "
                                               r"return$"):
        _query_through(FakeTransport(FakeResponse(200, b"[]", declared=4096)),
                       HttpQuery("GET", "https://prom.example/q"), max_response_bytes=1024)
    with pytest.raises(NotJSON, match=r"^response is not JSON: <html> \(from https://prom"):
        _query_through(FakeTransport(FakeResponse(200, b"<html>")),
                       HttpQuery("GET", "https://prom.example/q"))


def test_a_template_download_without_a_server() -> None:
    async def fetch(transport: FakeTransport) -> str:
        async with MetricsHttpClient(transport=transport,
                                     credentials=Credentials(bearer_token=Secret(TOKEN))) as c:
            return await c.fetch_text("https://templates.example/p.tpl")
    transport = FakeTransport(FakeResponse(200, "{{ .x }} é".encode()))
    assert asyncio.run(fetch(transport)) == "{{ .x }} é"
    assert transport.requests[0].headers == {}, "no credentials with template downloads"
    with pytest.raises(HTTPStatusError, match=r"^HTTP 503 from https://templates\.example/p\.tpl$"):
        asyncio.run(fetch(FakeTransport(FakeResponse(503))))
    with pytest.raises(QueryUnavailable, match="is not UTF-8 text"):
        asyncio.run(fetch(FakeTransport(FakeResponse(200, b"\xff\xfe"))))
    with pytest.raises(ConnectFailed, match=r"^invalid URL 'ftp://x/y': expected http"):
        asyncio.run(_fetch_invalid())


async def _fetch_invalid() -> str:
    async with MetricsHttpClient(transport=FakeTransport()) as client:
        return await client.fetch_text("ftp://x/y")
