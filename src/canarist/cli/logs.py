"""Log lines on stderr in Iter8's shape: `time=2006-01-02 15:04:05 level=info msg=...`.

Every message is redacted (`redact_text`: URL user info, secret query values, webhook paths,
`Authorization:` lines, `password=` assignments) and shown without control or bidi-format
characters (`printable`); the lines after the first of a message are indented, so nothing a
message quotes can pass for a log line of its own.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime

from canarist.core.redact import redact_text
from canarist.core.terminal import printable

TRACE = 5
LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}
_NAMES = {TRACE: "trace", logging.DEBUG: "debug", logging.INFO: "info",
          logging.WARNING: "warning", logging.ERROR: "error", logging.CRITICAL: "fatal"}
_COLOURS = {"trace": "37", "debug": "37", "info": "36", "warning": "33", "error": "31",
            "fatal": "31"}


class Iter8Formatter(logging.Formatter):
    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        level = _NAMES.get(record.levelno, record.levelname.lower())
        shown = f"\x1b[{_COLOURS[level]}m{level}\x1b[0m" if self.colour else level
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return f"time={stamp} level={shown} msg={shown_message(message)}"


def shown_message(message: str) -> str:
    """`message` redacted, escaped, and its second and later lines indented."""
    lines = printable(redact_text(message)).split("\n")
    return "\n".join([lines[0], *("  " + line if line else line for line in lines[1:])])


def configure(level_name: str) -> int:
    """Send canarist's log records to stderr at the given level; returns the numeric level."""
    level = LEVELS[level_name.lower()]
    handler = logging.StreamHandler(sys.stderr)
    colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    handler.setFormatter(Iter8Formatter(colour))
    logger = logging.getLogger("canarist")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return level
