"""Every parser, fed 10,000 hostile inputs, answers or refuses them as documented.

For each parser (see generators.py): no traceback and no exception other than canarist's
input errors (`InputError`, exit 2; for jq at run time, a metric unavailable with a reason),
no message that echoes a huge input whole, no environment variable in any output, and no
input that runs for more than 5 s or allocates more than the workers' 2 GiB address space.
Then about 50 inputs per parser go through the command line (`launch --dry`, `k launch
--dry`, `report`, `template render`, and a real `launch` for jq against a local
Prometheus-like server): exit 0 or 2, every stderr line an `Error:` or log line, no
traceback, no raw control or bidi character on the terminal.

Inputs are the same on every CI run (seed 0, as the hypothesis profile `ci` derandomizes
the property tests) and new on every local run; a failure prints the seed, and
CANARIST_FUZZ_SEED=<seed> replays it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from tests.robustness.generators import PARSERS, generate
from tests.robustness.harness import run_cases, seed
from tests.robustness.targets import PAYLOAD
from tests.servers.web import answering, serving_in_thread

INPUTS = 10_000
CLI_INPUTS = 50


@pytest.mark.parametrize("parser", PARSERS)
def test_parser_survives_hostile_inputs(parser: str) -> None:
    fuzz_seed = seed()
    cases = generate(parser, fuzz_seed, INPUTS)
    outcome = run_cases(parser, cases)
    assert not outcome.failures, outcome.describe(cases, fuzz_seed)
    assert outcome.ran == INPUTS


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    with serving_in_thread(answering(PAYLOAD)) as url:
        yield f"{url}/api/v1/query"


@pytest.mark.parametrize("parser", PARSERS)
def test_command_line_refuses_hostile_inputs_cleanly(parser: str, prometheus: str) -> None:
    fuzz_seed = seed()
    cases = random.Random(fuzz_seed).sample(generate(parser, fuzz_seed + 1, INPUTS), CLI_INPUTS)
    outcome = run_cases(parser, cases, mode="cli", case_s=30.0, prometheus=prometheus)
    assert not outcome.failures, outcome.describe(cases, fuzz_seed)
    assert outcome.ran == CLI_INPUTS
