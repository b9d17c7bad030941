"""Go `text/tabwriter` layout (minwidth 0, padding 1, Debug flag) as Iter8's reports use it."""

from __future__ import annotations

from canarist.core.terminal import one_line


def tabwrite(rows: list[list[str]]) -> str:
    """Pad every cell but the last of each row to its column width + 1 and end it with `|`.

    A cell is shown on one line, its control and bidi-format characters escaped."""
    rows = [[one_line(cell) for cell in row] for row in rows]
    widths: dict[int, int] = {}
    for row in rows:
        for column, cell in enumerate(row[:-1]):
            widths[column] = max(widths.get(column, 0), len(cell))
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[column] + 1) + "|" for column, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else "") + "\n")
    return "".join(lines)


def indent(text: str, spaces: int) -> str:
    """Sprig's `indent`: pad the start and every line break, including a trailing one."""
    pad = " " * spaces
    return pad + text.replace("\n", "\n" + pad)
