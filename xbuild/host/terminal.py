"""Untrusted text on a terminal. Build output, a tenant's Dockerfile step or an engine's error
message can carry escape sequences (OSC 52 writes the reader's clipboard, CSI clears the screen
or moves the cursor, a bare CR overwrites what was shown). Everything that prints such text goes
through `safe`: control characters come out visible (ESC as ^[), tabs stay. Files (build.log)
keep the raw bytes; only what is printed is rendered."""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls (0x9b is a one-byte CSI), and the bidirectional
# overrides that reorder what a reader sees ("Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match) -> str:
    code = ord(m.group())
    if code < 0x20 or code == 0x7f:
        return "^" + chr(code ^ 0x40)          # caret notation: ESC -> ^[, CR -> ^M, DEL -> ^?
    return f"\\x{code:02x}" if code <= 0xff else f"\\u{code:04x}"


def safe(text: str) -> str:
    """One line of untrusted text, fit to print: control characters rendered visibly."""
    return _CONTROL.sub(_visible, text)


def safe_lines(text: str) -> str:
    """Several lines: each made safe, the line breaks kept."""
    return "\n".join(safe(line) for line in text.split("\n"))
