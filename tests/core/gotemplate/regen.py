"""Regenerate expected.json from the Go oracle: python -m tests.core.gotemplate.regen"""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.gotemplate.cases import ALL_CASES
from tests.core.gotemplate.oracle_runner import run_oracle

EXPECTED = Path(__file__).parent / "expected.json"


def expected_from_go() -> dict[str, dict[str, str]]:
    results = run_oracle([c.oracle_input() for c in ALL_CASES])
    out: dict[str, dict[str, str]] = {}
    for case, r in zip(ALL_CASES, results, strict=True):
        if r.error is not None:
            out[case.id] = {"error": r.error, "phase": r.phase or ""}
        else:
            out[case.id] = {"out": r.out or ""}
    return out


def main() -> None:
    EXPECTED.write_text(json.dumps(expected_from_go(), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {EXPECTED}")


if __name__ == "__main__":
    main()
