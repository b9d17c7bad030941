"""What several commands share: value flags, reports, and the verdict of `assert`.

Light to import: `--help`, `report` and `assert` load this module, so what only some commands
need (values, YAML, reports, the runner) is imported inside the function that uses it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from canarist.core.errors import ExperimentFailed, UnavailableError, ValuesError

if TYPE_CHECKING:
    from canarist.core.assertions import Verdict
    from canarist.core.experiment import Experiment

log = logging.getLogger("canarist")
URL_TIMEOUT_S = 30.0
REPORT_FORMATS = ("text", "html", "json")


def value_options(func: Any) -> Any:
    """`-f/--values`, `--set`, `--set-string`, `--set-json`, `--set-file`, as Helm takes them.

    The command receives them merged, in Helm's order, as one `values` argument.
    """

    @functools.wraps(func)
    def with_values(*args: Any, values_files: tuple[str, ...], set_values: tuple[str, ...],
                    set_strings: tuple[str, ...], set_jsons: tuple[str, ...],
                    set_files: tuple[str, ...], **kwargs: Any) -> Any:
        values = collect_values(values_files, set_values, set_strings, set_jsons, set_files)
        return func(*args, values=values, **kwargs)

    command: Any = with_values
    for decorator in reversed([
        click.option("-f", "--values", "values_files", multiple=True, metavar="FILE|URL",
                     help="Values file (YAML); repeatable, later files win."),
        click.option("--set", "set_values", multiple=True, metavar="K=V",
                     help="Set values (Helm strvals syntax); repeatable."),
        click.option("--set-string", "set_strings", multiple=True, metavar="K=V",
                     help="Set values, keeping every value a string."),
        click.option("--set-json", "set_jsons", multiple=True, metavar="K=JSON",
                     help="Set values to JSON documents, e.g. 'http.payloadStr={\"a\":1}'."),
        click.option("--set-file", "set_files", multiple=True, metavar="K=PATH",
                     help="Set a value to the contents of a file."),
    ]):
        command = decorator(command)
    return command


def collect_values(files: tuple[str, ...], sets: tuple[str, ...], strings: tuple[str, ...],
                   jsons: tuple[str, ...], set_files: tuple[str, ...]) -> dict[str, Any]:
    """Helm's order: values files merged in order, then --set-json, --set, --set-string,
    --set-file."""
    from canarist.core import values as helm_values

    return helm_values.build_values(
        [_read_values_file(source) for source in files],
        set_json_values=jsons, set_values=sets, set_string_values=strings,
        set_file_values=set_files,
        read_file=_read_set_file,
    )


def _read_set_file(path: str) -> str:
    from canarist.backends.files import read_text_bounded

    return read_text_bounded(path, name="")  # parse_set_file names the flag and the path


def _read_values_file(source: str) -> dict[str, Any]:
    from canarist.core.yamltext import load_yaml

    if source.startswith(("http://", "https://")):
        import asyncio

        from canarist.backends.httpclient import HttpClient, RequestFailed, ResponseTooLarge
        from canarist.core.limits import MAX_FILE_BYTES, MIB

        async def fetch() -> bytes:
            async with HttpClient(timeout_s=URL_TIMEOUT_S) as client:
                return await client.fetch(source, limit=MAX_FILE_BYTES)

        try:
            raw = asyncio.run(fetch())
        except ResponseTooLarge:
            raise ValuesError(f"-f {source}: the values are larger than {MAX_FILE_BYTES // MIB} MiB"
                              ) from None
        except RequestFailed as exc:
            raise UnavailableError(f"-f {source}: cannot fetch values: {exc.reason}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValuesError(f"-f {source}: the values are not UTF-8 text") from None
    else:
        from canarist.backends.files import read_text_bounded
        from canarist.core.errors import InputError

        try:
            text = read_text_bounded(source, name=f"-f {source}")
        except InputError as exc:
            raise ValuesError(exc.message) from None
        except OSError as exc:
            raise ValuesError(f"-f {source}: cannot read values file: "
                              f"{exc.strerror or exc}") from None
    data = load_yaml(text, source=source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(f"-f {source}: expected a mapping of values at the top level")
    return data


def report_option(func: Any) -> Any:
    return click.option("-o", "--output", "--outputFormat", "output_format", default="text",
                        show_default=True, type=click.Choice(REPORT_FORMATS, case_sensitive=False),
                        help="Report format.")(func)


def render_report(experiment: Experiment, output_format: str) -> str:
    """The report in text, html or json (case-insensitive)."""
    fmt = output_format.lower()
    if fmt == "html":
        from canarist.reports.html import render_html  # matplotlib: imported only when needed

        return render_html(experiment)
    if fmt == "json":
        from canarist.reports.verdict import render_json

        return render_json(experiment)
    from canarist.reports.text import render_text

    return render_text(experiment)


def assert_options(func: Any) -> Any:
    for decorator in reversed([
        click.option("-c", "--condition", "conditions", multiple=True, required=True,
                     help="completed, nofailure, slos; repeatable or comma-separated."),
        click.option("--timeout", default="0s", show_default=True,
                     help="Keep checking every 3 s until this Go duration passes."),
    ]):
        func = decorator(func)
    return func


def check_conditions(read: Callable[[], Experiment], conditions: tuple[str, ...],
                     timeout: str) -> None:
    """Poll the experiment until the conditions hold or time is up; raise if they do not.

    Exit 1 when a condition does not hold; exit 3 when the only reason is that SLO values
    could not be had (canarist could not evaluate, which says nothing about the release).
    """
    from canarist.core.assertions import parse_conditions
    from canarist.core.durations import parse_duration
    from canarist.runners.conditions import assert_conditions

    wanted = parse_conditions(list(conditions))
    timeout_s = parse_duration(timeout, field="--timeout")
    verdicts = assert_conditions(read, wanted, timeout_s=timeout_s)
    _conclude(verdicts)


def _conclude(verdicts: list[Verdict]) -> None:
    if all(v.holds for v in verdicts):
        log.info("all conditions were satisfied")
        return
    log.info("not all conditions were satisfied")
    failed = [v for v in verdicts if not v.holds]
    if all(v.undecidable for v in failed):
        raise UnavailableError("cannot decide: " + "; ".join(v.message for v in failed))
    raise ExperimentFailed("assert conditions failed: " + "; ".join(v.message for v in failed))
