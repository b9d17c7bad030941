"""The values being rendered, and the problems found in them, each at the key the user typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.core.validation import ValuesKeys, spell_key, unknown_key
from canarist.core.validation import show_value as _show

Entry = tuple[dict[str, Any], ValuesKeys | None]
"""A spec entry and how the keys of its `with` are spelled in the values (None: not values)."""


def truthy(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | dict):
        return bool(value)
    return True


def value_key(*parts: str | int) -> str:
    """A value key as the user would write it (`a.b\\.c`, `a[0]`)."""
    return spell_key("", parts)


def scalar_text(value: Any) -> str | None:
    """Text of a scalar the way a Go template prints it; None for maps, lists and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


class Sheet:
    """The values being rendered, the release namespace, and the problems found so far."""

    def __init__(self, values: dict[str, Any], namespace: str | None) -> None:
        self.values = values
        self.namespace = namespace
        self.problems: list[str] = []
        self.spec: list[Entry] = []

    def problem(self, key: str, message: str) -> None:
        line = f"{key}: {message}"
        if line not in self.problems:
            self.problems.append(line)

    def section(self, name: str) -> dict[str, Any] | None:
        """The map of values under a task's key; None (with a problem) if it is not a map."""
        value = self.values.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(name, f"expected a map of {name} parameters, got {_show(value)}")
            return None
        return value

    def unknown_keys(
        self, prefix: str, section: Mapping[str, Any], allowed: tuple[str, ...]
    ) -> None:
        for key in section:
            if key not in allowed:
                self.problem(f"{prefix}.{value_key(key)}", unknown_key(str(key), allowed))

    def string(self, key: str, value: Any, what: str) -> str | None:
        if isinstance(value, str) and value:
            return value
        self.problem(key, f"expected {what}, got {_show(value)}")
        return None

    def discovers(self) -> bool:
        section = self.values.get("kserve")
        return isinstance(section, dict) and bool(section.get("isvc"))
