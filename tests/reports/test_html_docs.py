"""Every example in docs/reports.md is what canarist produces.

Each fenced block in the page follows an `<!-- example: KIND [SECTION] FIXTURE -->` marker
(a jq example's output block follows its command block).
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap

import jq
import pytest
from tests.reports.browser import EXPERIMENTS, GOLDEN, REPO, load_experiment

from canarist.reports.html import render_html
from canarist.reports.text import render_text
from canarist.reports.verdict import render_json, verdict

DOC = REPO / "docs" / "reports.md"
_MARKER = re.compile(r"<!-- example: (?P<args>[^>]*?) -->\n")
_FENCE = re.compile(r"(?P<indent>[ ]*)```(?P<lang>\w*)\n(?P<body>.*?)(?P=indent)```\n", re.DOTALL)


def _blocks_after(text: str, start: int, count: int) -> list[str]:
    blocks = []
    position = start
    for _ in range(count):
        fence = _FENCE.search(text, position)
        assert fence is not None
        assert not text[position:fence.start()].strip(), "an example marker must precede its block"
        blocks.append(textwrap.dedent(fence.group("body")) if fence.group("indent")
                      else fence.group("body"))
        position = fence.end()
    return blocks


def examples() -> list[tuple[list[str], list[str]]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for marker in _MARKER.finditer(text):
        args = marker.group("args").split()
        found.append((args, _blocks_after(text, marker.end(), 2 if args[0] == "jq" else 1)))
    return found


def test_every_block_is_an_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    checked = sum(len(blocks) for _, blocks in EXAMPLES)
    assert checked == len(_FENCE.findall(text)) > 0
    kinds = {args[0] for args, _ in EXAMPLES}
    assert kinds == {"cli", "text", "html", "json", "jq"}


EXAMPLES = examples()


@pytest.mark.parametrize(("args", "blocks"), EXAMPLES, ids=[" ".join(a) for a, _ in EXAMPLES])
def test_example(args: list[str], blocks: list[str]) -> None:
    kind = args[0]
    if kind == "cli":
        renderers = {"text": render_text, "html": render_html, "json": render_json}
        experiment = load_experiment("http-one-version")
        for line in blocks[0].splitlines():
            words = shlex.split(line.split(">")[0])
            assert words[:2] == ["canarist", "report"]
            fmt = words[words.index("-o") + 1] if "-o" in words else "text"
            assert renderers[fmt](experiment)
        return
    name = args[-1]
    assert name in EXPERIMENTS
    experiment = load_experiment(name)
    if kind == "text":
        assert blocks[0] == render_text(experiment)
    elif kind == "json":
        assert json.loads(blocks[0]) == verdict(experiment)
        assert blocks[0] == render_json(experiment)
    elif kind == "html":
        # The browser test keeps these golden files equal to the page's innerText.
        golden = (GOLDEN / f"{name}.html.txt").read_text(encoding="utf-8")
        assert f"== {args[1]} ==\n{blocks[0].strip()}\n" in golden
    else:
        command, output = blocks
        program = shlex.split(command.split("|", 1)[1])[-1]
        results = jq.compile(program).input_value(json.loads(render_json(experiment))).all()
        lines = [r if isinstance(r, str) and "-r" in command
                 else json.dumps(r, separators=(",", ":") if "-c" in command else None)
                 for r in results]
        assert "\n".join(lines) + "\n" == output
