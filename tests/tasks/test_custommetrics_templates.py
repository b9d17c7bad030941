"""Provider templates render exactly as Go text/template + Sprig renders them (the Go oracle).

Iter8 decoded values through JSON, so its numbers were float64; values canarist reads from
YAML keep ints as ints. Both are rendered here, and both must give Go's output.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.core.gotemplate.oracle_runner import OracleUnavailable, run_oracle
from tests.helpers import require

from canarist.core.errors import TemplateError
from canarist.core.gotemplate import render
from canarist.tasks.templates import builtin_template, builtin_template_names, parse_provider_spec

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
                             "latency-p50", "latency-p75", "latency-p90", "latency-p95"]


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
