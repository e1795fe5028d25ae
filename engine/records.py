"""Records: classes declared like dataclasses, without what a dataclass costs a short-lived process.

``@dataclass`` writes each class's ``__init__``, ``__repr__`` and ``__eq__`` (frozen: ``__setattr__``,
``__delattr__``, ``__hash__``) as source text and compiles it while the class is created: ~0.4 ms per
class on this machine, after 6.5 ms for importing ``dataclasses`` itself (it imports ``inspect``,
``ast`` and ``dis``). The warm ``stockade run`` held ~40 dataclasses, a fifth of a container start.

A :class:`Record` is declared the same way (annotations, defaults, ``field(default_factory=…)``,
``frozen=True`` as a class keyword) and gets the same behaviour from methods written once here and
driven by the class's tuple of fields, so creating one costs microseconds. Construction is a little
slower than a dataclass's generated ``__init__`` (a loop instead of straight-line code), which no
caller notices. :func:`replace`, :func:`fields` and :func:`asdict` are ``dataclasses``' namesakes.
Type checkers see records as dataclasses (``typing.dataclass_transform``).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, TypeVar, dataclass_transform

MISSING: Any = object()  # no default (``Field.default``), as ``dataclasses.MISSING``
_MISSING = MISSING
R = TypeVar("R", bound="Record")


class Field:
    """One declared field: its name, default or default factory, and free-form metadata."""

    __slots__ = ("name", "default", "default_factory", "metadata")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING,
                 metadata: Mapping[str, Any] | None = None) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("a field cannot have both a default and a default_factory")
        self.name = ""
        self.default, self.default_factory = default, default_factory
        self.metadata: Mapping[str, Any] = metadata or {}

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is _MISSING

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING,
          metadata: Mapping[str, Any] | None = None) -> Any:
    """A field with a default factory (a fresh list per instance) or metadata, as ``dataclasses.field``."""
    return Field(default, default_factory, metadata)


class FrozenRecordError(AttributeError):
    """An attribute of a frozen record was assigned or deleted."""


@dataclass_transform(field_specifiers=(field,))
class Record:
    """Base of records (see the module docstring): ``class Point(Record, frozen=True): x: int; y: int = 0``."""

    __record_fields__: ClassVar[tuple[Field, ...]] = ()
    __record_frozen__: ClassVar[bool] = False

    def __init_subclass__(cls, *, frozen: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = {f.name: f for f in cls.__record_fields__}  # inherited, in their order
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = cls.__dict__.get(name, _MISSING)
            f = value if isinstance(value, Field) else Field(default=value)
            if isinstance(f.default, (list, dict, set)):
                raise ValueError(f"{cls.__name__}.{name}: a mutable default is shared by every instance; "
                                 "use field(default_factory=…)")
            f.name = name
            if isinstance(value, Field):  # the class attribute is the plain default, as for dataclasses
                if f.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, f.default)
            found[name] = f
        seen_default = ""
        for f in found.values():
            if not f.required:
                seen_default = f.name
            elif seen_default:
                raise TypeError(f"{cls.__name__}: required field {f.name!r} follows {seen_default!r}, "
                                "which has a default")
        cls.__record_fields__ = tuple(found.values())
        if frozen or cls.__record_frozen__:
            cls.__record_frozen__ = True
            cls.__setattr__ = cls.__delattr__ = Record._refuse  # type: ignore[assignment, method-assign]
            cls.__hash__ = Record._hash  # type: ignore[assignment, method-assign]
        elif "__hash__" not in cls.__dict__:
            cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared by value

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        declared = self.__record_fields__
        if len(args) > len(declared):
            raise TypeError(f"{type(self).__name__}() takes {len(declared)} positional arguments but "
                            f"{len(args)} were given")
        assign = object.__setattr__
        for f, value in zip(declared, args):
            if f.name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {f.name!r}")
            assign(self, f.name, value)
        for f in declared[len(args):]:
            if f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.default is not _MISSING:
                value = f.default
            elif f.default_factory is not _MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"{type(self).__name__}() missing required argument {f.name!r}")
            assign(self, f.name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in self.__record_fields__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__)
        return f"{type(self).__qualname__}({inner})"

    def _refuse(self, name: str, *_: Any) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def _hash(self) -> int:
        return hash(self._values())


def fields(record: Record | type[Record]) -> tuple[Field, ...]:
    return record.__record_fields__


def replace(record: R, **changes: Any) -> R:
    """A copy of ``record`` with ``changes`` (shallow, as ``dataclasses.replace``)."""
    values = {f.name: getattr(record, f.name) for f in record.__record_fields__}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {sorted(unknown)[0]!r}")
    return type(record)(**{**values, **changes})


def asdict(value: Any) -> Any:
    """Records (nested in lists, tuples and dicts too) as plain dicts, every container copied."""
    if isinstance(value, Record):
        return {f.name: asdict(getattr(value, f.name)) for f in value.__record_fields__}
    if isinstance(value, (list, tuple)):
        return type(value)(asdict(v) for v in value)
    if isinstance(value, dict):
        return {k: asdict(v) for k, v in value.items()}
    return value
