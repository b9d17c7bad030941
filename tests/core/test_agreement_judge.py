"""agreement/rate before the judge: relative objectives against the noise floor, and absolute
SLOs judged on the counts, so that few predictions are inconclusive and never a pass."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from canarist.core.experiment import Experiment, Insights, MetricMeta, MetricType, Result
from canarist.core.judge import RelativeObjective, compare, evidence, evidence_needed, judgeable
from canarist.core.stats.compare import Allowance
from canarist.core.verdict import judge
from canarist.tasks.assess import AssessInputs, run
from canarist.tasks.base import TaskContext

COUNTS = ("agreement/agreed", "agreement/compared")


def insights(*counts: tuple[int, int]) -> Insights:
    found = Insights(numVersions=len(counts), metricsInfo={
        **{name: MetricMeta(type=MetricType.COUNTER) for name in COUNTS},
        "agreement/rate": MetricMeta(type=MetricType.GAUGE)})
    for version, (agreed, compared) in enumerate(counts):
        values = found.non_hist_metric_values[version]
        values["agreement/agreed"], values["agreement/compared"] = [agreed], [compared]
        if compared:
            values["agreement/rate"] = [agreed / compared]
    return found


def test_agreement_rate_is_judged_on_its_counts() -> None:
    assert judgeable("agreement/rate") and judgeable("agreement/within-tolerance")
    assert not judgeable("agreement/noise-floor")
    assert evidence_needed("agreement/rate") == COUNTS


@pytest.mark.parametrize(("candidate", "allowance", "verdict"), [
    ((9_950, 10_000), "1%", "pass"),
    ((146, 150), "5%", "inconclusive"),
    ((8_000, 10_000), "5%", "fail"),
    ((8_000, 10_000), "0.25", "pass"),
])
def test_a_candidate_is_judged_against_the_noise_floor(candidate: tuple[int, int], allowance: str,
                                                        verdict: str) -> None:
    found = insights(candidate, (10_000, 10_000))
    objective = RelativeObjective("agreement/rate", "lower", Allowance.parse(allowance))
    judged = compare(objective, (0, evidence(found, 0, "agreement/rate")),
                     (1, evidence(found, 1, "agreement/rate")), confidence=0.95)
    assert judged.verdict == verdict, judged.reason
    assert judged.samples == (candidate[1], 10_000)


def test_a_noise_floor_that_was_not_measured_leaves_the_comparison_inconclusive() -> None:
    found = insights((150, 150), (150, 150))
    found.unavailable[1]["agreement/agreed"] = "not measured: agreement.noiseFloor is false"
    objective = RelativeObjective("agreement/rate", "lower", Allowance.parse("1%"))
    judged = compare(objective, (0, evidence(found, 0, "agreement/rate")),
                     (1, evidence(found, 1, "agreement/rate")), confidence=0.95)
    assert (judged.verdict, judged.reason) == (
        "inconclusive", "version 1: not measured: agreement.noiseFloor is false")


def assessed(found: Insights, limit: float) -> Experiment:
    experiment = Experiment(spec=[], result=Result(startTime=datetime.now(UTC), insights=found))
    inputs = AssessInputs.model_validate({"SLOs": {"lower": [{"metric": "agreement/rate",
                                                               "limit": limit}]}})
    asyncio.run(run(inputs, TaskContext(experiment=experiment, number=1, name="assess",
                                        run_dir=Path("."))))
    return experiment


def test_an_slo_on_few_predictions_cannot_be_decided() -> None:
    experiment = assessed(insights((10, 10), (150, 150)), 0.95)
    found = judge(experiment)
    assert found.outcome == "inconclusive"
    assert found.summary == "1 of 1 SLO could not be checked for version 0: too few to decide"
    assert found.reason == (
        "1 of 1 SLO could not be checked: agreement/rate for version 0 cannot be decided yet: "
        "10 of 10 (1), between 0.623 and 1: the data cannot yet tell whether it is at least "
        "0.95 at 95 % confidence")
    assert not experiment.slos()
    assert [j.verdict for j in experiment.result.insights.slos_judged] == [  # type: ignore[union-attr]
        "inconclusive", "pass"]


def test_an_slo_the_counts_show_is_missed_fails_with_them() -> None:
    found = judge(assessed(insights((60, 100), (150, 150)), 0.95))
    assert found.outcome == "fail"
    assert found.reason == (
        "1 of 1 SLO not satisfied: agreement/rate for version 0 is 0.6, below the lower limit "
        "0.95 (60 of 100 (0.6), between 0.4343 and 0.7514: not at least 0.95 at 95 % confidence)")


def test_enough_agreement_passes() -> None:
    assert judge(assessed(insights((1000, 1000), (1000, 1000)), 0.95)).outcome == "pass"


def test_an_slo_on_the_noise_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="the noise floor is the baseline's alone"):
        AssessInputs.model_validate({"SLOs": {"lower": [{"metric": "agreement/noise-floor",
                                                          "limit": 0.9}]}})


def test_a_candidate_with_nothing_compared_says_why() -> None:
    found = insights((0, 0), (150, 150))
    found.unavailable[0]["agreement/rate"] = ("no prediction could be compared: 150 of 150 "
                                              "requests failed (500 ×150)")
    objective = RelativeObjective("agreement/rate", "lower", Allowance.parse("1%"))
    judged = compare(objective, (0, evidence(found, 0, "agreement/rate")),
                     (1, evidence(found, 1, "agreement/rate")), confidence=0.95)
    assert (judged.verdict, judged.reason) == (
        "inconclusive", "version 0: no prediction could be compared: 150 of 150 requests "
                        "failed (500 ×150)")
