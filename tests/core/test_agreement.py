"""The agreement task's rules as data: payloads, protocols, predictions and their comparison."""

from __future__ import annotations

import pytest

from canarist.core.agreement import (
    NonConforming,
    PayloadError,
    Prediction,
    Tally,
    Tolerance,
    compare,
    confidence_of,
    parse_payload,
    request_body,
    sample_rows,
    shown,
    v1_predictions,
    v2_predictions,
)
from canarist.core.experiment import TaskEntry

EXACT = Tolerance.parse(0)


def test_a_payload_is_one_body_a_line_in_v1_or_v2_shape() -> None:
    rows = parse_payload('{"instances": [[1, 2], [3, 4]]}\n\n'
                         '{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", '
                         '"data": [5, 6]}]}\n{"inputs": [[7, 8]]}\n')
    assert [(r.line, r.instances) for r in rows] == [(1, 2), (3, 1), (4, 1)]


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no request body"),
    ("{nope", "line 1: not JSON: Expecting property name enclosed in double quotes at column 2"),
    ("[1, 2]", "line 1: expected a JSON object (a V1 or V2 request body), got list"),
    ('{"x": 1}', 'line 1: expected a V1 body ({"instances": [...]}) or a V2 body'),
    ('{"instances": []}', "line 1: instances: expected a non-empty list"),
    ('{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}',
     "line 1: inputs[0]: shape [2, 2] holds 4 values, data has 3"),
    ('{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}',
     "line 1: inputs[0].datatype: expected one of BOOL, BYTES"),
])
def test_a_bad_payload_line_is_named(text: str, message: str) -> None:
    with pytest.raises(PayloadError) as found:
        parse_payload(text)
    assert str(found.value).startswith(message)


def test_v1_rows_become_one_v2_tensor_and_back_without_rounding() -> None:
    v1 = {"instances": [[5.9, 3.2, 4.8, 1.8], [6.8, 2.8, 4.8, 1.4]]}
    v2 = request_body(v1, "v2")
    assert v2 == {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                              "data": [5.9, 3.2, 4.8, 1.8, 6.8, 2.8, 4.8, 1.4]}]}
    assert request_body(v2, "v1") == v1
    assert request_body(v1, "v1") is v1
    assert request_body({"instances": [[1, 2]]}, "grpc")["inputs"][0]["datatype"] == "INT64"
    assert request_body({"instances": ["a b", "c"]}, "v2")["inputs"][0] == {
        "name": "input-0", "shape": [2], "datatype": "BYTES", "data": ["a b", "c"]}


def test_gRPC_json_contents_are_read_as_data() -> None:
    body = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32",
                        "contents": {"fp32_contents": [1.5, 2.5]}}]}
    assert request_body(body, "v1") == {"instances": [[1.5, 2.5]]}


def test_bodies_that_cannot_change_protocol_say_why() -> None:
    two = {"inputs": [{"name": n, "shape": [1], "datatype": "FP32", "data": [1]}
                      for n in ("a", "b")]}
    with pytest.raises(PayloadError, match="has 2 input tensors; a V1 request has one"):
        request_body(two, "v1")
    with pytest.raises(PayloadError, match="rows of different lengths"):
        request_body({"instances": [[1, 2], [3]]}, "v2")
    with pytest.raises(PayloadError, match="no single V2 datatype"):
        request_body({"instances": [[1, "a"]]}, "v2")


def test_sampling_is_seeded_and_keeps_payload_order() -> None:
    assert sample_rows(5, None, 7) == [0, 1, 2, 3, 4]
    assert sample_rows(5, 9, 7) == [0, 1, 2, 3, 4]
    first = sample_rows(1000, 20, 7)
    assert first == sample_rows(1000, 20, 7) == sorted(first) and len(set(first)) == 20
    assert sample_rows(1000, 20, 8) != first


def test_v1_predictions_are_checked_against_the_instances() -> None:
    found = v1_predictions({"predictions": [1, "setosa", 0.25, [0.1, 0.9], True]}, 5)
    assert [p.kind for p in found] == ["class", "class", "number", "vector", "class"]
    assert [p.top1() for p in found] == ["1", "setosa", "0.25", "1", "true"]
    with pytest.raises(NonConforming, match=r'not a V1 response: no "predictions" \(got error\)'):
        v1_predictions({"error": "boom"}, 1)
    with pytest.raises(NonConforming, match="2 predictions for 1 instances"):
        v1_predictions({"predictions": [1, 2]}, 1)
    with pytest.raises(NonConforming, match='"predictions" is a dict, not a list'):
        v1_predictions({"predictions": {"a": 1}}, 1)


def test_v2_predictions_split_the_output_tensor_by_its_first_dimension() -> None:
    doc = {"outputs": [
        {"name": "label", "shape": [2], "datatype": "INT64", "data": [2, 1]},
        {"name": "proba", "shape": [2, 3], "datatype": "FP32",
         "data": [0.1, 0.2, 0.7, 0.2, 0.7, 0.1]}]}
    assert [p.top1() for p in v2_predictions(doc, 2)] == ["2", "1"]
    probabilities = v2_predictions(doc, 2, "proba")
    assert [p.kind for p in probabilities] == ["vector", "vector"]
    assert [p.top1() for p in probabilities] == ["2", "1"]
    with pytest.raises(NonConforming, match="no output tensor 'score'"):
        v2_predictions(doc, 2, "score")
    with pytest.raises(NonConforming, match="output label has 2 predictions for 3 instances"):
        v2_predictions(doc, 3)
    with pytest.raises(NonConforming, match='no "outputs" tensors'):
        v2_predictions({"model_name": "m"}, 1)
    with pytest.raises(NonConforming, match=r"outputs\[0\]: shape \[3\] holds 3 values, data has 2"):
        v2_predictions({"outputs": [{"name": "y", "shape": [3], "datatype": "INT64",
                                     "data": [1, 2]}]}, 3)


def test_classes_agree_when_they_are_the_same() -> None:
    one, two = Prediction.of(1), Prediction.of(2)
    assert compare(one, one, "auto", EXACT).agree
    pair = compare(one, two, "auto", EXACT)
    assert not pair.agree and pair.classes == ("1", "2") and pair.diffs is None
    assert compare(Prediction.of(1), Prediction.of(1.0), "auto", EXACT).agree


def test_numbers_agree_within_the_tolerance() -> None:
    absolute, relative = Tolerance.parse("0.05"), Tolerance.parse("1%")
    pair = compare(Prediction.of(10.0), Prediction.of(10.04), "auto", absolute)
    assert pair.agree and pair.classes is None and pair.diffs == pytest.approx((0.04,))
    assert not compare(Prediction.of(10.0), Prediction.of(10.2), "auto", relative).agree
    assert compare(Prediction.of(10.0), Prediction.of(10.09), "auto", relative).agree
    with pytest.raises(ValueError, match="expected a percentage"):
        Tolerance.parse("a lot")


def test_score_vectors_agree_on_their_top_class_and_report_their_differences() -> None:
    baseline, candidate = Prediction.of([0.1, 0.7, 0.2]), Prediction.of([0.2, 0.5, 0.3])
    pair = compare(baseline, candidate, "auto", Tolerance.parse("0.05"))
    assert pair.agree and pair.classes == ("1", "1") and pair.within is False
    assert pair.diffs == pytest.approx((0.1, 0.2, 0.1))
    assert not compare(baseline, candidate, "numeric", Tolerance.parse("0.05")).agree
    assert compare(baseline, candidate, "numeric", Tolerance.parse("0.25")).agree
    with pytest.raises(NonConforming, match="a prediction has 2 values, the baseline's 3"):
        compare(baseline, Prediction.of([0.5, 0.5]), "auto", EXACT)
    with pytest.raises(NonConforming, match=r"agreement\.outputs is numeric, but a prediction is"):
        compare(Prediction.of("setosa"), Prediction.of("setosa"), "numeric", EXACT)


def test_a_tally_counts_pairs_classes_and_keeps_the_first_examples() -> None:
    tally = Tally()
    for b, c in ((1, 1), (1, 2), (2, 2), (2, 1), (2, 1)):
        tally.add(compare(Prediction.of(b), Prediction.of(c), "auto", EXACT), None, 5)
    tally.error("500", "boom")
    tally.error("500", "later")
    assert (tally.compared, tally.agreed, tally.rate, tally.error_count) == (5, 2, 0.4, 2)
    assert tally.errors == {"500": (2, "boom")}
    record = tally.record(0)
    assert [(c.baseline, c.candidate, c.count) for c in record.confusion] == [
        ("1", "1", 1), ("1", "2", 1), ("2", "1", 2), ("2", "2", 1)]


def test_examples_are_redacted_and_truncated() -> None:
    assert shown({"instances": [[1]], "token": "s3cret"}) == \
        '{"instances":[[1]],"token":"[redacted]"}'
    long = shown({"instances": [list(range(200))]})
    assert len(long) == 200 and long.endswith("…")


def test_the_confidence_is_the_assess_tasks() -> None:
    assert confidence_of([TaskEntry(task="agreement")]) == 0.95
    assert confidence_of([TaskEntry(task="assess", **{"with": {"confidence": 0.99}})]) == 0.99


def test_the_examples_kept_are_the_first_in_the_payload_whatever_order_answers_come_in() -> None:
    from canarist.core.experiment import AgreementExample

    tally = Tally()
    for line in (9, 3, 7, 1, 5):
        pair = compare(Prediction.of(1), Prediction.of(2), "auto", EXACT)
        tally.add(pair, AgreementExample(line=line, request="r", baseline="1", candidate="2"), 3)
    assert [e.line for e in tally.record(0).disagreements] == [1, 3, 5]
    none = Tally()
    none.add(compare(Prediction.of(1), Prediction.of(2), "auto", EXACT),
             AgreementExample(line=1), 0)
    assert none.record(0).disagreements == []
