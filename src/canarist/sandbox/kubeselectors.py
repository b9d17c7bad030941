"""Label and field selectors, parsed and matched as the Kubernetes API does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Selector = Callable[[Obj], bool]

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")


class SelectorError(ValueError):
    """A selector that does not parse; the API answers 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def _check_key(key: str, source: str) -> str:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r} in {source!r}")
    return key


def _check_value(value: str, source: str) -> str:
    if not _VALUE.match(value) or len(value) > 63:
        raise SelectorError(f"unable to parse requirement: invalid label value {value!r} in {source!r}")
    return value


def parse_requirement(text: str) -> Requirement:
    if not text:
        raise SelectorError("unable to parse requirement: found '', expected: identifier")
    match = _SET.match(text)
    if match:
        key, op, inner = match.groups()
        values = frozenset(_check_value(v.strip(), text) for v in inner.split(","))
        return Requirement(_check_key(key, text), op, values)
    for op in ("!=", "==", "="):
        if op in text:
            key, value = (s.strip() for s in text.split(op, 1))
            normalised = "!=" if op == "!=" else "="
            return Requirement(_check_key(key, text), normalised,
                               frozenset({_check_value(value, text)}))
    if text.startswith("!"):
        return Requirement(_check_key(text[1:].strip(), text), "!exists")
    return Requirement(_check_key(text, text), "exists")


def label_selector(text: str | None) -> Selector:
    """A predicate over objects for a `labelSelector` query parameter."""
    if not text or not text.strip():
        return lambda obj: True
    requirements = [parse_requirement(part) for part in _split(text.strip())]

    def matches(obj: Obj) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


FIELDS: dict[str, Callable[[Obj], str]] = {
    "metadata.name": lambda o: str((o.get("metadata") or {}).get("name") or ""),
    "metadata.namespace": lambda o: str((o.get("metadata") or {}).get("namespace") or ""),
}
POD_FIELDS: dict[str, Callable[[Obj], str]] = {
    "status.phase": lambda o: str((o.get("status") or {}).get("phase") or ""),
    "spec.nodeName": lambda o: str((o.get("spec") or {}).get("nodeName") or ""),
    "spec.serviceAccountName": lambda o: str((o.get("spec") or {}).get("serviceAccountName") or ""),
}


def field_selector(text: str | None, *, pods: bool = False) -> Selector:
    """A predicate for a `fieldSelector` (metadata.name, metadata.namespace; a few pod fields)."""
    if not text or not text.strip():
        return lambda obj: True
    fields = {**FIELDS, **POD_FIELDS} if pods else FIELDS
    checks: list[tuple[Callable[[Obj], str], bool, str]] = []
    for part in _split(text.strip()):
        for op in ("!=", "==", "="):
            if op in part:
                name, value = (s.strip() for s in part.split(op, 1))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        getter = fields.get(name)
        if getter is None:
            raise SelectorError(f'field label not supported: {name}')
        checks.append((getter, op == "!=", value))

    def matches(obj: Obj) -> bool:
        return all((get(obj) != value) if negate else (get(obj) == value)
                   for get, negate, value in checks)

    return matches
