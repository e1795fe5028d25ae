"""The bounded reader every small outside JSON file goes through: the bound, the parse, the wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.boundedio import load_json, parse_json, read_bytes
from engine.errors import StockadeError


class Refused(StockadeError):
    """The caller's own error class: the helper raises it, not one of its own."""


def test_a_file_at_the_limit_is_read_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b'{"a": [1, 2]}')
    assert load_json(path, 13, what=f"document {path}", error=Refused) == (b'{"a": [1, 2]}', {"a": [1, 2]})


def test_one_byte_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b"x" * 11)
    with pytest.raises(Refused, match=rf"^document {path} is larger than 10 bytes$"):
        read_bytes(path, 10, what=f"document {path}", error=Refused)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unreadable_path_names_itself(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "doc.json"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(Refused, match=rf"^cannot read document {path}: "):
        load_json(path, 100, what=f"document {path}", error=Refused)


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"[" * 100_000 + b"]" * 100_000],
                         ids=["truncated", "not-utf8", "nested-past-the-recursion-limit"])
def test_what_is_not_json_is_refused_in_one_line(raw: bytes) -> None:
    with pytest.raises(Refused) as err:
        parse_json(raw, what="document x.json", error=Refused)
    message = str(err.value)
    assert message.startswith("document x.json is not valid JSON: ") and "\n" not in message
