"""Plain values -> frozen dataclasses, checked against their type hints, with located errors.

The policy model (``model.py``) is the single description of the file format: field names (camelCase
of the Python name unless ``key`` says otherwise), types, defaults and required fields all come from
the dataclasses, so the loader, ``policy show`` and the documentation cannot drift apart. Unknown
fields, wrong types and bad enum values are errors with the closest known spelling suggested: a
typo must never silently weaken a policy.

Supported hints: ``bool``, ``int``, ``float``, ``str``, ``datetime.date``, an ``Enum``, a nested
dataclass, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]`` and ``Annotated[T, parser]`` where
``parser(raw) -> T`` raises ``ValueError`` with a message for a bad value.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import enum
import types
import typing
from functools import lru_cache
from typing import Any, Callable, Iterator, Mapping

from policies.yamlsource import Document, Path


def key_of(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a dataclass field: ``metadata['key']`` or the camelCase of its name."""
    explicit = f.metadata.get("key")
    if explicit:
        return str(explicit)
    head, *rest = f.name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[tuple[str, dataclasses.Field[Any], Any], ...]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple((key_of(f), f, hints[f.name]) for f in dataclasses.fields(cls))


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        hit = lowered.get(word.lower())
        close = [hit] if hit else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: Any) -> str:
    """A found value as an error message names it (``string 'x'``, ``a list``, ``nothing (null)``)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Converter:
    """Builds dataclasses from one document's plain values; errors carry the document's marks."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def build(self, cls: type, value: Any, path: Path) -> Any:
        return self._convert(cls, value, path)

    def _convert(self, hint: Any, value: Any, path: Path) -> Any:
        if hint is Any:
            return value
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            base, parser = typing.get_args(hint)[:2]
            if value is None and _optional(base):
                return None
            try:
                return parser(value)
            except ValueError as exc:
                raise self.doc.error(path, str(exc)) from None
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            if value is None:
                return None
            return self._convert(args[0], value, path)
        if origin is tuple:
            (item,) = typing.get_args(hint)[:1]
            if not isinstance(value, list):
                raise self.doc.error(path, f"expected a list, found {describe(value)}")
            return tuple(self._convert(item, v, (*path, i)) for i, v in enumerate(value))
        if origin is dict:
            _, item = typing.get_args(hint)
            if not isinstance(value, dict):
                raise self.doc.error(path, f"expected a mapping, found {describe(value)}")
            return {str(k): self._convert(item, v, (*path, k)) for k, v in value.items()}
        if dataclasses.is_dataclass(hint):
            return self._dataclass(hint, value, path)  # type: ignore[arg-type]
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            allowed = [m.value for m in hint]
            if value not in allowed or isinstance(value, bool):
                hint_text = suggest(str(value), allowed) if isinstance(value, str) else ""
                raise self.doc.error(path, f"must be one of {', '.join(map(str, allowed))}, "
                                           f"found {describe(value)}{hint_text}")
            return hint(value)
        return self._scalar(hint, value, path)

    def _scalar(self, hint: Any, value: Any, path: Path) -> Any:
        if hint is bool:
            if isinstance(value, bool):
                return value
            raise self.doc.error(path, f"expected true or false, found {describe(value)}")
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise self.doc.error(path, f"expected a whole number, found {describe(value)}")
        if hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise self.doc.error(path, f"expected a number, found {describe(value)}")
        if hint is str:
            if isinstance(value, str):
                return value
            raise self.doc.error(path, f"expected a string, found {describe(value)} (quote it)")
        if hint is datetime.date:
            if isinstance(value, datetime.datetime):
                return value.date()
            if isinstance(value, datetime.date):
                return value
            if isinstance(value, str):
                try:
                    return datetime.date.fromisoformat(value)
                except ValueError:
                    pass
            raise self.doc.error(path, f"expected a date (YYYY-MM-DD), found {describe(value)}")
        raise TypeError(f"unsupported type hint {hint!r} at {path}")  # a bug in the model

    def _dataclass(self, cls: type, value: Any, path: Path) -> Any:
        if not isinstance(value, dict):
            raise self.doc.error(path, f"expected a mapping, found {describe(value)}")
        fields = _fields(cls)
        known = {k: (f, h) for k, f, h in fields}
        for key in value:
            if key not in known:
                raise self.doc.error((*path, key), "unknown field" + suggest(str(key), known))
        kwargs: dict[str, Any] = {}
        for key, f, hint in fields:
            if key in value:
                kwargs[f.name] = self._convert(hint, value[key], (*path, key))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.doc.error(path, f"missing required field '{key}'")
        obj = cls(**kwargs)
        check: Callable[[], Iterator[tuple[str | None, str]]] | None = getattr(obj, "problems", None)
        if check is not None:
            for key, problem in check():
                raise self.doc.error((*path, key) if key else path, problem)
        return obj


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def to_plain(obj: Any) -> Any:
    """The inverse of ``Converter``: a dataclass as the camelCase mapping a file would hold.

    Fields left at ``None`` (unconstrained) are omitted, so ``policy show`` prints what is in force.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for key, f, _ in _fields(type(obj)):
            if f.metadata.get("internal"):
                continue
            value = getattr(obj, f.name)
            if value is None or (isinstance(value, (tuple, dict)) and not value and f.metadata.get("omit_empty")):
                continue
            out[key] = to_plain(value)
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    return obj
