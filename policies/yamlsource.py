"""YAML documents as plain Python values plus the line of every field.

Policy errors must name file, line and field, and SARIF results must point at a manifest's line, so
both loaders walk PyYAML's node graph themselves: values are built from safe scalars only (no Python
tags), duplicate keys and merge keys are refused (a later duplicate would silently override an
earlier, possibly stricter, value), and the number of nodes is bounded so an alias bomb cannot
expand without limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from policies.errors import PolicyLoadError

Path = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


def format_path(path: Path) -> str:
    """``("spec", "rules", 0, "id")`` -> ``spec.rules[0].id`` (the spelling every error uses)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """One YAML document: its value, where each path starts, and the file it came from."""

    value: Any
    file: str
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    index: int = 0

    def line_of(self, path: Path) -> tuple[int | None, int | None]:
        """The line and column of ``path``, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            mark = self.marks.get(path[:cut])
            if mark is not None:
                return mark
        return None, None

    def error(self, path: Path, problem: str) -> PolicyLoadError:
        line, column = self.line_of(path)
        return PolicyLoadError(self.file, line, column, format_path(path), problem)


class _Builder:
    def __init__(self, doc: Document, max_nodes: int) -> None:
        self.doc, self.budget = doc, max_nodes
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.doc.error(path, "document too large (too many YAML nodes; aliases expanding?)")
        self.doc.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    raise self.doc.error(path, "YAML merge keys ('<<') are not supported: write the fields out")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.doc.error(path, "a mapping key must be a plain scalar")
                key = self.scalars.construct_object(key_node)
                if not isinstance(key, (str, int, bool)) or key is None:
                    key = str(key)
                sub = (*path, key if isinstance(key, (str, int)) else str(key))
                if key in out:
                    self.doc.marks[sub] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                    raise self.doc.error(sub, "duplicate key (a later value would silently replace the first)")
                self.doc.marks[sub] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.scalars.construct_object(node)
        except yaml.YAMLError as exc:
            raise self.doc.error(path, f"unreadable value ({exc.__class__.__name__})") from None


def load_documents(text: str, file: str, *, max_nodes: int = 1_000_000) -> list[Document]:
    """Every document of a (multi-document) YAML text; empty documents are skipped."""
    docs: list[Document] = []
    try:
        loader = _Loader(text)
        try:
            index = 0
            while loader.check_node():
                node = loader.get_node()
                if node is not None:
                    doc = Document(None, file, index=index)
                    doc.value = _Builder(doc, max_nodes).build(node, ())
                    if doc.value is not None:
                        docs.append(doc)
                index += 1
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise PolicyLoadError(file, line, col, "", f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PolicyLoadError(file, None, None, "", f"not valid YAML: {exc}") from None
    except RecursionError:  # libyaml allows 1000 levels; building them recursively may need more
        raise PolicyLoadError(file, None, None, "", "nested too deeply") from None
    return docs


def read_text(path: str, *, limit: int, what: str) -> str:
    """Read a UTF-8 file of at most ``limit`` bytes; errors name the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise PolicyLoadError(path, None, None, "", f"cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise PolicyLoadError(path, None, None, "", f"{what} larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(path, None, None, "", f"{what} is not UTF-8 (byte {exc.start})") from None
