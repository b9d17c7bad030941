"""`notify`: send an HTTP request (a Slack message, a GitHub dispatch, any webhook) about the
experiment. `inputs` checks what to send, `report` is what the payload template sees,
`task` fetches the template and sends the request (through `canarist.backends.httpclient`)."""

from canarist.tasks.notify.inputs import BODY_LOG_LIMIT, BUILTIN_TEMPLATES, NotifyInputs
from canarist.tasks.notify.report import redacted_experiment, report_data, report_summary
from canarist.tasks.notify.task import TASK, builtin_template, run

__all__ = ["BODY_LOG_LIMIT", "BUILTIN_TEMPLATES", "TASK", "NotifyInputs", "builtin_template",
           "redacted_experiment", "report_data", "report_summary", "run"]
