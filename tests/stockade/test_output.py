"""The table printer every listing verb uses: what images and registries wrote never drives the terminal."""

from __future__ import annotations

import io

from stockade.output import print_table


def test_control_characters_in_a_cell_are_shown_not_sent() -> None:
    out = io.StringIO()
    rows = [{"name": "web", "command": 'sh -c "printf \x1b]52;c;cGF5bG9hZA==\x07; clear\x1b[2J"'}]
    print_table(rows, [("name", "name"), ("command", "command")], out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]52;c;cGF5bG9hZA==\\x07" in text and "\\x1b[2J" in text
    assert text.splitlines()[0].split() == ["NAME", "COMMAND"]
