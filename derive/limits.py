"""Resource limits, in one place: how large an input and a derivation may grow, how long
a run may take.

Hostile or careless input must end in a clear error (exit 2), never a hang, a
``MemoryError`` or a ``RecursionError``. Each limit has a default below, an environment
variable (``DERIVE_MAX_SECONDS=120``) and an API argument (``derive(text,
limits=Limits(max_seconds=120))``); the command line has ``--max-seconds``. 0 means no
limit. The time limit is cooperative: the stages call ``tick()`` in their loops, and no
signal handler is installed.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import contextmanager
from contextvars import ContextVar

from .record import record
from .errors import DeriveError

ENVIRONMENT = {   # field -> environment variable
    "max_bytes": "DERIVE_MAX_BYTES", "max_lines": "DERIVE_MAX_LINES",
    "max_nodes": "DERIVE_MAX_NODES", "max_depth": "DERIVE_MAX_DEPTH",
    "max_exponent": "DERIVE_MAX_EXPONENT", "max_entries": "DERIVE_MAX_ENTRIES",
    "max_seconds": "DERIVE_MAX_SECONDS",
}


@record
class Limits:
    """The defaults; 0 turns a limit off."""

    max_bytes: int = 100_000        # chain text, in UTF-8 bytes
    max_lines: int = 5_000          # chain text, in lines
    max_nodes: int = 5_000          # one expression: a right-hand side, a differential, an adjoint
    max_depth: int = 100            # nesting levels of an expression as written; derived
                                    # expressions may nest twice as deep
    max_exponent: int = 100         # of a power X^k
    max_entries: int = 10_000_000   # numbers drawn for the numeric check's random point
    max_seconds: float = 60.0       # parse, derivation and check together

    @classmethod
    def from_environment(cls, environ=None, **overrides) -> Limits:
        """The defaults, then ``DERIVE_MAX_…`` variables, then ``overrides`` (None: unset)."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, variable in ENVIRONMENT.items():
            if environ.get(variable, "").strip():
                values[name] = _number(variable, environ[variable], _kind(name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def raise_it(name: str) -> str:
    """How to lift the limit ``name`` (a field of Limits): the end of every message."""
    option = "--max-seconds or " if name == "max_seconds" else ""
    return f"(raise it with {option}{ENVIRONMENT[name]}; 0: no limit)"


def _kind(name: str):
    return next(f.type for f in dataclasses.fields(Limits) if f.name == name)


def _number(variable: str, text: str, kind: str):
    """The value of an environment variable, as a non-negative int or float."""
    try:
        value = float(text) if kind == "float" else int(text)
    except ValueError:
        value = -1
    if not value >= 0 or not math.isfinite(value):
        raise DeriveError(f"{variable} must be a non-negative number (0: no limit), not {text!r}")
    return value


# ---------------------------------------------------------------- the active budget


@record
class _Budget:
    limits: Limits
    deadline: float          # time.monotonic() value; inf for none
    started: float


_ACTIVE: ContextVar[_Budget | None] = ContextVar("derive_budget", default=None)


def current() -> Limits:
    """The limits of the run in progress, else the defaults with the environment's."""
    budget = _ACTIVE.get()
    return budget.limits if budget is not None else Limits.from_environment()


@contextmanager
def applied(limits: Limits | None = None):
    """Run the enclosed stages under ``limits``; a deadline already running (notes: the
    whole run) stays in force if it comes sooner."""
    limits = limits or current()
    now = time.monotonic()
    deadline = now + limits.max_seconds if limits.max_seconds else math.inf
    outer = _ACTIVE.get()
    if outer is not None:
        deadline, now = min(deadline, outer.deadline), outer.started
    token = _ACTIVE.set(_Budget(limits, deadline, now))
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


def tick(source=None, line: int | None = None) -> None:
    """Stop with an input error once the run is past its time limit (cheap: call in loops)."""
    budget = _ACTIVE.get()
    if budget is None or time.monotonic() <= budget.deadline:
        return
    seconds = f"{budget.deadline - budget.started:g}"
    raise DeriveError(f"stopped after {seconds} s, the time limit {raise_it('max_seconds')}",
                      source if line else None, line, 1 if line else None)


def seconds_left() -> float:
    """Seconds until the run's deadline (inf without one)."""
    budget = _ACTIVE.get()
    return math.inf if budget is None else budget.deadline - time.monotonic()


def read_bounded(stream, name: str) -> bytes:
    """The bytes of ``stream`` (a file, standard input), refused beyond ``max_bytes``
    without reading further: ``/dev/zero`` must not fill the memory."""
    limit = current().max_bytes
    data = stream.read(limit + 1) if limit else stream.read()
    if limit and len(data) > limit:
        raise DeriveError(f"{name} is longer than {limit} bytes, the limit "
                          + raise_it("max_bytes"))
    return data


# ---------------------------------------------------------------- expression size


def bound(expr, what: str, source=None, line: int | None = None, column: int = 1) -> None:
    """Refuse an expression with more nodes, or deeper nesting, than the limits allow.

    Nodes are counted as a tree (a shared subtree once per use) and the walk stops at
    the limit, so even an expression whose printed form is astronomic costs little.
    """
    limits = current()
    max_nodes, max_depth = limits.max_nodes, 2 * limits.max_depth
    count, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if max_nodes and count > max_nodes:
            _refuse(f"{what} grows beyond {max_nodes} nodes, the limit", "max_nodes",
                    source, line, column)
        if max_depth and depth > max_depth:
            _refuse(f"{what} nests deeper than {max_depth} levels, the limit", "max_depth",
                    source, line, column)
        stack.extend((child, depth + 1) for child in node.children)


def _refuse(message: str, name: str, source, line, column) -> None:
    raise DeriveError(f"{message} {raise_it(name)}",
                      source if line else None, line, column if line else None)
