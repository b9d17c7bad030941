"""What one input may cost: the bounds every reader of user input applies.

Each bound is generous for real use and small enough that no input, however small or
hostile, makes canarist use gigabytes of memory or minutes of time. Passing a bound is bad
input (exit 2) with one line naming the file, key or function. docs/security.md lists them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_METRIC_NAME",
    "MAX_PROBLEMS_SHOWN",
    "MAX_TASKS",
    "MAX_TEMPLATE_ITEMS",
    "MAX_TEMPLATE_OUTPUT",
    "MAX_VERSIONS",
    "MIB",
    "LimitError",
    "check_template_items",
    "check_template_string",
]

MIB: Final = 1024 * 1024

MAX_FILE_BYTES: Final = 64 * MIB
"""Largest file canarist reads as input: experiment files, values files (`-f`), `--set-file`
files, payload files, templates and protobuf schemas (64 MiB)."""

MAX_DEPTH: Final = 100
"""Deepest nesting of maps and lists in a YAML or JSON document, or in a `--set-json` value."""

MAX_ALIAS_NODES: Final = 1_000_000
"""How many nodes YAML aliases may add to a document when expanded (a `*ref` counts the
nodes of what it refers to again). Files canarist writes have no aliases; a hand-written
file rarely adds more than a few hundred. This stops "billion laughs" alias bombs."""

MAX_METRIC_NAME: Final = 256
"""Longest metric name an experiment file may hold (`http/latency-p99` is 16 characters)."""

MAX_TASKS: Final = 1000
"""Most tasks one experiment may have (`tasks` in values, `spec` in a file): a real one has a
handful; validating each costs time, so tens of thousands would take many seconds."""

MAX_VERSIONS: Final = 100
"""Most versions (`numVersions`) an experiment may compare."""

MAX_TEMPLATE_OUTPUT: Final = 64 * MIB
"""Longest text a Go template may produce, or any one template function produce
(characters)."""

MAX_TEMPLATE_ITEMS: Final = 1_000_000
"""Longest list a template function may produce (`until`, `seq`, `splitList`, ...)."""

MAX_PROBLEMS_SHOWN: Final = 20
"""Problems reported one per line before the rest are counted (`… and N more problems`)."""


class LimitError(ValueError):
    """A bound above was passed; the message names the bound (callers add where)."""


def check_template_string(length: int, what: str = "the result") -> None:
    """LimitError when a template function would produce more than MAX_TEMPLATE_OUTPUT
    characters (checked before the text is built, where it can be)."""
    if length > MAX_TEMPLATE_OUTPUT:
        raise LimitError(f"{what} would be {length:,} characters; templates may produce at "
                         f"most {MAX_TEMPLATE_OUTPUT // MIB} MiB")


def check_template_items(count: int, what: str = "the list") -> None:
    """LimitError when a template function would produce more than MAX_TEMPLATE_ITEMS items."""
    if count > MAX_TEMPLATE_ITEMS:
        raise LimitError(f"{what} would have {count:,} items; template lists may have at most "
                         f"{MAX_TEMPLATE_ITEMS:,}")
