"""The documentation as steps a user takes: files to write, commands to type, and what each
command is expected to do.

A page is read top to bottom. A fenced block whose first line is `# <file name>` (for
example `# values.yaml`, `# iris.jsonl`) is a file the user writes before the commands that
follow; a `shell` block is commands the user types. An HTML comment right before a block
tells the test what to expect, invisibly to readers:

    <!-- test: exit 1 -->            the commands end with exit code 1 (default 0)
    <!-- test: not run: <why> -->    the commands cannot run here; <why> says what they need
    <!-- test: stdout -->            (before a `text` block after commands) every line of
    <!-- test: stderr -->            the block appears in what the commands printed there
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_BLOCK = re.compile(r"(?P<comment>(?:^<!-- test: [^>]*-->\n\n?)?)^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```",
                    re.M | re.S)
_FILE = re.compile(r"^(?:# |\{\{/\* )(?P<name>[\w./-]+\.(?:yaml|yml|json|jsonl|tpl|txt))"
                   r"(?: \*/\}\})?\n")
_DIRECTIVE = re.compile(r"<!-- test: (?P<text>[^>]*?) -->")


@dataclass(frozen=True)
class Step:
    """A file to write (`file` set) or commands to run (`commands` set)."""

    page: str
    line: int
    file: str | None = None
    content: str = ""
    commands: str | None = None
    exit_code: int = 0
    not_run: str | None = None
    shows: tuple[tuple[str, str], ...] = ()  # (stream, line) the commands must print

    def describe(self) -> str:
        return f"{self.page}:{self.line}"


def steps(page: Path) -> list[Step]:
    text = page.read_text(encoding="utf-8")
    name = str(page.relative_to(REPO))
    found: list[Step] = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("lang")) + 1
        lang, body = match.group("lang"), match.group("body")
        directive = _DIRECTIVE.search(match.group("comment") or "")
        exit_code, not_run = 0, None
        if directive:
            word = directive.group("text")
            if word in ("stdout", "stderr"):
                previous = found[-1] if found else None
                if previous is None or previous.commands is None:
                    raise ValueError(f"{name}:{line}: {word} without commands before it")
                lines = tuple((word, text) for text in body.splitlines() if text.strip())
                found[-1] = dataclasses.replace(previous, shows=previous.shows + lines)
                continue
            if word.startswith("exit "):
                exit_code = int(word.removeprefix("exit "))
            elif word.startswith("not run: "):
                not_run = word.removeprefix("not run: ").strip()
            else:
                raise ValueError(f"{name}:{line}: unknown test directive {word!r}")
        file = _FILE.match(body)
        if lang == "shell":
            found.append(Step(name, line, commands=body, exit_code=exit_code, not_run=not_run))
        elif file:
            found.append(Step(name, line, file=file.group("name"), content=body))
    return found


def shell_steps() -> list[Step]:
    return [step for page in PAGES for step in steps(page) if step.commands is not None]
