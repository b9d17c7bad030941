{{- /*
kserve-raw: metrics of a KServe model server from its own request_predict_seconds
histogram in Prometheus (any deployment mode; the histogram is in seconds, the metrics
are reported in milliseconds). The model server counts no errors, so there are no error
metrics.

Values:
  labels              map of label matchers that select one version, e.g.
                      {model_name: sklearn-iris, namespace: default, pod: sklearn-iris-predictor-00002-deployment-5d8f9}
  latencyPercentiles  list of percentiles; one latency-p<P> metric each (default 50, 90, 95, 99)
  prometheusURL       Prometheus query endpoint
                      (default http://prometheus-operated.kfserving-monitoring:9090/api/v1/query)
  window              how far back every query looks, e.g. 10m (default: the time since
                      startingTime if it is set, else the longer of 5m and the time since
                      the experiment started)
  elapsedTimeSeconds  set by the task: seconds since startingTime or the experiment's start

Each metric names the series its query reads (`diagnose`), so that an empty result can be
explained: no series match the labels, or the window is too short to hold two samples.
*/ -}}
{{- define "labels" }}
{{- range $key, $val := .labels }}
{{- if or (kindIs "slice" $val) (kindIs "map" $val) (kindIs "invalid" $val) }}
{{- fail (printf "labels.%s must be a string or a number, not %s" $key (kindOf $val)) }}
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
provider: kserve-raw
method: GET
metrics:
- name: request-count
  type: counter
  description: Number of predictions
  params:
  - name: query
    value: |-
      sum(increase(request_predict_seconds_count{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      request_predict_seconds_count{ {{- template "labels" . -}} }
    window: {{ $window }}
- name: latency-mean
  type: gauge
  description: Mean prediction latency
  units: msec
  params:
  - name: query
    value: |-
      1000 * sum(increase(request_predict_seconds_sum{ {{- template "labels" . -}} }[{{ $window }}])) / sum(increase(request_predict_seconds_count{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      request_predict_seconds_count{ {{- template "labels" . -}} }
    window: {{ $window }}
- name: latency
  type: histogram
  description: Prediction latency histogram (buckets over the window)
  units: msec
  params:
  - name: query
    value: |-
      sum by (le) (increase(request_predict_seconds_bucket{ {{- template "labels" . -}} }[{{ $window }}]))
  jqExpression: '[.data.result[] | [(.metric.le | if . == "+Inf" then . else tonumber * 1000 end), .value[1]]]'
  diagnose:
    series: |-
      request_predict_seconds_count{ {{- template "labels" . -}} }
    window: {{ $window }}
{{- range $p := default (list 50 90 95 99) .latencyPercentiles }}
- name: latency-p{{ $p }}
  type: gauge
  description: {{ $p }} percentile prediction latency
  units: msec
  params:
  - name: query
    value: |-
      1000 * histogram_quantile({{ template "quantile" $p }}, sum by (le) (increase(request_predict_seconds_bucket{ {{- template "labels" $ -}} }[{{ $window }}])))
  jqExpression: .data.result[0].value[1] | tonumber
  diagnose:
    series: |-
      request_predict_seconds_count{ {{- template "labels" $ -}} }
    window: {{ $window }}
{{- end }}
