"""The error hierarchy. Each class carries the exit code the CLI uses for it.

    CanaristError                 exit 3 unless a subclass says otherwise
    ├── InputError                exit 2: bad usage, values, files, templates, expressions
    │   ├── ValuesError           --set / -f values (strvals syntax, merging)
    │   ├── SpecError             experiment.yaml or rendered experiment does not validate
    │   ├── TemplateError         Go text/template parse or execution error
    │   ├── ExpressionError       `if` expression syntax or evaluation error
    │   └── DurationError         a Go duration string that does not parse
    ├── ExperimentFailed          exit 1: a task failed or an assertion does not hold
    │   └── TaskError             raised by a task; the engine records it as the failure
    └── UnavailableError          exit 3: a backend, the cluster or a needed file is unreachable

Messages are one line that names the key, file or field and what was expected.
"""

from __future__ import annotations


class CanaristError(Exception):
    """Base of every error canarist reports to the user."""

    exit_code: int = 3

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(CanaristError):
    """Bad usage or bad input: values, files, templates, expressions, flags."""

    exit_code = 2


class ValuesError(InputError):
    """A `--set`/`--set-string`/`--set-file` value or a values file is malformed."""


class SpecError(InputError):
    """An experiment (file or rendered from values) is invalid.

    `problems` holds every problem found, so all of them can be reported in one run.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    @classmethod
    def listing(cls, problems: list[str], *, counted: str = "", most: int | None = None
                ) -> SpecError:
        """Every problem in one error. Its message is the problem itself when there is one;
        else the problems joined by "; ", after "N <counted>: " when `counted` says what they
        are, and only the first `most` of them, the rest counted, when `most` is given."""
        if len(problems) == 1:
            return cls(problems[0], problems)
        shown = "; ".join(problems if most is None else problems[:most])
        if most is not None and len(problems) > most:
            shown += f"; … and {len(problems) - most:,} more"
        return cls(f"{len(problems)} {counted}: {shown}" if counted else shown, problems)


class TemplateError(InputError):
    """A Go text/template failed to parse or execute (message carries line:col)."""


class ExpressionError(InputError):
    """An `if` expression failed to parse or evaluate."""


class DurationError(InputError):
    """A duration string is not a valid Go duration."""


class ExperimentFailed(CanaristError):
    """The experiment failed or an assertion does not hold: the release is rejected."""

    exit_code = 1


class TaskError(ExperimentFailed):
    """A task could not do its job; the engine records this as the experiment failure."""


class UnavailableError(CanaristError):
    """canarist could not evaluate: a backend, the cluster or a file is unreachable."""

    exit_code = 3
