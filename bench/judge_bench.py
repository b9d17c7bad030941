"""How good is the judge: canaries with known truth, judged by canarist and by three others.

    .venv/bin/python bench/judge_bench.py [--runs 200] [--workers 2] [--seed 20261203] [--quick]

Each scenario draws a baseline and a candidate from known distributions, so whether the
candidate is within its allowance or worse than it is known. A run is a 5-minute canary with a
look after every 30-s loop (10 looks, each on all the data so far). Request counts per loop are
Poisson (the candidate at 2 req/s, i.e. 10 % of 20 req/s, about 600 requests in all; or at
0.1 req/s, 10 % of 1 req/s, about 30; a few scenarios also at twice the 600), latencies are
independent draws, errors Bernoulli per request. Latency is judged on exact samples and on
Knative's `revision_app_request_latencies` buckets (ms).

Judges, all fed the same data at the same looks:

- canarist: `canarist.core.judge.compare` at 95 % confidence.
- Kayenta-style: one point per version per completed 60-s step (the step's p90, median or
  error ratio, from the step's samples or buckets as Prometheus' `histogram_quantile` would
  give it), classified as Kayenta's NetflixACAJudge does: Mann-Whitney at 98 % confidence,
  High when the Hodges-Lehmann interval's low end exceeds 0.25 x |estimate| and the mean
  ratio candidate/baseline is at least 1 (the default effect-size thresholds, i.e. no effect
  size); High is fail, Pass pass, no data inconclusive. With one metric Kayenta's score is 0 or
  100, so Marginal (which Argo Rollouts maps to inconclusive) cannot occur.
- Mann-Whitney at every look: `scipy.stats.mannwhitneyu(candidate, baseline,
  alternative="greater")` on the requests so far (on buckets: each request at its bucket's
  upper edge), fail when p < 0.05, else pass; inconclusive only without data.
- Iter8-style: an absolute threshold fixed before the canary at the baseline's long-run value
  (the true quantile, or what `histogram_quantile` converges to on buckets; the true error
  rate) x (1 + allowance), or + allowance for an absolute allowance; pass when the
  candidate's point estimate is at or below it, fail otherwise, and fail when the candidate
  has no data (Iter8 counts a missing metric as an unmet objective).

Scoring of a run (the same for every judge): fail if any look said fail; pass if no look
said fail and the last look said pass; inconclusive otherwise.

Prints one table (fail / pass / inconclusive % per scenario, size, data form and judge), the
goals met or not with their figures, and the judge's own cost. Every random draw is seeded
from --seed, the scenario and the size, so the figures repeat exactly for a given --runs.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.stats import mannwhitneyu, norm

from canarist.core.judge import Evidence, RelativeObjective, compare
from canarist.core.stats.compare import Allowance
from canarist.core.stats.quantiles import CumulativeCounts, quantile_estimate

Array = npt.NDArray[np.float64]
Verdict = Literal["fail", "pass", "inconclusive"]

KNATIVE_BOUNDS = np.array([5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600,
                           700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000, math.inf])
LOOP_S = 30
LOOPS = 10
STEP_LOOPS = 2  # Kayenta's 60-s step
CONFIDENCE = 0.95
KAYENTA_CONFIDENCE = 0.98
KAYENTA_TOLERANCE = 0.25
MW_ALPHA = 0.05
JUDGES = ("canarist", "kayenta", "mw-every-look", "iter8")


# Latency shapes (milliseconds) --------------------------------------------------------------

class Shape(Protocol):
    def sample(self, rng: np.random.Generator, n: int) -> Array: ...

    def cdf(self, x: float) -> float: ...


@dataclass(frozen=True)
class Lognormal:
    median: float
    sigma: float
    label: str = "lognormal"

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        return rng.lognormal(math.log(self.median), self.sigma, n)

    def cdf(self, x: float) -> float:
        return float(norm.cdf((math.log(x) - math.log(self.median)) / self.sigma)) if x > 0 else 0.0


@dataclass(frozen=True)
class SlowPath:
    """A fast path and, for `share` of the requests, a slow one (a cache miss, a cold model)."""

    fast: Lognormal
    slow: Lognormal
    share: float
    label: str = "slow path"

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        slow = rng.random(n) < self.share
        return np.where(slow, self.slow.sample(rng, n), self.fast.sample(rng, n))

    def cdf(self, x: float) -> float:
        return (1 - self.share) * self.fast.cdf(x) + self.share * self.slow.cdf(x)


@dataclass(frozen=True)
class HeavyTail:
    """A floor plus a Lomax (Pareto II) tail; shape 1.5 has no finite variance."""

    floor: float
    scale: float
    shape: float
    label: str = "heavy tail"

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        return self.floor + self.scale * (rng.random(n) ** (-1 / self.shape) - 1)

    def cdf(self, x: float) -> float:
        return 0.0 if x <= self.floor else 1 - (1 + (x - self.floor) / self.scale) ** -self.shape


def true_quantile(shape: Shape, p: float) -> float:
    return float(brentq(lambda x: shape.cdf(x) - p, 1e-9, 1e7, xtol=1e-9))


def bucketed_quantile(shape: Shape, p: float) -> float:
    """What `histogram_quantile` converges to on Knative's buckets as the data grows."""
    probabilities = [shape.cdf(b) if math.isfinite(b) else 1.0 for b in KNATIVE_BOUNDS]
    big = 10**9
    counts = np.array([round(q * big) for q in probabilities], dtype=np.int64)
    value = quantile_estimate(CumulativeCounts(KNATIVE_BOUNDS, counts), p)
    assert value is not None
    return value


BASE = Lognormal(50, 0.5)
SLOW = SlowPath(Lognormal(40, 0.25), Lognormal(170, 0.3), 0.2)
HEAVY = HeavyTail(30, 20, 1.5)


# Scenarios and sizes -------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    name: str
    metric: str  # "p90", "p50" or "error-rate"
    allowance: str
    baseline: Shape | float  # a latency shape, or an error rate
    candidate: Shape | float
    sizes: tuple[str, ...] = ("600", "30")

    @property
    def latency(self) -> bool:
        return self.metric != "error-rate"

    @property
    def p(self) -> float:
        return float(self.metric.removeprefix("p")) / 100

    def truth(self, size: Size) -> str:
        if size.candidate_rate == 0:
            return "no data"
        allowance = Allowance.parse(self.allowance)
        if self.latency:
            assert not isinstance(self.baseline, float) and not isinstance(self.candidate, float)
            change = true_quantile(self.candidate, self.p) / true_quantile(self.baseline, self.p) - 1
        else:
            assert isinstance(self.baseline, float) and isinstance(self.candidate, float)
            change = self.candidate - self.baseline
        return "worse" if change > allowance.amount + 1e-9 else "within"


@dataclass(frozen=True)
class Size:
    name: str
    candidate_rate: float  # requests per second
    baseline_rate: float


SIZES = {
    "600": Size("600", 2.0, 18.0),  # 10 % of 20 req/s for 5 minutes
    "30": Size("30", 0.1, 0.9),  # 10 % of 1 req/s
    "1200": Size("1200", 4.0, 36.0),  # twice the 600: 10 % of 40 req/s
    "20": Size("20", 20 / 300, 280 / 300),  # thin: about 20 candidate requests in 5 minutes
    "0": Size("0", 0.0, 18.0),  # the candidate receives no traffic
}

SCENARIOS = [
    Scenario("no change", "p90", "20%", BASE, BASE, sizes=("600", "30", "1200")),
    Scenario("no change, 30 % allowance", "p90", "30%", BASE, BASE),
    Scenario("no change, slow path", "p90", "20%", SLOW, SLOW),
    Scenario("no change, heavy tail", "p90", "20%", HEAVY, HEAVY),
    Scenario("variance only (sigma x1.3), p50", "p50", "10%", BASE, Lognormal(50, 0.65)),
    Scenario("+10 % median, 20 % allowance", "p50", "20%", BASE, Lognormal(55, 0.5)),
    Scenario("+10 % median, 5 % allowance", "p50", "5%", BASE, Lognormal(55, 0.5)),
    Scenario("+20 % p90 only (same median)", "p90", "10%", SLOW,
             SlowPath(SLOW.fast, Lognormal(170 * 1.2, 0.3), 0.2)),
    Scenario("+50 % p90 (slow path)", "p90", "20%", SLOW,
             SlowPath(SLOW.fast, Lognormal(170 * 1.5, 0.3), 0.2), sizes=("600", "30", "1200")),
    Scenario("+50 % p90 (wider lognormal)", "p90", "20%", BASE,
             Lognormal(50, 0.5 + math.log(1.5) / float(norm.ppf(0.9))), sizes=("600", "30", "1200")),
    Scenario("+50 % p90, < 30 requests", "p90", "20%", SLOW,
             SlowPath(SLOW.fast, Lognormal(170 * 1.5, 0.3), 0.2), sizes=("20",)),
    Scenario("no traffic", "p90", "20%", BASE, BASE, sizes=("0",)),
    Scenario("errors 1 % -> 1 %", "error-rate", "0.005", 0.01, 0.01),
    Scenario("errors 1 % -> 2 %", "error-rate", "0.005", 0.01, 0.02),
    Scenario("errors 1 % -> 5 %", "error-rate", "0.005", 0.01, 0.05, sizes=("600", "30", "1200")),
    Scenario("errors 0 % -> 0.5 %", "error-rate", "0.002", 0.0, 0.005),
]


# One canary's data ---------------------------------------------------------------------------

@dataclass
class Version:
    """One version's requests in arrival order, with the loop each arrived in."""

    loop: npt.NDArray[np.int64]
    latency: Array  # ms (empty for error scenarios)
    failed: npt.NDArray[np.bool_]
    bucket: npt.NDArray[np.int64]  # index into KNATIVE_BOUNDS

    @classmethod
    def draw(cls, rng: np.random.Generator, rate: float, truth: Shape | float) -> Version:
        per_loop = rng.poisson(rate * LOOP_S, LOOPS)
        loop = np.repeat(np.arange(LOOPS), per_loop)
        n = len(loop)
        if isinstance(truth, float):
            latency = np.empty(0)
            failed = rng.random(n) < truth
        else:
            latency = truth.sample(rng, n)
            failed = np.zeros(n, dtype=bool)
        bucket = np.searchsorted(KNATIVE_BOUNDS, latency, side="left")
        return cls(loop, latency, failed, bucket)

    def upto(self, look: int) -> int:
        """How many requests arrived in loops 0..look-1."""
        return int(np.searchsorted(self.loop, look, side="left"))


def bucket_counts(bucket: npt.NDArray[np.int64]) -> CumulativeCounts:
    return CumulativeCounts(KNATIVE_BOUNDS, np.cumsum(np.bincount(bucket, minlength=len(KNATIVE_BOUNDS))))


UPPER_EDGES = np.where(np.isfinite(KNATIVE_BOUNDS), KNATIVE_BOUNDS, 2 * KNATIVE_BOUNDS[-2])


@dataclass(frozen=True)
class Look:
    """What every judge sees at one look, for one data form."""

    scenario: Scenario
    bucketed: bool
    candidate: Version
    baseline: Version
    look: int  # 1..LOOPS
    points: tuple[Array, Array] = (np.empty(0), np.empty(0))  # Kayenta's step points

    def counts(self, version: Version, start: int, stop: int) -> CumulativeCounts:
        if self.bucketed:
            return bucket_counts(version.bucket[start:stop])
        return CumulativeCounts.from_samples(version.latency[start:stop])

    def values(self, version: Version, start: int, stop: int) -> Array:
        """Per-request values a rank test reads: latencies (bucket edges) or 0/1 failures."""
        if not self.scenario.latency:
            return version.failed[start:stop].astype(float)
        if self.bucketed:
            return UPPER_EDGES[version.bucket[start:stop]]
        return version.latency[start:stop]

    def statistic(self, version: Version, start: int, stop: int) -> float | None:
        """The scenario's metric over requests start..stop, as a metrics store reports it."""
        if stop <= start:
            return None
        if not self.scenario.latency:
            return float(version.failed[start:stop].mean())
        if self.bucketed:
            return quantile_estimate(bucket_counts(version.bucket[start:stop]), self.scenario.p)
        return float(np.quantile(version.latency[start:stop], self.scenario.p))


# The judges ----------------------------------------------------------------------------------

def judge_canarist(look: Look) -> Verdict:
    scenario = look.scenario
    c, b = look.candidate.upto(look.look), look.baseline.upto(look.look)
    metric = "http/error-rate" if not scenario.latency else f"http/latency-{scenario.metric}"
    objective = RelativeObjective(metric, "upper", Allowance.parse(scenario.allowance))
    if scenario.latency:
        candidate = Evidence(histogram=look.counts(look.candidate, 0, c))
        baseline = Evidence(histogram=look.counts(look.baseline, 0, b))
    else:
        candidate = Evidence(errors=int(look.candidate.failed[:c].sum()), requests=c)
        baseline = Evidence(errors=int(look.baseline.failed[:b].sum()), requests=b)
    return compare(objective, (1, candidate), (0, baseline), CONFIDENCE).verdict


@cache
def _exact_u_cdf(m: int, n: int) -> npt.NDArray[np.float64]:
    """P(U <= u) for u = 0..mn under the null: U counts (x_i, y_j) pairs with x_i > y_j."""
    # ways[u] for samples of sizes (i, j), built up by adding one x or one y at a time
    ways = [[np.zeros(1)] * (n + 1) for _ in range(m + 1)]
    for i in range(m + 1):
        for j in range(n + 1):
            if i == 0 or j == 0:
                ways[i][j] = np.ones(1)
                continue
            size = i * j + 1
            total = np.zeros(size)
            # the largest value is an x (beats all j y's) or a y (beats none)
            total[j:j + len(ways[i - 1][j])] += ways[i - 1][j]
            total[:len(ways[i][j - 1])] += ways[i][j - 1]
            ways[i][j] = total
    counts = ways[m][n]
    cdf: npt.NDArray[np.float64] = np.cumsum(counts) / counts.sum()
    return cdf


def hodges_lehmann(x: Array, y: Array, confidence: float) -> tuple[float, float, float]:
    """Estimate and interval of the shift x - y from the ordered pairwise differences
    (Hodges & Lehmann, "Estimates of location based on rank tests", Ann. Math. Statist. 1963;
    the distribution-free interval of Hollander, Wolfe & Chicken, "Nonparametric Statistical
    Methods", 3rd ed., section 4.3): [d_(k), d_(mn+1-k)] with k the largest such that
    P(U <= k - 1) <= (1 - confidence)/2, from U's exact null distribution when both samples are
    under 50 and untied (as R's wilcox.test), else its normal approximation. When no k reaches
    the confidence the interval is unbounded."""
    m, n = len(x), len(y)
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    estimate = float(np.median(diffs))
    tail = (1 - confidence) / 2
    untied = len(np.unique(np.concatenate((x, y)))) == m + n
    if m < 50 and n < 50 and untied:
        k = int(np.searchsorted(_exact_u_cdf(m, n), tail, side="right"))  # P(U <= k-1) <= tail
    else:
        k = math.floor(m * n / 2 - norm.ppf(1 - tail) * math.sqrt(m * n * (m + n + 1) / 12))
    if k < 1:
        return estimate, -math.inf, math.inf
    return estimate, float(diffs[k - 1]), float(diffs[m * n - k])


def kayenta_classify(candidate: Array, baseline: Array) -> Verdict:
    """Kayenta's MannWhitneyClassifier, direction Increase, default effect-size thresholds."""
    if len(candidate) == 0 or len(baseline) == 0:
        return "inconclusive"  # Nodata
    if np.array_equal(np.sort(candidate), np.sort(baseline)):
        return "pass"
    both = np.concatenate((candidate, baseline))
    if np.all(both == both[0]):
        return "pass"
    if len(np.unique(candidate)) == 1 and len(np.unique(baseline)) == 1:
        rng = np.random.default_rng(0)  # Kayenta adds Gaussian noise to two constant series
        candidate = candidate + rng.normal(0, abs(candidate[0]) * 1e-5 or 1e-12, len(candidate))
        baseline = baseline + rng.normal(0, abs(baseline[0]) * 1e-5 or 1e-12, len(baseline))
    estimate, low, _ = hodges_lehmann(candidate, baseline, KAYENTA_CONFIDENCE)
    base_mean = float(np.mean(baseline))
    ratio = 1.0 if base_mean == 0 else float(np.mean(candidate)) / base_mean
    high = low > KAYENTA_TOLERANCE * abs(estimate) and ratio >= 1.0
    return "fail" if high else "pass"


def step_points(scenario: Scenario, bucketed: bool, version: Version) -> Array:
    """The version's metric over each 60-s step, as a metrics store reports it per step."""
    look = Look(scenario, bucketed, version, version, LOOPS)
    points = []
    for step in range(LOOPS // STEP_LOOPS):
        start, stop = version.upto(step * STEP_LOOPS), version.upto((step + 1) * STEP_LOOPS)
        value = look.statistic(version, start, stop)
        # a step without requests is a gap (NaN, which Kayenta removes)
        points.append(math.nan if value is None else value)
    return np.array(points, dtype=float)


def judge_kayenta(look: Look) -> Verdict:
    """On the steps completed by this look."""
    steps = look.look // STEP_LOOPS
    candidate, baseline = (points[:steps] for points in look.points)
    return kayenta_classify(candidate[~np.isnan(candidate)], baseline[~np.isnan(baseline)])


def judge_mann_whitney(look: Look) -> Verdict:
    c, b = look.candidate.upto(look.look), look.baseline.upto(look.look)
    if c == 0 or b == 0:
        return "inconclusive"
    candidate, baseline = look.values(look.candidate, 0, c), look.values(look.baseline, 0, b)
    if np.all(candidate == candidate[0]) and np.all(baseline == candidate[0]):
        return "pass"
    found = mannwhitneyu(candidate, baseline, alternative="greater")
    return "fail" if found.pvalue < MW_ALPHA else "pass"


@cache
def iter8_threshold(scenario: Scenario, bucketed: bool) -> float:
    allowance = Allowance.parse(scenario.allowance)
    if isinstance(scenario.baseline, float):
        return scenario.baseline + allowance.amount
    base = (bucketed_quantile if bucketed else true_quantile)(scenario.baseline, scenario.p)
    return base * (1 + allowance.amount) if allowance.relative else base + allowance.amount


def judge_iter8(look: Look) -> Verdict:
    value = look.statistic(look.candidate, 0, look.candidate.upto(look.look))
    if value is None:
        return "fail"
    return "pass" if value <= iter8_threshold(look.scenario, look.bucketed) else "fail"


JUDGE_FUNCTIONS: dict[str, Callable[[Look], Verdict]] = {
    "canarist": judge_canarist, "kayenta": judge_kayenta, "mw-every-look": judge_mann_whitney,
    "iter8": judge_iter8}


def score(judge: Callable[[Look], Verdict], looks: Sequence[Look]) -> Verdict:
    """Fail if any look says fail; else pass if the last look says pass; else inconclusive."""
    verdict: Verdict = "inconclusive"
    for look in looks:
        verdict = judge(look)
        if verdict == "fail":
            return "fail"  # later looks cannot change the run's outcome
    return verdict


# Running -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    scenario: int
    size: str
    runs: int
    seed: int


@dataclass(frozen=True)
class Row:
    scenario: str
    size: str
    data: str
    truth: str
    rates: dict[str, tuple[float, float, float]]  # judge -> fail, pass, inconclusive (%)


def run_task(task: Task) -> list[Row]:
    scenario, size = SCENARIOS[task.scenario], SIZES[task.size]
    rng = np.random.default_rng([task.seed, task.scenario, int(task.size)])
    forms = (False, True) if scenario.latency else (False,)
    tallies = {form: {j: {"fail": 0, "pass": 0, "inconclusive": 0} for j in JUDGES} for form in forms}
    for _ in range(task.runs):
        candidate = Version.draw(rng, size.candidate_rate, scenario.candidate)
        baseline = Version.draw(rng, size.baseline_rate, scenario.baseline)
        for form in forms:
            points = (step_points(scenario, form, candidate), step_points(scenario, form, baseline))
            looks = [Look(scenario, form, candidate, baseline, k, points) for k in range(1, LOOPS + 1)]
            for name, judge in JUDGE_FUNCTIONS.items():
                tallies[form][name][score(judge, looks)] += 1
    rows = []
    for form in forms:
        rates = {name: tuple(100 * tallies[form][name][o] / task.runs
                             for o in ("fail", "pass", "inconclusive")) for name in JUDGES}
        data = "counts" if not scenario.latency else "buckets" if form else "exact"
        rows.append(Row(scenario.name, size.name, data, scenario.truth(size), rates))  # type: ignore[arg-type]
    return rows


def simulate(runs: int, seed: int, workers: int) -> list[Row]:
    tasks = [Task(i, size, runs, seed) for i, s in enumerate(SCENARIOS) for size in s.sizes]
    if workers <= 1:
        results = [run_task(t) for t in tasks]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(run_task, tasks, chunksize=1)
    return [row for rows in results for row in rows]


# Reporting -----------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    head = f"{'scenario':<34} {'n':>4} {'data':<7} {'truth':<7}"
    for name in JUDGES:
        head += f" | {name + ' fail/pass/inc':>27}"
    lines = [head, "-" * len(head)]
    for row in rows:
        line = f"{row.scenario:<34} {row.size:>4} {row.data:<7} {row.truth:<7}"
        for name in JUDGES:
            f, p, i = row.rates[name]
            line += f" | {f:>9.1f}{p:>9.1f}{i:>9.1f}"
        lines.append(line)
    return "\n".join(lines)


def _find(rows: list[Row], scenario: str, size: str | None = None) -> list[Row]:
    return [r for r in rows if r.scenario == scenario and (size is None or r.size == size)]


def goals(rows: list[Row]) -> list[str]:
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    no_change = [r for r in rows if r.scenario.startswith("no change")]
    worst = max(no_change, key=lambda r: r.rates["canarist"][0])
    mw = max(r.rates["mw-every-look"][0] for r in no_change)
    out.append(f"false fail at no change <= 5 % over 10 looks: {verdict(worst.rates['canarist'][0] <= 5)}"
               f" - canarist at most {worst.rates['canarist'][0]:.1f} % ({worst.scenario}, n={worst.size},"
               f" {worst.data}); Mann-Whitney at every look up to {mw:.1f} %")
    worse = [r for r in rows if r.truth == "worse"]
    worst = max(worse, key=lambda r: r.rates["canarist"][1])
    out.append(f"pass when truly worse <= 5 % (thin data included): "
               f"{verdict(worst.rates['canarist'][1] <= 5)} - at most {worst.rates['canarist'][1]:.1f} %"
               f" ({worst.scenario}, n={worst.size}, {worst.data})")
    for name in ("+50 % p90 (slow path)", "+50 % p90 (wider lognormal)", "errors 1 % -> 5 %"):
        for row in _find(rows, name, "600"):
            fail = row.rates["canarist"][0]
            twice = [r.rates["canarist"][0] for r in _find(rows, name, "1200") if r.data == row.data]
            more = f" (at n=1200: {twice[0]:.1f} %)" if twice else ""
            out.append(f"detect {name} at n=600 ({row.data}) >= 90 %: {verdict(fail >= 90)} - {fail:.1f} %"
                       f"{more}")
    for row in _find(rows, "no change, 30 % allowance", "600"):
        passed = row.rates["canarist"][1]
        out.append(f"pass at no change, n=600, 30 % allowance ({row.data}) >= 80 %: "
                   f"{verdict(passed >= 80)} - {passed:.1f} %")
    short = []
    for row in rows:
        ours, theirs = row.rates["canarist"], row.rates["kayenta"]
        if row.truth == "worse" and ours[0] < theirs[0]:
            short.append(f"{row.scenario}, n={row.size}, {row.data}: detects {ours[0]:.1f} % "
                         f"vs {theirs[0]:.1f} %")
        if row.truth == "within" and ours[0] > theirs[0]:
            short.append(f"{row.scenario}, n={row.size}, {row.data}: false fail {ours[0]:.1f} % vs "
                         f"{theirs[0]:.1f} %")
        if row.truth == "worse" and ours[1] > theirs[1]:
            short.append(f"{row.scenario}, n={row.size}, {row.data}: passes a worse candidate "
                         f"{ours[1]:.1f} % vs {theirs[1]:.1f} %")
    out.append(f"at least Kayenta-style power at no more false alarms, every scenario: "
               f"{verdict(not short)}" + "".join(f"\n    short: {s}" for s in short))
    return out


def cost(repeat: int) -> list[str]:
    """Time to judge one candidate: 10^6 exact samples per version, and Knative's buckets."""
    rng = np.random.default_rng(7)
    objective = RelativeObjective("http/latency-p90", "upper", Allowance.parse("20%"))
    candidate, baseline = BASE.sample(rng, 10**6), BASE.sample(rng, 10**6)

    def best(work: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return min(times)

    def exact() -> object:
        return compare(objective, (1, Evidence(histogram=CumulativeCounts.from_samples(candidate))),
                       (0, Evidence(histogram=CumulativeCounts.from_samples(baseline))), CONFIDENCE)

    held = (Evidence(histogram=CumulativeCounts.from_samples(candidate)),
            Evidence(histogram=CumulativeCounts.from_samples(baseline)))
    c_buckets = bucket_counts(np.searchsorted(KNATIVE_BOUNDS, candidate, side="left"))
    b_buckets = bucket_counts(np.searchsorted(KNATIVE_BOUNDS, baseline, side="left"))

    def counts_only() -> object:
        return compare(objective, (1, held[0]), (0, held[1]), CONFIDENCE)

    def buckets() -> object:
        return compare(objective, (1, Evidence(histogram=c_buckets)), (0, Evidence(histogram=b_buckets)),
                       CONFIDENCE)

    return [
        f"10^6 exact samples per version, from raw samples (sorting included): {best(exact) * 1e3:.0f} ms",
        f"10^6 exact samples per version, counts already built: {best(counts_only) * 1e3:.2f} ms",
        f"{len(KNATIVE_BOUNDS)}-bucket histograms (10^6 requests each): {best(buckets) * 1e6:.0f} µs",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="canaries per scenario and size")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6 canaries per scenario")
    args = parser.parse_args(argv)
    runs = 6 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    started = time.perf_counter()
    rows = simulate(runs, args.seed, args.workers)
    print(f"{runs} canaries per row, 10 looks each, seed {args.seed}; fail/pass/inconclusive in %\n")
    print(table(rows))
    print("\nGoals:")
    for line in goals(rows):
        print(f"  {line}")
    print("\nThe judge's own cost (best of 3; sorting 10^6 samples is most of it):")
    for line in cost(1 if args.quick else 3):
        print(f"  {line}")
    print(f"\nsimulated in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
