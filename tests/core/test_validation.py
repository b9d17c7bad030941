"""Key folding and one-line problem lists, shared by every input model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from canarist.core.validation import fold_keys


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    url: str = ""
    num_loops: int = Field(default=0, alias="numLoops")


def test_keys_are_spelt_as_the_fields_whatever_their_case() -> None:
    assert fold_keys({"URL": "u", "NUMLOOPS": 2, "other": 1}, _Model) == {
        "url": "u", "numLoops": 2, "other": 1}


def test_two_spellings_of_one_field_the_last_wins_as_in_go() -> None:
    assert fold_keys({"url": "first", "URL": "second"}, _Model) == {"url": "second"}
    assert fold_keys({"URL": "first", "url": "second"}, _Model) == {"url": "second"}


def test_dropped_keys_go_in_any_case_and_keys_become_text() -> None:
    assert fold_keys({"PayloadURL": "x", 1: "one", "url": "u"}, _Model,
                     drop={"payloadURL"}) == {"1": "one", "url": "u"}


@pytest.mark.parametrize("data", [None, [1, 2], "text", 3])
def test_anything_but_a_mapping_is_left_for_the_model_to_reject(data: Any) -> None:
    assert fold_keys(data, _Model) is data
