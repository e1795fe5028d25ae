"""engine.records: the dataclass behaviour the engine relies on, without dataclasses."""

from __future__ import annotations

from typing import ClassVar

import pytest

from engine.records import FrozenRecordError, Record, asdict, field, fields, replace


class Point(Record, frozen=True):
    x: int
    y: int = 0


class Bag(Record):
    name: str
    items: list[str] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    kind: ClassVar[str] = "bag"  # not a field


class Tagged(Bag):
    tag: str = ""


def test_construction_by_position_keyword_and_default() -> None:
    assert (Point(1, 2).x, Point(1, 2).y) == (1, 2)
    assert Point(y=3, x=1) == Point(1, 3)
    assert Point(5).y == 0 and Point.y == 0  # the class attribute is the default, as for a dataclass
    a, b = Bag("a"), Bag("b")
    a.items.append("x")
    assert b.items == []  # each instance gets a fresh list
    assert [f.name for f in fields(Bag)] == ["name", "items", "points"]


@pytest.mark.parametrize("make,message", [
    (lambda: Point(), "missing required argument 'x'"),
    (lambda: Point(1, 2, 3), "takes 2 positional arguments but 3 were given"),
    (lambda: Point(1, x=2), "multiple values for argument 'x'"),
    (lambda: Point(1, z=2), "unexpected keyword argument 'z'"),
])
def test_wrong_arguments_are_type_errors(make: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()  # type: ignore[operator]


def test_equality_hash_and_frozen() -> None:
    assert Point(1, 2) == Point(1, 2) != Point(2, 1)
    assert Point(1) != (1, 0) and Bag("a") != Tagged("a")  # other classes never compare equal
    assert len({Point(1, 2), Point(1, 2)}) == 1
    with pytest.raises(TypeError):
        hash(Bag("a"))  # mutable records compare by value, so they are unhashable (as dataclasses)
    p = Point(1)
    with pytest.raises(FrozenRecordError, match="cannot assign to field 'x'"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    bag = Bag("a")
    bag.name = "b"
    assert bag == Bag("b")


def test_inheritance_appends_fields_and_repr_names_them() -> None:
    t = Tagged("n", ["i"], tag="t")
    assert [f.name for f in fields(t)] == ["name", "items", "points", "tag"]
    assert repr(t) == "Tagged(name='n', items=['i'], points=[], tag='t')"


def test_replace_copies_with_changes() -> None:
    bag = Bag("a", ["x"])
    other = replace(bag, name="b")
    assert (other.name, other.items) == ("b", ["x"]) and bag.name == "a"
    assert replace(Point(1, 2), y=5) == Point(1, 5)
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace(bag, nope=1)


def test_asdict_is_deep() -> None:
    bag = Bag("a", ["x"], [Point(1, 2)])
    out = asdict(bag)
    assert out == {"name": "a", "items": ["x"], "points": [{"x": 1, "y": 2}]}
    out["items"].append("y")
    assert bag.items == ["x"]


def test_declaration_mistakes_are_refused() -> None:
    with pytest.raises(ValueError, match="mutable default"):
        class Shared(Record):
            items: list[str] = []  # noqa: RUF012 - the mistake under test
    with pytest.raises(TypeError, match="required field 'b' follows 'a'"):
        class Order(Record):
            a: int = 0
            b: int
