"""Where a provider template's text comes from: built-in, a file, or a URL.

Templates are referred to by

* URL (`http://`, `https://`): downloaded, with a timeout; any status but 2xx is an error;
* built-in name (`kserve-prometheus`, `istio-prom`, `kserve-raw`): shipped with canarist;
* file path (`file://` URLs too), relative to a base directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import urlsplit

from canarist.backends.files import read_text_bounded
from canarist.backends.metrics_http import (
    DEFAULT_TIMEOUT_S,
    MetricsHttpClient,
    QueryUnavailable,
)
from canarist.core.errors import InputError, UnavailableError
from canarist.core.redact import path_url
from canarist.core.validation import closest

__all__ = [
    "TemplateSource",
    "builtin_template",
    "builtin_template_names",
    "load_local_template",
    "load_template",
]

_BUILTIN_DIR: Final = ("templates", "custommetrics")
_SUFFIX: Final = ".tpl"


def _builtin_dir() -> Any:
    return resources.files("canarist").joinpath(*_BUILTIN_DIR)


def builtin_template_names() -> list[str]:
    """Names of the templates shipped with canarist, sorted."""
    return sorted(
        entry.name[: -len(_SUFFIX)] for entry in _builtin_dir().iterdir()
        if entry.name.endswith(_SUFFIX)
    )


def builtin_template(name: str) -> str:
    """The text of a built-in template; InputError naming the known ones if there is none."""
    if name in builtin_template_names():
        text: str = _builtin_dir().joinpath(name + _SUFFIX).read_text(encoding="utf-8")
        return text
    raise InputError(f"unknown built-in template {name!r}; expected one of "
                     + ", ".join(builtin_template_names()))


@dataclass(frozen=True)
class TemplateSource:
    """A template's text and where it came from (`origin` is safe to show)."""

    text: str
    origin: str


async def load_template(
    ref: str,
    *,
    base_dir: Path,
    client: MetricsHttpClient | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TemplateSource:
    """Load a template by URL, built-in name or file path (relative paths from `base_dir`).

    UnavailableError when a URL cannot be fetched (any status but 2xx included) or a file
    cannot be read; InputError when `ref` is empty.
    """
    if not ref.strip():
        raise InputError("empty template reference; expected a URL, a file or one of "
                         + ", ".join(builtin_template_names()))
    if ref.startswith(("http://", "https://")):
        return TemplateSource(await _fetch(ref, client, timeout_s), path_url(ref))
    return _load_local(ref, base_dir)


def load_local_template(ref: str, base_dir: Path) -> TemplateSource | None:
    """A built-in or file template without any network access; None for a URL.

    InputError when `ref` names neither a built-in template nor an existing file.
    """
    if ref.startswith(("http://", "https://")):
        return None
    return _load_local(ref, base_dir)


def _load_local(ref: str, base_dir: Path) -> TemplateSource:
    if ref.startswith("file://"):
        return _read_file(Path(ref[len("file://"):]), base_dir)
    if ref in builtin_template_names():
        return TemplateSource(builtin_template(ref), f"built-in template {ref}")
    path = _expanded(ref)
    if not _is_file(path if path.is_absolute() else base_dir / path):
        names = builtin_template_names()
        guess = closest(ref.removesuffix(_SUFFIX), names)
        hint = f"; did you mean {guess}?" if guess else ""
        raise InputError(f"{ref!r} is not a built-in template, a URL or an existing file{hint} "
                         f"(built-in: {', '.join(names)})")
    return _read_file(path, base_dir)


def _expanded(ref: str) -> Path:
    try:
        return Path(ref).expanduser()
    except RuntimeError:  # `~name` of a user this machine does not have
        return Path(ref)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system is no file of ours either
        return False


async def _fetch(url: str, client: MetricsHttpClient | None, timeout_s: float) -> str:
    try:
        if client is not None:
            return await client.fetch_text(url)
        async with MetricsHttpClient(timeout_s=timeout_s) as own:
            return await own.fetch_text(url)
    except QueryUnavailable as exc:
        raise UnavailableError(f"cannot fetch template {path_url(url)}: {exc.reason}"
                               + _builtin_hint(url)) from None


def _builtin_hint(url: str) -> str:
    """For a URL whose file name is a built-in template's (`.../kserve-prometheus.tpl`): how to
    use the built-in instead, which needs no download."""
    file_name = PurePosixPath(urlsplit(url).path).name
    name = file_name[: -len(_SUFFIX)] if file_name.endswith(_SUFFIX) else file_name
    if name not in builtin_template_names():
        return ""
    return (f"; the built-in template {name} serves the same metrics without a download: "
            f"name it instead of the URL, as in --set custommetrics.templates.{name}={name}")


def _read_file(path: Path, base_dir: Path) -> TemplateSource:
    full = path if path.is_absolute() else base_dir / path
    try:
        return TemplateSource(read_text_bounded(full, name=f"template {full}"), str(full))
    except OSError as exc:
        raise UnavailableError(f"cannot read template {full}: {exc.strerror or exc}") from None
