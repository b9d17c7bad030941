"""YAML text in and out: safe loading with positioned errors, Iter8-style dumping."""

from __future__ import annotations

from typing import Any

import yaml

from canarist.core.errors import SpecError


class _Dumper(yaml.SafeDumper):
    """Block style, sorted keys; multi-line strings as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=True, width=1_000_000)


_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)  # libyaml, when PyYAML was built with it


def load_yaml(text: str, *, source: str) -> Any:
    """Parse YAML safely (with libyaml when present); a syntax error names the source, line
    and column, as the pure-Python parser reports them."""
    if _FAST_LOADER is not None:
        try:
            return yaml.load(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # parse again below for the pure-Python parser's position and wording
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SpecError(f"{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: invalid YAML: {exc}") from None
