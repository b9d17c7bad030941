{{- /*
  Slack incoming-webhook message: {"text": "..."}.
  The text is the verdict, one line per version, and how far the experiment got.
  &, < and > are escaped as Slack requires; toJson makes a valid JSON string.
*/ -}}
{{- $summary := .Report.summary -}}
{{- $text := printf "*canarist experiment*: %s" $summary.text -}}
{{- range $summary.details }}{{ $text = printf "%s\n• %s" $text . }}{{ end -}}
{{- $text = printf "%s\nloop %v; %v of %v tasks completed before this notification" $text .Report.numLoops .Report.numCompletedTasks .Report.numTasks -}}
{"text": {{ $text | replace "&" "&amp;" | replace "<" "&lt;" | replace ">" "&gt;" | toJson }}}
