"""Ingress pieces without processes: content types, routing, weighted choice, metrics format."""

from __future__ import annotations

import random

from canarist.sandbox.ingress import forwarded_content_type, model_name_field
from canarist.sandbox.metrics import RequestMetrics
from canarist.sandbox.routes import Backend, Route, RouteTable

B1 = Backend("s-predictor-default-00001", "s-predictor-default", "default", "s", 1001, 1002)
B2 = Backend("s-predictor-default-00002", "s-predictor-default", "default", "s", 2001, 2002)


def test_json_sent_as_a_form_is_forwarded_as_json() -> None:
    body = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
    assert forwarded_content_type("application/x-www-form-urlencoded", body) == "application/json"
    assert forwarded_content_type(None, body) == "application/json"
    assert forwarded_content_type("application/x-www-form-urlencoded", b"a=1") == (
        "application/x-www-form-urlencoded")
    assert forwarded_content_type("text/plain", body) == "text/plain"
    assert forwarded_content_type("application/x-www-form-urlencoded", b"{broken") == (
        "application/x-www-form-urlencoded")


def test_model_name_is_field_one_of_the_request() -> None:
    # ModelInferRequest{model_name: "sklearn-iris", id: "x"}: field 1 and field 3 strings
    message = b"\x0a\x0csklearn-iris\x1a\x01x"
    assert model_name_field(message) == "sklearn-iris"
    assert model_name_field(b"\x1a\x01x\x0a\x01m") == "m"
    assert model_name_field(b"") is None
    assert model_name_field(b"\x0a\xff") is None  # truncated


def test_weighted_choice_follows_the_percentages() -> None:
    route = Route("s", "default", ((B1, 90), (B2, 10)))
    rng = random.Random(7)
    picks = [route.choose(rng) for _ in range(10_000)]
    share = picks.count(B2) / len(picks)
    assert 0.08 < share < 0.12
    assert Route("s", "default", ((B1, 0), (B2, 100))).choose(rng) == B2
    assert Route("s", "default", ()).choose(rng) is None
    assert Route("s", "default", ((B1, 0),)).choose(rng) is None


def test_route_table_lookup_by_host_model_and_only_service() -> None:
    table = RouteTable()
    route = Route("s", "default", ((B1, 100),))
    table.publish("default", "s", {"s.default.example.com": route})
    assert table.lookup("S.default.example.com:8080") is route
    assert table.lookup("other.default.example.com") is None
    assert table.by_model_name("s") is route
    assert table.only_route() is route
    table.publish("team", "t", {"t.team.example.com": Route("t", "team", ())})
    assert table.only_route() is None
    table.publish("default", "s", {})
    assert table.lookup("s.default.example.com") is None


def test_metrics_use_knative_names_labels_and_buckets() -> None:
    metrics = RequestMetrics()
    metrics.observe(B1, 200, 3.0)
    metrics.observe(B1, 200, 30.0)
    metrics.observe(B2, 500, 7.5)
    text = metrics.exposition().decode()
    assert "# TYPE revision_app_request_count counter" in text
    assert "_total" not in text and "_created" not in text
    assert ('revision_app_request_count{configuration_name="s-predictor-default",namespace_name="default",'
            'response_code="200",response_code_class="2xx",revision_name="s-predictor-default-00001",'
            'service_name="s-predictor-default"} 2.0') in text
    assert 'response_code="500",response_code_class="5xx"' in text
    bucket = [line for line in text.splitlines()
              if line.startswith("revision_app_request_latencies_bucket") and "00001" in line]
    values = {line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1]) for line in bucket}
    assert values["5"] == 1.0 and values["20"] == 1.0 and values["40"] == 2.0 and values["+Inf"] == 2.0
    assert 'revision_app_request_latencies_sum{' in text


def test_an_unknown_host_404_names_it_and_the_hosts_served() -> None:
    import asyncio
    import urllib.error
    import urllib.request

    from canarist.sandbox.ingress import HttpIngress

    table = RouteTable()
    ingress = HttpIngress(table, RequestMetrics())

    def get(port: int, host: str) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/m:predict",
                                         headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    async def main() -> list[tuple[int, str]]:
        await ingress.start("127.0.0.1", 0)
        try:
            seen = [await asyncio.to_thread(get, ingress.port, f"127.0.0.1:{ingress.port}")]
            table.publish("default", "sklearn-iris", {
                "sklearn-iris.default.example.com": Route("sklearn-iris", "default", ()),
                "sklearn-iris-predictor-default.default.example.com":
                    Route("sklearn-iris", "default", ())})
            table.publish("team", "t", {"t.team.example.com": Route("t", "team", ())})
            seen.append(await asyncio.to_thread(get, ingress.port, f"127.0.0.1:{ingress.port}"))
            return seen
        finally:
            await ingress.stop()

    (empty_status, empty), (status, body) = asyncio.run(main())
    port = ingress.port
    assert empty_status == 404
    assert empty == (f"no InferenceService serves host '127.0.0.1:{port}': none is deployed "
                     "(canarist sandbox apply -f isvc.yaml)\n")
    assert status == 404
    assert body == (f"no InferenceService serves host '127.0.0.1:{port}'; set the Host header to "
                    "one this ingress serves: sklearn-iris.default.example.com, "
                    "t.team.example.com\n")
