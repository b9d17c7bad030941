"""Provider templates render exactly as Go text/template + Sprig renders them (the Go oracle).

Iter8 decoded values through JSON, so its numbers were float64, and it computed
`elapsedTimeSeconds` as an int64. The task gives templates the same types (`template_data`);
the oracle decodes the same values the way Iter8 did, and both must give Go's output. The
engine itself is also checked with ints, as other Go programs (Helm's --set) produce them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.core.gotemplate.oracle_runner import OracleUnavailable, run_oracle
from tests.helpers import require

from canarist.backends.providers.render import render_provider_specs, render_raw
from canarist.backends.providers.sources import (
    builtin_template,
    builtin_template_names,
    load_local_template,
)
from canarist.backends.providers.specs import parse_provider_spec
from canarist.backends.providers.values import template_data
from canarist.core.errors import InputError, SpecError, TemplateError, ValuesError
from canarist.core.gotemplate import render
from canarist.core.yamltext import load_yaml

# An Iter8-style provider template: a `labels` helper, `range` over a map, `default`.
ITER8_STYLE = """\
{{- define "labels"}}
{{- range $key, $val := .labels }}
{{- if or (eq (kindOf $val) "slice") (eq (kindOf $val) "map")}}
{{- fail (printf "labels should be a primitive types but received: %s :%s" $key $val) }}
{{- end }}
{{- if eq "response_code" $key }}
{{- fail "labels should not contain 'response_code'" }}
{{- end }}
          {{ $key }}="{{ $val }}",
{{- end }}
{{- end}}

# endpoint where the monitoring instance is available
url: {{ default "http://prometheus.istio-system:9090/api/v1/query" .istioPromURL }}
provider: istio-prom
method: GET
metrics:
- name: request-count
  type: counter
  description: |
    Number of requests
  params:
  - name: query
    value: |
      sum(last_over_time(istio_requests_total{
        {{- template "labels" . }}
      }[{{ .elapsedTimeSeconds }}s])) or on() vector(0)
  jqExpression: .data.result[0].value[1] | tonumber
{{- range $i, $p := .latencyPercentiles }}
- name: latency-p{{ $p }}
  type: gauge
  description: |
    {{ $p }} percentile latency
  params:
  - name: query
    value: |
      histogram_quantile(0.{{ $p }}, sum(rate(istio_request_duration_milliseconds_bucket{
        {{- template "labels" $ }}
      }[{{ $.elapsedTimeSeconds }}s])) by (le))
  jqExpression: .data.result[0].value[1] | tonumber
{{- end }}
"""

TUTORIAL = {"labels": {"service_name": "sklearn-iris-predictor-default",
                       "revision_name": "sklearn-iris-predictor-default-00002"},
            "latencyPercentiles": [50, 75, 90, 95], "elapsedTimeSeconds": 1800}
DATA: list[dict[str, Any]] = [
    TUTORIAL,
    {**TUTORIAL, "latencyPercentiles": [50.0, 75.0, 90.0, 95.0]},  # as Iter8 saw them
    {"labels": {"destination_workload": "httpbin-v2", "port": 8080, "weight": 0.5},
     "latencyPercentiles": [99.9, 5, 0.5, 100, 99.99], "elapsedTimeSeconds": 0,
     "prometheusURL": "http://prom:9090/api/v1/query", "istioPromURL": "http://istio/q"},
    {"labels": {"model_name": 'quo"te\\back\nline é'}, "elapsedTimeSeconds": -5},
    {},
    {"labels": {"a": [1]}},
    {"labels": {"a": {"b": 1}}},
    {"labels": {"a": None}},
    {"labels": {"response_code": "200"}},
    {"labels": {"response_code_class": "5xx"}},
    {"latencyPercentiles": [0]},
    {"latencyPercentiles": [100.5]},
    {"latencyPercentiles": ["ninety"]},
    {"latencyPercentiles": [1e-7]},
    {"latencyPercentiles": ["90"]},
]
TEMPLATES = {name: builtin_template(name) for name in builtin_template_names()}
TEMPLATES["iter8-style"] = ITER8_STYLE


def _oracle(cases: list[dict[str, object]]) -> list[Any]:
    try:
        return run_oracle(cases)
    except OracleUnavailable as exc:
        require(False, str(exc))
        raise


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_render_as_go_renders_them(name: str) -> None:
    text = TEMPLATES[name]
    results = _oracle([{"name": name, "text": text, "data": d, "strict": False} for d in DATA])
    for data, go in zip(DATA, results, strict=True):
        try:
            ours, error = render(text, data, name=name), None
        except TemplateError as exc:
            ours, error = None, str(exc)
        if go.error is None:
            assert error is None and ours is not None, (data, go.out, error)
            assert ours == go.out, data
            if name in builtin_template_names():  # ours escape label values; Iter8's did not
                parse_provider_spec(ours, name=name)
        else:
            assert ours is None, (data, go.error)
            assert error == go.error.removeprefix("template: "), data


def test_the_tutorial_values_give_the_expected_queries() -> None:
    out = render(builtin_template("kserve-prometheus"), TUTORIAL, name="kserve-prometheus")
    spec = parse_provider_spec(out, name="kserve-prometheus")
    queries = {m.name: m.params[0].value for m in spec.metrics}
    matchers = ('revision_name="sklearn-iris-predictor-default-00002",'
                'service_name="sklearn-iris-predictor-default",')
    assert queries["request-count"] == f"sum(increase(revision_app_request_count{{{matchers}}}[1800s]))"
    assert queries["error-count"] == (
        f'sum(increase(revision_app_request_count{{response_code_class="5xx",{matchers}}}[1800s]))'
        f" or on() (0 * sum(increase(revision_app_request_count{{{matchers}}}[1800s])))")
    assert queries["latency-mean"] == (
        f"sum(increase(revision_app_request_latencies_sum{{{matchers}}}[1800s])) / "
        f"sum(increase(revision_app_request_latencies_count{{{matchers}}}[1800s]))")
    assert queries["latency-p75"] == (
        "histogram_quantile(0.75, sum by (le) (increase("
        f"revision_app_request_latencies_bucket{{{matchers}}}[1800s])))")
    assert list(queries) == ["request-count", "error-count", "error-rate", "latency-mean",
                             "latency", "latency-p50", "latency-p75", "latency-p90", "latency-p95"]


@pytest.mark.parametrize(("percentile", "quantile"), [
    (90, "0.9"), (99.9, "0.999"), (5, "0.05"), (50, "0.5"), (0.5, "0.005"), (100, "1"),
    (99, "0.99"), (10, "0.1"), (12.5, "0.125"), ("95", "0.95")])
def test_any_percentile_becomes_the_right_quantile(percentile: Any, quantile: str) -> None:
    for name in builtin_template_names():
        out = render(builtin_template(name), {"latencyPercentiles": [percentile]}, name=name)
        spec = parse_provider_spec(out, name=name)
        [latency] = [m for m in spec.metrics if m.name.startswith("latency-p")]
        assert latency.name == f"latency-p{percentile}"
        assert f"histogram_quantile({quantile}, " in latency.params[0].value


def test_iter8_string_concatenation_would_have_been_wrong() -> None:
    out = render(ITER8_STYLE, {"latencyPercentiles": [99.9, 5]}, name="iter8")
    assert "histogram_quantile(0.99.9," in out and "histogram_quantile(0.5," in out


# Values as a user writes them in experiment.yaml; Iter8 decoded them through encoding/json,
# so every number became a float64, and set elapsedTimeSeconds as an int64.
ITER8_TYPES_VALUES = """\
n: 7
ratio: 0.5
big: 1234567
flag: true
nothing: null
name: seven
latencyPercentiles: [50, 99.9, 75]
labels: {service_name: s, port: 8080}
nested: {list: [1, [2, 3.5], {k: 4}]}
"""
ITER8_TYPES_TEMPLATES = [
    "{{ ne .n 7.0 }}",
    "{{ eq .n 7 }}",
    "{{ eq .n 7.0 }} {{ lt .ratio 1.0 }} {{ gt .big 1000.0 }}",
    '{{ printf "%T %T %T %T %T" .n .ratio .big .flag .name }}',
    '{{ printf "%T %v" .elapsedTimeSeconds .elapsedTimeSeconds }}',
    "{{ eq .elapsedTimeSeconds 1800 }}",
    '{{ max 1 .elapsedTimeSeconds }} {{ printf "%ds" (max 1 .elapsedTimeSeconds) }}',
    "{{ .big }} {{ quote .big }} {{ .labels.port }} {{ quote .labels.port }}",
    '{{ range .latencyPercentiles }}{{ . }}|{{ printf "%v" . }}|{{ kindOf . }} {{ end }}',
    '{{ range .nested.list }}{{ printf "%T" . }} {{ end }}{{ index .nested.list 2 "k" | printf "%T" }}',
    "{{ add .n 1 }} {{ mul .ratio 4 }} {{ atoi (printf \"%v\" .n) }} {{ int .ratio }}",
    "{{ .n | toString }} {{ toJson .nested }} {{ toYaml .labels }}",
    "{{ if .nothing }}x{{ else }}nil{{ end }} {{ kindOf .flag }}",
]


def _iter8_data(values_yaml: str, elapsed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what canarist gives a template, the JSON data the Go oracle decodes as Iter8 did)."""
    values = load_yaml(values_yaml, source="values")
    now = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    ours = template_data(values, None, start_time=now - timedelta(seconds=elapsed), now=now)
    return ours, {**values, "elapsedTimeSeconds": elapsed}


def _outcome(text: str, data: Any) -> tuple[str | None, str | None]:
    try:
        return render(text, data, name="t"), None
    except TemplateError as exc:
        return None, str(exc)


def test_templates_see_numbers_with_the_types_iter8_gave_them() -> None:
    ours, theirs = _iter8_data(ITER8_TYPES_VALUES, 1800)
    results = _oracle([{"name": "t", "text": t, "data": theirs, "strict": False, "iter8": True}
                       for t in ITER8_TYPES_TEMPLATES])
    for text, go in zip(ITER8_TYPES_TEMPLATES, results, strict=True):
        out, error = _outcome(text, ours)
        if go.error is None:
            assert (out, error) == (go.out, None), text
        else:
            assert (out, error) == (None, go.error.removeprefix("template: ")), text
    # the two comparisons that tell the types apart, written out
    assert _outcome("{{ ne .n 7.0 }}", ours) == ("false", None)
    assert "incompatible types for comparison" in str(_outcome("{{ eq .n 7 }}", ours)[1])


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_render_with_iter8s_types_as_go_renders_them(name: str) -> None:
    text = TEMPLATES[name]
    cases = []
    for values in (
        "labels: {service_name: sklearn-iris-predictor-default, revision_name: r-00002}\n"
        "latencyPercentiles: [50, 75, 90, 99.9]\n",
        "labels: {model_name: m, port: 8080}\nlatencyPercentiles: [100, 0.5, 5]\n",
        "latencyPercentiles: [50.0, 90]\nwindow: 10m\n",
        "{}\n",
    ):
        for elapsed in (0, 45, 1800):
            cases.append(_iter8_data(values, elapsed))
    results = _oracle([{"name": name, "text": text, "data": theirs, "strict": False,
                        "iter8": True} for _, theirs in cases])
    for (ours, theirs), go in zip(cases, results, strict=True):
        assert go.error is None, (theirs, go.error)
        assert _outcome(text, ours) == (go.out, None), theirs
        if name in builtin_template_names():
            parse_provider_spec(go.out or "", name=name)


def test_a_number_too_large_for_a_float64_is_named() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(ValuesError, match=r"^labels\.ids\[1\]: 1{400} is too large for a number"):
        template_data({"labels": {"ids": [1, int("1" * 400)]}}, None, start_time=now, now=now)


# -- the pure functions behind `canarist template list|render` -----------------------------


def test_builtin_templates_are_listed_and_loaded() -> None:
    assert builtin_template_names() == ["istio-prom", "kserve-prometheus", "kserve-raw"]
    assert 'define "labels"' in builtin_template("kserve-prometheus")
    with pytest.raises(InputError) as caught:
        builtin_template("nope")
    assert (caught.value.message, caught.value.exit_code) == (
        "unknown built-in template 'nope'; expected one of istio-prom, kserve-prometheus, "
        "kserve-raw", 2)


def test_render_provider_specs_merges_values_like_the_task() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    specs = render_provider_specs(
        builtin_template("kserve-prometheus"),
        {"labels": {"service_name": "iris"}, "latencyPercentiles": [90],
         "startingTime": "2024-05-01T11:58:00.5Z", "elapsedTimeSeconds": 5},
        [{"labels": {"revision_name": "iris-00002"}}, {"labels": {"revision_name": "iris-00001"}}],
        now, name="kserve-prometheus")
    assert [version for version, _ in specs] == [0, 1]
    first = specs[0][1]
    assert first["url"] == "http://prometheus-operated.kfserving-monitoring:9090/api/v1/query"
    assert first["method"] == "GET"
    names = [m["name"] for m in first["metrics"]]
    assert names == ["request-count", "error-count", "error-rate", "latency-mean", "latency",
                     "latency-p90"]
    histogram = first["metrics"][4]
    assert histogram["type"] == "histogram"
    assert histogram["params"] == [{"name": "query", "value": (
        'sum by (le) (increase(revision_app_request_latencies_bucket'
        '{revision_name="iris-00002",service_name="iris",}[119s]))')}]
    assert histogram["jqExpression"] == "[.data.result[] | [.metric.le, .value[1]]]"
    p90 = first["metrics"][5]
    assert p90["params"] == [{"name": "query", "value": (
        'histogram_quantile(0.9, sum by (le) (increase(revision_app_request_latencies_bucket'
        '{revision_name="iris-00002",service_name="iris",}[119s])))')}]
    assert p90["jqExpression"] == ".data.result[0].value[1] | tonumber"
    assert p90["units"] == "msec"
    assert 'revision_name="iris-00001"' in specs[1][1]["metrics"][0]["params"][0]["value"]
    assert p90["diagnose"] == {"series": 'revision_app_request_latencies_count'
                               '{revision_name="iris-00002",service_name="iris",}',
                               "window": "119s"}
    # without startingTime the window is the longer of 5m and the time since the start
    [(_, spec)] = render_provider_specs(builtin_template("kserve-raw"), {}, [], now)
    assert spec["metrics"][0]["params"][0]["value"] == \
        "sum(increase(request_predict_seconds_count{}[300s]))"
    [(_, spec)] = render_provider_specs(builtin_template("kserve-raw"), {}, [], now,
                                        start_time=now - timedelta(minutes=10))
    assert "[600s]" in spec["metrics"][0]["params"][0]["value"]
    # a window the values set wins over both
    [(_, spec)] = render_provider_specs(builtin_template("kserve-raw"), {
        "window": "1h30m", "startingTime": "2024-05-01T11:58:00Z"}, [], now)
    assert "[1h30m]" in spec["metrics"][0]["params"][0]["value"]
    assert spec["metrics"][0]["diagnose"]["window"] == "1h30m"


def test_render_errors_are_input_errors() -> None:
    now = datetime.now(UTC)
    with pytest.raises(TemplateError, match=r"kserve-prometheus:.*labels\.response_code is set by"):
        render_provider_specs(builtin_template("kserve-prometheus"),
                              {"labels": {"response_code": "200"}}, [], now, name="kserve-prometheus")
    with pytest.raises(ValuesError, match="cannot parse startingTime"):
        render_provider_specs(builtin_template("kserve-raw"), {"startingTime": "yesterday"}, [], now)
    with pytest.raises(SpecError, match="invalid YAML"):
        render_provider_specs("url: [", {}, [], now)


def test_render_raw_shows_any_template_as_is() -> None:
    assert render_raw("{{ .a }}-{{ .b.c | default 7 }}\n", {"a": 1, "b": {}}) == "1-7\n"
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert render_raw("{{ .t }}", {"t": when}) == "2024-01-02T03:04:05Z"


def test_render_names_the_template_by_its_origin_whatever_it_is(tmp_path: Path) -> None:
    text = "url: x\nmetrics:\n- {name: m, type: gauge, jqExpression: .v}\n"
    [(version, spec)] = render_provider_specs(text, {}, [], datetime.now(UTC),
                                              name="https://example.com/templates/mine.tpl")
    assert version == 0 and spec["metrics"][0]["name"] == "m"


@pytest.mark.parametrize("ref", ["t" * 5000 + ".tpl", "~no-such-user-here/mine.tpl"])
def test_a_name_no_file_can_have_is_named_as_not_found(tmp_path: Path, ref: str) -> None:
    with pytest.raises(InputError) as caught:
        load_local_template(ref, tmp_path)
    assert caught.value.exit_code == 2
    assert "is not a built-in template, a URL or an existing file" in caught.value.message
