"""Metrics providers: Prometheus or any HTTP/JSON API, described by provider templates.

    sources   a template's text: built-in, a file, or a URL
    values    the dot one version's template sees (merged values, `elapsedTimeSeconds`)
    specs     the provider spec a rendered template decodes into
    render    template + values -> provider specs, bounded in time and memory
    extract   a number (or histogram buckets) out of a JSON answer, with jq, bounded

The `custommetrics` task (canarist.tasks.custommetrics) puts these together with the HTTP
client of canarist.backends.metrics_http.
"""
