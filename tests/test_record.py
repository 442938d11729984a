"""``@record`` behaves as the frozen dataclass it replaces: construction, defaults,
equality and hash over compared fields, frozen, and ``dataclasses`` helpers."""
import dataclasses

import pytest

from derive.expr import Add, Number, Symbol
from derive.record import field, record


@record
class Point:
    x: int
    y: int = 2
    tags: dict = field(default_factory=dict, compare=False, repr=False)


@record
class Labelled(Point):
    label: str = ""


@record(eq=False)
class Identity:
    value: int


def test_arguments_defaults_and_factories():
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 2, {})
    assert Point(1).tags is not Point(1).tags            # a fresh dict each time
    assert Point(y=5, x=3) == Point(3, 5)
    with pytest.raises(TypeError, match="missing argument 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        Point(1, 2, {}, 4)


def test_equality_and_hash_ignore_uncompared_fields():
    assert Point(1, tags={"a": 1}) == Point(1, tags={"b": 2})
    assert hash(Point(1, tags={"a": 1})) == hash(Point(1))
    assert Point(1) != Point(2)
    assert Point(1) != Labelled(1)                      # another class is never equal
    assert Identity(1) != Identity(1)                   # eq=False: identity
    assert repr(Point(1, 3)) == "Point(x=1, y=3)"


def test_frozen_and_a_dataclass_to_dataclasses():
    p = Labelled(1, label="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags", "label"]
    moved = dataclasses.replace(p, y=7)
    assert (moved.x, moved.y, moved.label) == (1, 7, "a") and p.y == 2
    assert dataclasses.asdict(Point(1)) == {"x": 1, "y": 2, "tags": {}}
    assert dataclasses.is_dataclass(p)


def test_refuses_what_it_does_not_support():
    with pytest.raises(TypeError, match="set by __init__"):
        @record
        class Hidden:
            x: int = field(default=0, init=False)


def test_nodes_compare_structurally_and_cache_their_hash():
    x = Symbol("x")
    a, b = Add((x, Number(2))), Add((Symbol("x"), Number(2)))
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != Add((x, Number(3)))
    assert "_hash" in a.__dict__                        # computed once, kept
    assert a.rebuild([x, Number(5)]) == Add((x, Number(5)))


def test_a_method_the_class_defines_stays():
    @record
    class Shown:
        x: int

        def __repr__(self):
            return f"<Shown {self.x}>"

    assert repr(Shown(3)) == "<Shown 3>" and Shown(3) == Shown(3)
