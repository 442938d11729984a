"""Elementwise functions, one row each: names, spellings, differential, domain, kink.

``differential(u, y, du)`` is written as a person writes it, with ``y = f(u)`` the
function's value, so ``dσ(u) = (σ − σ∘σ)∘du`` reads ``ds = (s − s∘s)∘dv`` once
``y`` is the defined variable ``s``.  Tests check every entry against
``sympy.diff`` of ``definition`` and numerically.  The parser takes its function
names from ``ALIASES``, the printers their spellings from the rows, the evaluator
the implementation and the domain; nothing else needs to know a function exists.
"""
from __future__ import annotations

import zlib
from typing import Callable

import numpy as np
import sympy

from .record import record
from .expr import (
    Add,
    Apply,
    Hadamard,
    HadamardDivide,
    Mul,
    Ones,
    Zero,
    neg,
    scale,
)
from .rule import Rule

u = sympy.Symbol("u")

KINK_MARGIN = 1e-4
"""How close to a kink (or a domain's edge) an argument may come at the check's point,
relative to the argument's largest entry (at least 1): well beyond the central
difference's reach (1e-6 of the operands' scale), so a check never differences across a
kink; a point that close is redrawn like one outside a domain."""


@record
class Domain:
    """Where a function is defined (and differentiable): ``ok(x)`` is true entrywise there."""

    detail: str                      # "positive entries": what the error says it needs
    ok: Callable                     # ndarray -> bool ndarray
    advice: str = ""                 # the property to declare on an input ("positive")


@record
class Elementwise:
    name: str
    latex: str                 # LaTeX of the function's name
    rule: Rule                 # the differential as a textbook writes it (and in LaTeX)
    differential: Callable     # (u, y, du) -> Expr, with y = f(u)
    definition: Callable       # u -> f(u) as a SymPy expression, for sympy.diff in the tests
                               # (built on demand: SymPy arithmetic is slow to warm up)
    numpy: Callable            # vectorised implementation
    numpy_code: str = ""       # the generated module's spelling, "np.exp({})"; "" = "np.<name>({})"
    aliases: tuple = ()        # other names the input language accepts
    text: str = ""             # plain-text spelling of the call, "|{}|"; "" = "<name>({})"
    latex_call: str = ""       # LaTeX of the call when not "<latex>(…)", r"\sqrt{{{}}}"
    domain: Domain | None = None
    kink: float | None = None  # where a non-smooth function is not differentiable
    kink_note: str = ""        # what the output says about it
    analytic: bool = True      # ``numpy`` is analytic on complex arguments, so the check may
                               # differentiate it by a complex step (f(x + ih)'s imaginary part)

    @property
    def helper(self) -> str:
        """The module-level helper the NumPy code needs (``_sigma``), or ""."""
        code = self.numpy_code or f"np.{self.name}({{}})"
        return self.name if code.startswith("_") else ""

    def numpy_call(self, argument: str) -> str:
        return (self.numpy_code or f"np.{self.name}({{}})").format(argument)


POSITIVE = Domain("positive entries", lambda x: x > 0, "positive")
OPEN_UNIT = Domain("entries in (−1, 1)", lambda x: np.abs(x) < 1 - KINK_MARGIN)
ABOVE_MINUS_ONE = Domain("entries > −1", lambda x: x > -1 + KINK_MARGIN)
NOT_ODD_RIGHT_ANGLE = Domain("entries away from π/2 + kπ", lambda x: np.abs(np.cos(x)) > KINK_MARGIN)


def _minus(a, b):
    return Add((a, neg(b)))


def _ones(like):
    return Ones(*like.shape)


def _times(coefficient, du):
    """``a∘du``; for a scalar argument the ordinary product ``a du``."""
    return Mul((coefficient, du)) if du.is_scalar else Hadamard(coefficient, du)


def _sigmoid(x):
    """Accurate relative to its value everywhere (σ(−40) is 4.2e-18, not 0 or 1.1e-16 as
    0.5(1 + tanh(x/2)) gives): the check's rounding model assumes it.  Analytic on
    complex arguments: 1/(1 + e⁻ˣ) where Re x ≥ 0, eˣ/(1 + eˣ) elsewhere."""
    right = np.real(x) >= 0
    e = np.exp(np.where(right, -x, x))
    return np.where(right, 1.0, e) / (1.0 + e)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _relu(x):
    return np.maximum(x, 0.0)


def _step(x):
    return (x > 0).astype(float)


def _at_zero(name):
    return (f"{name} has a kink at 0 (not differentiable there): the numeric check keeps "
            f"every argument of {name} at least {KINK_MARGIN:g} (relative) away from 0")


def _jump(name):
    return (f"{name} jumps at 0, where it has no derivative; elsewhere its differential is 0, "
            f"and the numeric check keeps its arguments at least {KINK_MARGIN:g} (relative) away from 0")


ELEMENTWISE = {f.name: f for f in (
    Elementwise("exp", r"\exp",
                Rule("d exp(u) = exp(u)∘du", r"d\exp(u) = \exp(u)\circ du"),
                lambda u, y, du: Hadamard(y, du),
                lambda u: sympy.exp(u), np.exp),
    Elementwise("log", r"\log",
                Rule("d log(u) = du⊘u", r"d\log(u) = du\oslash u"),
                lambda u, y, du: HadamardDivide(du, u),
                lambda u: sympy.log(u), np.log, domain=POSITIVE),
    Elementwise("sigma", r"\sigma",
                Rule("dσ(u) = (σ − σ∘σ)∘du", r"d\sigma(u) = (\sigma - \sigma\circ\sigma)\circ du"),
                lambda u, y, du: Hadamard(_minus(y, Hadamard(y, y)), du),
                lambda u: 1 / (1 + sympy.exp(-u)), _sigmoid, "_sigma({})", ("σ", "sigmoid")),
    Elementwise("tanh", r"\tanh",
                Rule("d tanh(u) = (1 − tanh∘tanh)∘du", r"d\tanh(u) = (\mathbf{1} - \tanh\circ\tanh)\circ du"),
                lambda u, y, du: Hadamard(_minus(_ones(u), Hadamard(y, y)), du),
                lambda u: sympy.tanh(u), np.tanh),
    Elementwise("sqrt", r"\sqrt",
                Rule("d√u = du⊘(2√u)", r"d\sqrt{u} = du\oslash(2\sqrt{u})"),
                lambda u, y, du: HadamardDivide(du, scale(2, y)),
                lambda u: sympy.sqrt(u), np.sqrt, domain=POSITIVE, latex_call=r"\sqrt{{{}}}"),
    Elementwise("softplus", r"\mathrm{softplus}",
                Rule("d softplus(u) = σ(u)∘du", r"d\,\mathrm{softplus}(u) = \sigma(u)\circ du"),
                lambda u, y, du: Hadamard(Apply("sigma", u), du),
                lambda u: sympy.log(1 + sympy.exp(u)), _softplus, "_softplus({})", analytic=False),
    Elementwise("sin", r"\sin",
                Rule("d sin(u) = cos(u)∘du", r"d\sin(u) = \cos(u)\circ du"),
                lambda u, y, du: _times(Apply("cos", u), du),
                lambda u: sympy.sin(u), np.sin),
    Elementwise("cos", r"\cos",
                Rule("d cos(u) = −sin(u)∘du", r"d\cos(u) = -\sin(u)\circ du"),
                lambda u, y, du: neg(_times(Apply("sin", u), du)),
                lambda u: sympy.cos(u), np.cos),
    Elementwise("tan", r"\tan",
                Rule("d tan(u) = (1 + tan∘tan)∘du", r"d\tan(u) = (\mathbf{1} + \tan\circ\tan)\circ du"),
                lambda u, y, du: _times(Add((_ones(u), Hadamard(y, y))), du),
                lambda u: sympy.tan(u), np.tan, domain=NOT_ODD_RIGHT_ANGLE),
    Elementwise("arcsin", r"\arcsin",
                Rule("d arcsin(u) = du⊘√(1 − u∘u)", r"d\arcsin(u) = du\oslash\sqrt{\mathbf{1} - u\circ u}"),
                lambda u, y, du: HadamardDivide(du, Apply("sqrt", _minus(_ones(u), Hadamard(u, u)))),
                lambda u: sympy.asin(u), np.arcsin, aliases=("asin",), domain=OPEN_UNIT),
    Elementwise("arccos", r"\arccos",
                Rule("d arccos(u) = −du⊘√(1 − u∘u)", r"d\arccos(u) = -du\oslash\sqrt{\mathbf{1} - u\circ u}"),
                lambda u, y, du: neg(HadamardDivide(du, Apply("sqrt", _minus(_ones(u), Hadamard(u, u))))),
                lambda u: sympy.acos(u), np.arccos, aliases=("acos",), domain=OPEN_UNIT),
    Elementwise("arctan", r"\arctan",
                Rule("d arctan(u) = du⊘(1 + u∘u)", r"d\arctan(u) = du\oslash(\mathbf{1} + u\circ u)"),
                lambda u, y, du: HadamardDivide(du, Add((_ones(u), Hadamard(u, u)))),
                lambda u: sympy.atan(u), np.arctan, aliases=("atan",)),
    Elementwise("sinh", r"\sinh",
                Rule("d sinh(u) = cosh(u)∘du", r"d\sinh(u) = \cosh(u)\circ du"),
                lambda u, y, du: _times(Apply("cosh", u), du),
                lambda u: sympy.sinh(u), np.sinh),
    Elementwise("cosh", r"\cosh",
                Rule("d cosh(u) = sinh(u)∘du", r"d\cosh(u) = \sinh(u)\circ du"),
                lambda u, y, du: _times(Apply("sinh", u), du),
                lambda u: sympy.cosh(u), np.cosh),
    Elementwise("log1p", r"\mathrm{log1p}",
                Rule("d log1p(u) = du⊘(1 + u)", r"d\,\mathrm{log1p}(u) = du\oslash(\mathbf{1} + u)"),
                lambda u, y, du: HadamardDivide(du, Add((_ones(u), u))),
                lambda u: sympy.log(1 + u), np.log1p, domain=ABOVE_MINUS_ONE),
    Elementwise("abs", r"\mathrm{abs}",
                Rule("d|u| = sign(u)∘du", r"d\lvert u\rvert = \mathrm{sign}(u)\circ du"),
                lambda u, y, du: _times(Apply("sign", u), du),
                lambda u: sympy.Abs(u), np.abs, text="|{}|", latex_call=r"\lvert {}\rvert",
                kink=0.0, kink_note=_at_zero("abs"), analytic=False),
    Elementwise("sign", r"\mathrm{sign}",
                Rule("d sign(u) = 0 (u ≠ 0)", r"d\,\mathrm{sign}(u) = 0\ (u\ne 0)"),
                lambda u, y, du: Zero(du.shape),
                lambda u: sympy.sign(u), np.sign, aliases=("sgn",),
                kink=0.0, kink_note=_jump("sign"), analytic=False),
    Elementwise("relu", r"\mathrm{relu}",
                Rule("d relu(u) = step(u)∘du, step(u) = 1 where u > 0, else 0",
                     r"d\,\mathrm{relu}(u) = \mathrm{step}(u)\circ du"),
                lambda u, y, du: _times(Apply("step", u), du),
                lambda u: sympy.Max(0, u), _relu, "np.maximum({}, 0.0)", ("ReLU",),
                kink=0.0, kink_note=_at_zero("relu") + "; step(u) is 1 where u > 0, else 0",
                analytic=False),
    Elementwise("step", r"\mathrm{step}",
                Rule("d step(u) = 0 (u ≠ 0)", r"d\,\mathrm{step}(u) = 0\ (u\ne 0)"),
                lambda u, y, du: Zero(du.shape),
                lambda u: sympy.Heaviside(u), _step, "np.heaviside({}, 0.0)", ("heaviside",),
                kink=0.0, kink_note=_jump("step"), analytic=False),
)}

ALIASES = {alias: f.name for f in ELEMENTWISE.values() for alias in (f.name, *f.aliases)}


# ---------------------------------------------------------------- unspecified functions

CONVENTION = ("f", "g", "h", "φ", "ψ", "phi", "psi")
"""Letters that name an unspecified elementwise function when applied with parentheses."""


def stand_in_parameter(name: str) -> float:
    """A number in [1.1, 2.1) fixed by the name (a thousand values), so f, g and f_1 get
    different stand-ins and confusing one function with another cannot pass the check."""
    return 1.1 + (zlib.crc32(name.encode("utf-8")) % 1000) / 1000


def stand_in(name: str, order: int):
    """The smooth function the check uses for an unspecified ``name`` (order 0), and its
    derivatives: ``u ↦ sin(c·u) + u²/4``, c fixed by the name.  Its derivative
    ``c·cos(c·u) + u/2`` is neither itself nor constant, so a rule confusing f with f′
    cannot pass; it is defined everywhere, so no point is refused."""
    c = stand_in_parameter(name)
    table = (lambda x: np.sin(c * x) + x * x / 4,
             lambda x: c * np.cos(c * x) + x / 2,
             lambda x: -c * c * np.sin(c * x) + 0.5,
             lambda x: -c ** 3 * np.cos(c * x))
    return table[order]


def stand_in_text(name: str) -> str:
    return f"{name} was checked as u ↦ sin({stand_in_parameter(name):g}u) + u²/4"


def notes(exprs) -> list:
    """What the output says about the functions used: each unspecified function and the
    stand-in the check used for it, each kink the check kept its point away from."""
    from .expr import Unspecified, walk
    unspecified: dict[str, None] = {}      # dicts as ordered sets
    kinked: dict[str, None] = {}
    for e in exprs:
        for n in walk(e):
            if isinstance(n, Unspecified):
                unspecified.setdefault(n.name, None)
            elif isinstance(n, Apply) and ELEMENTWISE[n.func].kink is not None:
                kinked.setdefault(n.func, None)
    out = [f"{name} is an unspecified elementwise function ({name}′ its derivative); "
           f"{stand_in_text(name)}" for name in unspecified]
    return out + [ELEMENTWISE[name].kink_note for name in kinked]
