"""``@record``: a frozen dataclass without the cost of making one.

``dataclasses.dataclass`` compiles half a dozen methods per class from source; over the
sixty record and node classes a cold ``derive check`` loads, that was a fifth of what
derive added to Python's own start-up.  ``record`` builds the same methods as closures
over the field names and registers real ``dataclasses.Field`` objects, so what is
written with it is a dataclass to everything else: ``dataclasses.replace``, ``fields``,
``asdict`` and type checkers (through ``dataclass_transform``) treat it as one.

What it supports is what derive's classes use: defaults, ``field(default=…,
default_factory=…, compare=…, repr=…)``, ``__post_init__``, fields inherited from a
record base, ``eq=False``, methods the class defines itself (kept); instances are
frozen, compared and hashed over their compared fields.  Anything else (``init=False``,
``ClassVar`` fields, ordering) is refused when the class is defined, not misread.
"""
from __future__ import annotations

import dataclasses
from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import TYPE_CHECKING, Callable, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    # Only the type checker needs it: at run time the marker is a no-op.
    def dataclass_transform(**_kwargs):
        return lambda decorated: decorated

__all__ = ["record", "field"]

_Class = TypeVar("_Class", bound=type)
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]  # what dataclasses.fields() selects


@overload
def record(cls: _Class, /) -> _Class: ...
@overload
def record(*, eq: bool = True) -> Callable[[_Class], _Class]: ...


@dataclass_transform(eq_default=True, frozen_default=True, field_specifiers=(field,))
def record(cls=None, /, *, eq: bool = True):
    """Make ``cls`` a frozen record (``@record`` or ``@record(eq=False)``)."""
    def build(cls):
        specs = _fields(cls)
        names = tuple(specs)
        compared = _getter([n for n, f in specs.items() if f.compare])
        methods = {"__dataclass_fields__": specs, "__match_args__": names,
                   "__init__": _initialiser(cls, specs),
                   "__repr__": _representation([n for n, f in specs.items() if f.repr]),
                   "__setattr__": _frozen, "__delattr__": _frozen}
        if eq:
            methods.update(__eq__=_equality(compared), __hash__=_hashing(compared))
        for name, method in methods.items():
            # as dataclasses does: a method the class defines itself stays (a __hash__ of
            # None is what defining __eq__ leaves, not a choice)
            if name not in cls.__dict__ or (name == "__hash__" and cls.__dict__[name] is None):
                setattr(cls, name, method)
        return cls
    return build if cls is None else build(cls)


def _fields(cls) -> dict:
    """The class's fields in dataclass order: a record base's first, then its own."""
    specs = {name: spec for base in reversed(cls.__mro__[1:])
             for name, spec in getattr(base, "__dataclass_fields__", {}).items()}
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if "ClassVar" in str(annotation) or "InitVar" in str(annotation):
            raise TypeError(f"{cls.__name__}.{name}: a record has no ClassVar or InitVar fields")
        declared = cls.__dict__.get(name, MISSING)
        spec = declared if isinstance(declared, Field) else field(default=declared)
        if not spec.init:
            raise TypeError(f"{cls.__name__}.{name}: a record's fields are all set by __init__")
        spec.name, spec.type = name, annotation
        setattr(spec, "_field_type", _FIELD)  # noqa: B010  (private: typing does not know it)
        if spec.default is not MISSING:
            setattr(cls, name, spec.default)
        elif isinstance(declared, Field):
            delattr(cls, name)
        specs[name] = spec
    return specs


def _getter(names: list) -> Callable:
    """A function giving the tuple of these attributes (a tuple even for one or none)."""
    fixed = tuple(names)
    return lambda obj: tuple(getattr(obj, name) for name in fixed)


def _initialiser(cls, specs: dict):
    names, count, class_name = tuple(specs), len(specs), cls.__name__
    defaults = {n: f.default for n, f in specs.items() if f.default is not MISSING}
    factories = {n: f.default_factory for n, f in specs.items()
                 if f.default_factory is not MISSING}
    post_init = getattr(cls, "__post_init__", None)

    def __init__(self, *args, **kwargs):
        if len(args) > count:
            raise TypeError(f"{class_name}() takes {count} arguments, {len(args)} given")
        values = dict(zip(names, args))
        for key in kwargs:
            if key in values or key not in specs:
                raise TypeError(f"{class_name}() got an unexpected or repeated argument {key!r}")
        values.update(kwargs)
        if len(values) < count:
            for key in names:
                if key in values:
                    continue
                if key in defaults:
                    values[key] = defaults[key]
                elif key in factories:
                    values[key] = factories[key]()
                else:
                    raise TypeError(f"{class_name}() missing argument {key!r}")
        self.__dict__.update(values)
        if post_init is not None:
            self.__post_init__()
    return __init__


def _equality(compared):
    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented
    return __eq__


def _hashing(compared):
    def __hash__(self):
        return hash(compared(self))
    return __hash__


def _representation(names: list):
    def __repr__(self):
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({shown})"
    return __repr__


def _frozen(self, name, *value):
    raise FrozenInstanceError(f"cannot assign to field {name!r}")
