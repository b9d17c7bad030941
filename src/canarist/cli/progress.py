"""A live status line on a terminal for long tasks (load tests); plain log lines elsewhere."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from canarist.core.terminal import one_line
from canarist.tasks.base import ProgressSink


class TerminalProgress:
    """Shows the latest progress line under a spinner; removed when the task ends."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None

    def __call__(self, line: str) -> None:
        line = escape(one_line(line))
        if self._status is None:
            self._status = self._console.status(line)
            self._status.start()
        else:
            self._status.update(line)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def terminal_progress_factory() -> type[TerminalProgress] | None:
    """A factory of terminal progress sinks when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    console = Console(stderr=True)

    class _Bound(TerminalProgress):
        def __init__(self) -> None:
            super().__init__(console)

    return _Bound


__all__ = ["ProgressSink", "TerminalProgress", "terminal_progress_factory"]
