"""Key folding and one-line problem lists, shared by every input model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from canarist.core.errors import SpecError
from canarist.core.validation import fold_keys, validated


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


def test_one_problem_is_the_message_several_are_joined_counted_and_capped() -> None:
    assert SpecError.listing(["a: bad"]).message == "a: bad"
    assert SpecError.listing(["a: bad", "b: bad"]).message == "a: bad; b: bad"
    counted = SpecError.listing(["a", "b", "c"], counted="problems in values")
    assert counted.message == "3 problems in values: a; b; c"
    assert counted.problems == ["a", "b", "c"]
    capped = SpecError.listing([str(n) for n in range(1500)], counted="problems", most=2)
    assert capped.message == "1500 problems: 0; 1; … and 1,498 more"
    assert len(capped.problems) == 1500


def test_validated_names_every_problem_at_the_users_key() -> None:
    with pytest.raises(SpecError) as caught:
        validated(_Model, {"url": 3, "numLoops": "many"}, lambda loc: f"f.yaml: {loc[0]}")
    assert caught.value.problems == [
        "f.yaml: url: expected text, got 3",
        "f.yaml: numLoops: expected a whole number, got \"many\""]
    assert caught.value.message == "; ".join(caught.value.problems)
    assert validated(_Model, {"url": "u"}, str).url == "u"
