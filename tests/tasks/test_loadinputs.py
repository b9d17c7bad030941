"""Layering a load test's inputs: versionValues over endpoints over the top level."""

from __future__ import annotations

import pytest

from canarist.core.errors import SpecError
from canarist.core.validation import spell_key, validated
from canarist.tasks.grpc import GrpcEndpoint, GrpcInputs
from canarist.tasks.http import HttpEndpoint, HttpInputs
from canarist.tasks.loadinputs import every_layer, providers, unset_input, version_targets


def test_a_version_wins_over_an_endpoint_which_wins_over_the_top_level() -> None:
    inputs = GrpcInputs.model_validate({
        "call": "p.S.M", "total": 10, "concurrency": 2, "metadata": {"team": "a"},
        "endpoints": {"b": {"host": "b:1", "total": 20}, "a": {"host": "a:1"}},
        "versionValues": [{"total": 30, "metadata": {"host": "canary"}}, {"concurrency": 3}],
    })
    versions = version_targets("grpc", GrpcEndpoint, inputs, inputs.endpoints,
                               inputs.version_values)
    assert [[(p, e.host, e.total, e.concurrency, e.metadata) for p, e in targets]
            for targets in versions] == [
        [("grpc-a", "a:1", 30, 2, {"host": "canary"}), ("grpc-b", "b:1", 30, 2, {"host": "canary"})],
        [("grpc-a", "a:1", 10, 3, {"team": "a"}), ("grpc-b", "b:1", 20, 3, {"team": "a"})],
    ]
    assert inputs.version_values is not None and inputs.version_values[0].host is None, (
        "the inputs themselves stay as typed")


def test_without_versions_there_is_one_and_without_endpoints_one_provider() -> None:
    inputs = HttpInputs.model_validate({"url": "http://x/", "qps": 5, "warmup": True})
    [[(provider, endpoint)]] = version_targets("http", HttpEndpoint, inputs, None, None)
    assert provider == "http" and endpoint == HttpEndpoint(url="http://x/", qps=5)


def ep(host: str | None = None) -> GrpcEndpoint:
    return GrpcEndpoint(host=host)


@pytest.mark.parametrize(("top", "endpoints", "versions", "where"), [
    (ep("h:1"), None, None, None),
    (ep(), None, None, ("host",)),
    (ep(), None, [ep("h:1"), ep()], ("versionValues", 1, "host")),
    (ep("h:2"), None, [ep("h:1"), ep()], None),
    (ep(), {"a": ep("h:1"), "b": ep()}, None, ("endpoints", "b", "host")),
    (ep(), {"a": ep()}, [ep("h:1"), ep()], ("endpoints", "a", "host")),
    (ep(), {"a": ep()}, [ep("h:1"), ep("h:2")], None),
])
def test_a_required_input_set_in_no_layer_is_found(
        top: GrpcEndpoint, endpoints: dict[str, GrpcEndpoint] | None,
        versions: list[GrpcEndpoint] | None, where: tuple[object, ...] | None) -> None:
    assert unset_input("host", top, endpoints, versions) == where


def test_every_layer_is_named_by_its_key_endpoints_by_id() -> None:
    inputs = GrpcInputs.model_validate({
        "call": "p.S.M", "endpoints": {"b": {"host": "b:1"}, "a": {"host": "a:1"}},
        "versionValues": [{"total": 30}]})
    assert [loc for loc, _ in every_layer(inputs, inputs.endpoints, inputs.version_values)] == [
        (), ("endpoints", "a"), ("endpoints", "b"), ("versionValues", 0)]
    assert providers("grpc", inputs.endpoints) == ["grpc-b", "grpc-a"]
    assert providers("http", None) == providers("http", {}) == ["http"]


def test_a_bad_url_is_reported_at_the_layer_that_gave_it() -> None:
    with pytest.raises(SpecError, match=r"^versionValues\[1\]\.url: expected an http:// or https://"):
        validated(HttpInputs, {"url": "http://x/", "versionValues": [{}, {"url": "nope"}]},
                  lambda loc: spell_key("", loc))
