"""What bounded evaluation costs, and how fast it stops runaway work.

    PYTHONPATH=src .venv/bin/python bench/bounded_bench.py [--rounds 100] [--limit 3]

Prints, with the whole CLI imported (as in a run): the cost of one bounded evaluation (a fork,
a trivial result back, the reap), one batch of 12 jq expressions on a Prometheus-sized answer
in one child against 12 children, and the time from the start of an evaluation to `Overrun`
for each hostile example of issue 14 under a `--limit` seconds deadline.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import canarist.cli.app  # noqa: F401  - the process a run forks from
from canarist.backends.bounded import Limit, Overrun, evaluate
from canarist.backends.providers.extract import jq_output, jq_outputs
from canarist.core import gotemplate

ANSWER = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"le": str(le)}, "value": [1700000000, str(le * 3)]} for le in range(40)]}}
EXPRESSIONS = [".data.result[0].value[1] | tonumber"] * 6 + [
    "[.data.result[] | [.metric.le, .value[1]]]"] * 6
HOSTILE_JQ = ["def f: f; f", "repeat(1)|select(false)", "[range(1e8)]", "until(false;.)",
              "def f: 1 + f; f"]
FAN_OUT = ('{{define "x"}}{{if lt (len .) 40}}{{template "x" (append . 1)}}'
           '{{template "x" (append . 1)}}{{end}}{{end}}{{template "x" list}}')


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms, p90 " \
           f"{sorted(samples)[int(len(samples) * 0.9)] * 1000:.1f} ms"


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--limit", type=float, default=3.0)
    args = parser.parse_args()
    limit = Limit(10, "10s (evaluation limit)")
    jobs = [(ANSWER, e) for e in EXPRESSIONS]
    print("one bounded evaluation (fork, result, reap):",
          ms(timed(lambda: evaluate(lambda mark: 1, limit), args.rounds)))
    print("12 jq expressions in-process:",
          ms(timed(lambda: [jq_output(a, e) for a, e in jobs], args.rounds // 4)))
    print("12 jq expressions, one child:",
          ms(timed(lambda: evaluate(functools.partial(jq_outputs, jobs), limit),
                   args.rounds // 4)))
    print("12 jq expressions, a child each:",
          ms(timed(lambda: [evaluate(functools.partial(jq_outputs, [j]), limit) for j in jobs],
                   args.rounds // 4)))
    deadline = Limit(args.limit, f"{args.limit:g}s (task timeout)")
    cases: list[tuple[str, Callable[[Callable[[int], None]], object]]] = [
        (f"jq {e!r}", functools.partial(jq_outputs, [(None, e)])) for e in HOSTILE_JQ]
    template = gotemplate.parse(FAN_OUT, name="fan-out")
    cases.append(("template fan-out", lambda mark: template.execute({})))
    for name, work in cases:
        start = time.perf_counter()
        try:
            evaluate(work, deadline)
            outcome = "finished"
        except Overrun as exc:
            outcome = str(exc)
        print(f"{name}: {outcome} after {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    text = gotemplate.render('{{ regexMatch "^(a+)+$" .s }}', {"s": "a" * 100000 + "b"})
    print(f"regexMatch ^(a+)+$ on 100,001 characters: {text} in "
          f"{(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
