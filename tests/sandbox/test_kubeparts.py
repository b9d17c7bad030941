"""Selectors and patches as the Kubernetes API applies them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canarist.sandbox.kubepatch import PatchError, json_patch, merge_patch
from canarist.sandbox.kubeselectors import SelectorError, field_selector, label_selector


def obj(**labels: str) -> dict[str, object]:
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels}}


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("", {}, True),
    ("a=1", {"a": "1"}, True),
    ("a=1", {"a": "2"}, False),
    ("a==1,b", {"a": "1", "b": "x"}, True),
    ("a!=1", {}, True),
    ("!a", {"a": "1"}, False),
    ("a in (1, 2),b notin (3)", {"a": "2", "b": "4"}, True),
    ("a in (1,2)", {}, False),
    ("example.com/x=y", {"example.com/x": "y"}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert label_selector(selector)(obj(**labels)) is expected


@pytest.mark.parametrize("selector", ["a in (1", "=x", "a=b c", "a=@"])
def test_bad_label_selectors(selector: str) -> None:
    with pytest.raises(SelectorError):
        label_selector(selector)


def test_field_selectors() -> None:
    assert field_selector("metadata.name=n,metadata.namespace!=other")(obj())
    assert not field_selector("metadata.name=m")(obj())
    assert field_selector("status.phase=Running", pods=True)({"status": {"phase": "Running"}})
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.x"):
        field_selector("spec.x=1")


def test_merge_patch() -> None:
    target = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(target, {"a": {"b": None, "c": [3]}, "e": {"f": 1}}) == {
        "a": {"c": [3]}, "d": 1, "e": {"f": 1}}
    assert target == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_json_patch() -> None:
    doc = {"spec": {"list": [1, 2], "x": 1}}
    result = json_patch(doc, [
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "replace", "path": "/spec/x", "value": 2},
        {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
        {"op": "move", "from": "/spec/list/0", "path": "/spec/first"},
        {"op": "remove", "path": "/spec/y"},
        {"op": "test", "path": "/spec/x", "value": 2},
        {"op": "add", "path": "/metadata~1name", "value": "a/b"},
    ])
    assert result == {"spec": {"list": [2, 3], "x": 2, "first": 1}, "metadata/name": "a/b"}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/spec/x", "value": 5}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


json_values = st.recursive(st.none() | st.integers() | st.text(max_size=3),
                           lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=8)


@given(st.dictionaries(st.text(max_size=3), json_values, max_size=4),
       st.dictionaries(st.text(max_size=3), json_values, max_size=4))
def test_merge_patch_is_idempotent(target: dict[str, object], patch: dict[str, object]) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
