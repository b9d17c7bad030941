{{- /*
kserve-prometheus: metrics of each revision of a KServe InferenceService in serverless
(Knative) mode, from the queue-proxy metrics in Prometheus.

Values:
  labels              map of label matchers that select one version, e.g.
                      {service_name: sklearn-iris-predictor-default, revision_name: sklearn-iris-predictor-default-00002}
  latencyPercentiles  list of percentiles; one latency-p<P> metric each (default 50, 90, 95, 99)
  prometheusURL       Prometheus query endpoint
                      (default http://prometheus-operated.kfserving-monitoring:9090/api/v1/query)
  window              how far back every query looks, e.g. 10m (default: the time since
                      startingTime if it is set, else the longer of 5m and the time since
                      the experiment started)
  elapsedTimeSeconds  set by the task: seconds since startingTime or the experiment's start

Each metric names the series its query reads (`diagnose`), so that an empty result can be
explained: no series match the labels, or the window is too short to hold two samples.

Errors are requests answered with a 5xx status (response_code_class="5xx"); 4xx answers are
the client's fault and count as requests only.
*/ -}}
{{- define "labels" }}
{{- range $key, $val := .labels }}
{{- if or (kindIs "slice" $val) (kindIs "map" $val) (kindIs "invalid" $val) }}
{{- fail (printf "labels.%s must be a string or a number, not %s" $key (kindOf $val)) }}
{{- end }}
{{- if or (eq "response_code" $key) (eq "response_code_class" $key) }}
{{- fail (printf "labels.%s is set by the template; remove it from labels" $key) }}
{{- end }}
{{- $key }}={{ quote $val }},
{{- end }}
{{- end }}
{{- define "quantile" }}
{{- $p := printf "%v" . }}
{{- if or (contains "e" $p) (le (float64 $p) 0.0) (gt (float64 $p) 100.0) }}
{{- fail (printf "latencyPercentiles: %v is not a percentile; expected a decimal number above 0 and at most 100" .) }}
{{- end }}
{{- if eq (float64 $p) 100.0 }}1
{{- else }}
{{- $parts := splitList "." $p }}
{{- $head := printf "0.%02d" (atoi (first $parts)) }}
{{- if eq (len $parts) 1 }}{{ trimSuffix "0" $head }}{{ else }}{{ $head }}{{ index $parts 1 }}{{ end }}
{{- end }}
{{- end }}
{{- $window := printf "%ds" (max 300 .elapsedTimeSeconds) }}
{{- if .startingTime }}{{ $window = printf "%ds" (max 1 .elapsedTimeSeconds) }}{{ end }}
{{- with .window }}
{{- $window = toString . }}
{{- if not (and (regexMatch "^([0-9]+(ms|s|m|h))+$" $window) (regexMatch "[1-9]" $window)) }}
{{- fail (printf "window: %v is not a duration such as 5m, 90s or 1h30m (whole numbers of ms, s, m and h, above zero)" .) }}
{{- end }}
{{- end -}}
# the endpoint where Prometheus answers instant queries
url: {{ default "http://prometheus-operated.kfserving-monitoring:9090/api/v1/query" .prometheusURL }}
provider: kserve-prometheus
method: GET
metrics:
- name: request-count
  type: counter
  description: Number of requests
  params:
  - name: query
    value: |-
      sum(increase(revision_app_request_count{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      revision_app_request_count{ {{- template "labels" . -}} }
    window: {{ $window }}
- name: error-count
  type: counter
  description: Number of unsuccessful requests (HTTP 5xx)
  params:
  - name: query
    value: |-
      sum(increase(revision_app_request_count{response_code_class="5xx",{{ template "labels" . }}}[{{ $window }}])) or on() (0 * sum(increase(revision_app_request_count{ {{- template "labels" . -}} }[{{ $window }}])))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      revision_app_request_count{ {{- template "labels" . -}} }
    window: {{ $window }}
- name: error-rate
  type: gauge
  description: Fraction of unsuccessful requests (HTTP 5xx)
  params:
  - name: query
    value: |-
      (sum(increase(revision_app_request_count{response_code_class="5xx",{{ template "labels" . }}}[{{ $window }}])) or on() (0 * sum(increase(revision_app_request_count{ {{- template "labels" . -}} }[{{ $window }}])))) / sum(increase(revision_app_request_count{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      revision_app_request_count{ {{- template "labels" . -}} }
    window: {{ $window }}
- name: latency-mean
  type: gauge
  description: Mean latency
  units: msec
  params:
  - name: query
    value: |-
      sum(increase(revision_app_request_latencies_sum{ {{- template "labels" . -}} }[{{ $window }}])) / sum(increase(revision_app_request_latencies_count{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      revision_app_request_latencies_count{ {{- template "labels" . -}} }
    window: {{ $window }}
- name: latency
  type: histogram
  description: Latency histogram (request latency buckets over the window)
  units: msec
  params:
  - name: query
    value: |-
      sum by (le) (increase(revision_app_request_latencies_bucket{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: '[.data.result[] | [.metric.le, .value[1]]]'
  diagnose:
    series: |-
      revision_app_request_latencies_count{ {{- template "labels" . -}} }
    window: {{ $window }}
{{- range $p := default (list 50 90 95 99) .latencyPercentiles }}
- name: latency-p{{ $p }}
  type: gauge
  description: {{ $p }} percentile latency
  units: msec
  params:
  - name: query
    value: |-
      histogram_quantile({{ template "quantile" $p }}, sum by (le) (increase(revision_app_request_latencies_bucket{ {{- template "labels" $ -}} }[{{ $window }}])))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      revision_app_request_latencies_count{ {{- template "labels" $ -}} }
    window: {{ $window }}
{{- end }}
