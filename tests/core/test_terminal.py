"""Terminal output: control and bidi-format characters become visible escapes."""

from __future__ import annotations

import json

from canarist.core.terminal import one_line, printable, printable_json

ATTACKS = {
    "\x1b]0;owned\x07": "\\x1b]0;owned\\x07",          # OSC: window title
    "\x1b[2J\x1b[H": "\\x1b[2J\\x1b[H",                # clear the screen, cursor home
    "\x9b2J": "\\x9b2J",                               # 8-bit CSI
    "fake\rreal": "fake\\x0dreal",                     # carriage return overwrites the line
    "\x08\x7f\x00": "\\x08\\x7f\\x00",
    "\u202eevil\u202c": "\\u202eevil\\u202c",          # right-to-left override
    "\u2066\u2067\u2068\u2069": "\\u2066\\u2067\\u2068\\u2069",
    "\u200e\u200f\u061c": "\\u200e\\u200f\\u061c",
    "a\u2028b\u2029c": "a\\u2028b\\u2029c",
}


def test_every_control_and_bidi_character_is_escaped() -> None:
    for raw, shown in ATTACKS.items():
        assert printable(raw) == shown
        assert one_line(raw) == shown
    for code in [*range(0x20), *range(0x7F, 0xA0)]:
        character = chr(code)
        if character in "\t\n":
            continue
        assert printable(character) == f"\\x{code:02x}"


def test_ordinary_text_is_unchanged() -> None:
    text = "Verdict: ✔ PASSED (pass)\n\tlatency (msec) | 12.5\nrésumé 中文 😀 \\x1b as typed"
    assert printable(text) == text
    assert one_line("a\nb\tc") == "a\\x0ab\tc"


def test_json_keeps_its_value() -> None:
    data = {"reason": "x\x1b[2J\x9b\u202e\x7fé\n"}
    text = json.dumps(data, ensure_ascii=False)
    safe = printable_json(text)
    assert json.loads(safe) == data
    assert all(ch not in safe for ch in "\x1b\x9b\u202e\x7f")
    assert "é" in safe
