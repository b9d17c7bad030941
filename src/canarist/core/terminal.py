"""Text for a terminal: control and bidirectional-format characters shown as visible escapes.

Reasons, server answers, jq errors and version names end up on the terminal. Left raw, an
escape sequence in them could retitle the window, clear the screen or move the cursor, and a
right-to-left override (U+202E) could make a line read as something it does not say. Every
terminal output passes through `printable` (or `one_line` for a value inside a line):

* C0 controls (U+0000–U+001F) but tab and, where the layout needs it, newline; DEL (U+007F);
  C1 controls (U+0080–U+009F) are shown as `\\xNN` (`\\x1b` for ESC, `\\x0d` for CR);
* bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)
  and line/paragraph separators (U+2028, U+2029) are shown as `\\uNNNN`.

JSON output keeps its meaning: those characters become JSON's own `\\uNNNN` escapes
(`printable_json`). Ordinary text, including any other non-ASCII letters, symbols and emoji,
is left unchanged.
"""

from __future__ import annotations

from typing import Final

_FORMAT_CHARACTERS: Final = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                             *range(0x2066, 0x206A), 0x2028, 0x2029)


def _escapes(keep: str) -> dict[int, str]:
    table = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
    table.update({code: f"\\u{code:04x}" for code in _FORMAT_CHARACTERS})
    for character in keep:
        del table[ord(character)]
    return table


_MULTILINE: Final = _escapes("\t\n")
_ONE_LINE: Final = _escapes("\t")
# What `json.dumps(..., ensure_ascii=False)` leaves raw: DEL, C1 controls, format characters.
_JSON: Final = {code: f"\\u{code:04x}" for code in (*range(0x7F, 0xA0), *_FORMAT_CHARACTERS)}


def printable(text: str) -> str:
    """`text` with every control and bidi-format character but tab and newline escaped."""
    return text.translate(_MULTILINE)


def one_line(text: str) -> str:
    """`text` as one line: newlines are escaped too (`\\x0a`), so no value can start a line
    of its own."""
    return text.translate(_ONE_LINE)


def printable_json(text: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with the characters it leaves raw
    written as `\\uNNNN` escapes: the same JSON value, safe on a terminal."""
    return text.translate(_JSON)


__all__ = ["one_line", "printable", "printable_json"]
