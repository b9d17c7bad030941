"""YAML text in and out: safe, bounded loading with positioned errors; Iter8-style dumping.

Loading is bounded (`core.limits`): a document may be at most 64 MiB, nest at most 100
levels, and its aliases may add at most 1,000,000 nodes when expanded, so a few hundred bytes
of "billion laughs" cannot take gigabytes. The shape is checked on the composed node graph,
before any Python object is built. libyaml parses when PyYAML has it, and plain scalars are
resolved and built by a fast path that gives the same data as PyYAML's SafeLoader.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canarist.core.errors import SpecError
from canarist.core.limits import MAX_ALIAS_NODES, MAX_DEPTH, MAX_FILE_BYTES, MIB

__all__ = ["dump_yaml", "load_yaml"]


class _Dumper(yaml.SafeDumper):
    """Block style, sorted keys; multi-line strings as literal blocks."""


def _str_representer(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)

_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", None)  # libyaml, when PyYAML was built with it
if _FAST_DUMPER is not None:
    class _CDumper(_FAST_DUMPER):  # type: ignore[misc]
        """libyaml's emitter with _Dumper's layout (it writes the same text, faster)."""

    _CDumper.add_representer(str, _str_representer)
    _DUMPER: Any = _CDumper
else:  # pragma: no cover - PyYAML without libyaml
    _DUMPER = _Dumper


def dump_yaml(data: Any) -> str:
    return str(yaml.dump(data, Dumper=_DUMPER, sort_keys=True, default_flow_style=False,
                         allow_unicode=True, width=1_000_000))


# -- loading ------------------------------------------------------------------------------------

_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
_REPARSE_CHARS = 1 * MIB
"""A document libyaml refuses is parsed again by the pure-Python parser, whose messages are
clearer, when it is at most this long (the pure parser is slow on large input)."""
_MAX_INT_DIGITS = 4000
"""Longest integer in a document (Python refuses to convert more than 4300 digits)."""

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_INT = re.compile(r"[-+]?[1-9][0-9]*|0")


def _loader_class(base: Any) -> Any:
    class Loader(base):  # type: ignore[misc]
        """SafeLoader's tags and data, with resolution that does not consult path resolvers
        (SafeLoader has none) and is done once per scalar."""

        _implicit: ClassVar[dict[Any, tuple[Any, ...]]] = {first: tuple(resolvers)
                     for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

        def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
            if kind is ScalarNode:
                if implicit[0]:
                    for tag, regexp in self._implicit.get(value[:1], ()):
                        if regexp.match(value):
                            return str(tag)
                return _STR
            return _SEQ if kind is SequenceNode else _MAP

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            return None

        def ascend_resolver(self) -> None:
            return None

    return Loader


_PURE: Any = _loader_class(yaml.SafeLoader)
_FAST: Any = _loader_class(_FAST_LOADER) if _FAST_LOADER is not None else None


def load_yaml(text: str, *, source: str) -> Any:
    """Parse one YAML document safely and within the bounds of `core.limits`; a syntax
    error or a bound passed is a SpecError naming the source (and line and column)."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"{source}: the YAML document is larger than {MAX_FILE_BYTES // MIB} MiB")
    loader_class = _FAST or _PURE
    try:
        return _load(loader_class, text, source)
    except yaml.YAMLError as exc:
        error = exc
    except RecursionError:
        raise SpecError(f"{source}: the YAML document nests deeper than {MAX_DEPTH} levels"
                        ) from None
    if loader_class is _FAST and len(text) <= _REPARSE_CHARS:
        try:
            _load(_PURE, text, source)
        except yaml.YAMLError as pure:
            error = pure
        except (RecursionError, SpecError):
            pass
    raise _syntax_error(error, source)


def _syntax_error(exc: yaml.YAMLError, source: str) -> SpecError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        return SpecError(f"{where}: invalid YAML: {exc.problem}")
    return SpecError(f"{source}: invalid YAML: {' '.join(str(exc).split())}")


def _load(loader_class: Any, text: str, source: str) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node, source)
        return _Builder(loader, source).build(node)
    finally:
        loader.dispose()


def _at(source: str, node: Node) -> str:
    mark = node.start_mark
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


def _check_shape(root: Node, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, an alias that contains itself, aliases that
    expand to more than MAX_ALIAS_NODES extra nodes, and integers too long to convert.

    One walk over the composed graph; only when a collection is reached twice (an alias)
    are expanded sizes and heights computed, each node once."""
    seen: set[int] = set()
    shared = False
    nodes = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if isinstance(node, ScalarNode):
            if node.tag == _INT and len(node.value) > _MAX_INT_DIGITS:
                raise SpecError(f"{_at(source, node)}: an integer has more than "
                                f"{_MAX_INT_DIGITS} digits")
            continue
        if id(node) in seen:
            shared, nodes = True, nodes - 1
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise SpecError(f"{_at(source, node)}: the YAML document nests deeper than "
                            f"{MAX_DEPTH} levels")
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        else:
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    if shared:
        _check_aliases(root, source, unique=nodes)


def _check_aliases(root: Node, source: str, *, unique: int) -> None:
    """Expanded size and height of every collection, post-order, without recursion."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if isinstance(node, ScalarNode) or (key in size and not done):
            continue
        children = (node.value if isinstance(node, SequenceNode)
                    else [part for pair in node.value for part in pair])
        if not done:
            if key in open_:
                raise SpecError(f"{_at(source, node)}: a YAML alias refers to a node that "
                                "contains it")
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if not isinstance(child, ScalarNode))
            continue
        open_.discard(key)
        total, tallest = 1, 0
        for child in children:
            if isinstance(child, ScalarNode):
                total += 1
            else:
                total += size[id(child)]
                tallest = max(tallest, height[id(child)])
        size[key], height[key] = total, tallest + 1
        if height[key] > MAX_DEPTH:
            raise SpecError(f"{_at(source, node)}: the YAML document nests deeper than "
                            f"{MAX_DEPTH} levels (counting what its aliases repeat)")
        if total > MAX_ALIAS_NODES + unique:
            raise SpecError(f"{_at(source, node)}: YAML aliases expand to more than "
                            f"{MAX_ALIAS_NODES:,} extra nodes; write the values out instead")


class _Builder:
    """Python data from a checked node graph: what SafeLoader builds, without recursion.

    Plain str/int/float/bool/null scalars, sequences and maps are built here; anything else
    (timestamps, binary, merge keys, sets, unknown tags) by SafeLoader's constructor, which
    raises its usual errors. A node reached twice (an alias) gives the same object."""

    def __init__(self, loader: Any, source: str) -> None:
        self.loader = loader
        self.source = source
        self.built: dict[int, Any] = {}

    def build(self, root: Node) -> Any:
        try:
            return self._build(root)
        except (ValueError, OverflowError) as exc:  # e.g. a date out of range
            raise SpecError(f"{self.source}: {' '.join(str(exc).split())}") from None

    def _build(self, root: Node) -> Any:
        pending: list[tuple[Node, Any]] = []
        result = self._node(root, pending)
        while pending:
            node, target = pending.pop()
            if isinstance(target, list):
                target.extend(self._node(child, pending) for child in node.value)
            else:
                for key_node, value_node in node.value:
                    target[self._node(key_node, pending)] = self._node(value_node, pending)
        return result

    def _node(self, node: Node, pending: list[tuple[Node, Any]]) -> Any:
        key = id(node)
        if key in self.built:
            return self.built[key]
        tag = node.tag
        if isinstance(node, ScalarNode):
            value = self._scalar(node)
        elif tag == _SEQ and isinstance(node, SequenceNode):
            value = []
            pending.append((node, value))
        elif tag == _MAP and isinstance(node, MappingNode) and not any(
                k.tag == _MERGE or not isinstance(k, ScalarNode) for k, _ in node.value):
            value = {}
            pending.append((node, value))
        else:
            value = self.loader.construct_object(node, deep=True)
        self.built[key] = value
        return value

    def _scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        if tag == _INT and _PLAIN_INT.fullmatch(text):
            return int(text)
        if tag == _FLOAT and "_" not in text and ":" not in text:
            try:
                return float(text)
            except ValueError:
                pass
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return self.loader.bool_values[text.lower()]
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, AttributeError, KeyError,
                OverflowError) as exc:  # an explicit tag (`!!timestamp x`) on what it cannot be
            if not isinstance(exc, ValueError):
                raise SpecError(f"{_at(self.source, node)}: not a valid "
                                f"{node.tag.rsplit(':', 1)[-1]}") from None
            raise SpecError(f"{_at(self.source, node)}: {' '.join(str(exc).split())}") from None
