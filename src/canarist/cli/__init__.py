"""The command line: the only code that parses argv, prints to the terminal, or exits."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from canarist.core.errors import CanaristError, SpecError
from canarist.core.limits import MAX_PROBLEMS_SHOWN

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with the documented code: 0 ok, 1 rejected, 2 bad input, 3 unavailable."""
    from canarist.cli.app import cli

    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="canarist",
                        standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        _error(exc.format_message())
        code = EXIT_USAGE
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        _error("interrupted")
        code = 130
    except SpecError as exc:
        for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
            _error(problem)
        if len(exc.problems) > MAX_PROBLEMS_SHOWN:
            _error(f"… and {len(exc.problems) - MAX_PROBLEMS_SHOWN:,} more problems")
        code = exc.exit_code
    except CanaristError as exc:
        _error(exc.message)
        code = exc.exit_code
    except Exception as exc:  # the last line of defence: one line, no traceback unless debugging
        if logging.getLogger("canarist").isEnabledFor(logging.DEBUG):
            logging.getLogger("canarist").exception("internal error")
        _error(f"internal error: {type(exc).__name__}: {exc}")
        code = EXIT_UNAVAILABLE
    sys.exit(code if isinstance(code, int) else 0)


def _error(message: str) -> None:
    """One line on stderr: redacted, its control and bidi-format characters escaped."""
    from canarist.core.redact import redact_text
    from canarist.core.terminal import one_line

    click.echo(f"Error: {one_line(redact_text(' '.join(message.splitlines())))}", err=True)
