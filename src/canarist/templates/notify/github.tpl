{{- /*
  GitHub repository_dispatch event: {"event_type": "canarist", "client_payload": <Report>}.
  The Report has 8 top-level keys (GitHub allows at most 10 in client_payload); a workflow
  reads e.g. github.event.client_payload.summary.slos or client_payload.summary.text.
*/ -}}
{"event_type": "canarist", "client_payload": {{ .Report | toPrettyJson }}}
