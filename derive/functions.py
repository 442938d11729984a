"""Elementwise functions: definition, differential in terms of its own value, domain.

``differential(u, y, du)`` is written as a person writes it, with ``y = f(u)`` the
function's value, so ``dσ(u) = (σ − σ∘σ)∘du`` reads ``ds = (s − s∘s)∘dv`` once
``y`` is the defined variable ``s``.  Tests check every entry against
``sympy.diff`` of ``definition`` and numerically.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy

from .expr import Add, Apply, Hadamard, HadamardDivide, Ones, neg, scale
from .rule import Rule

u = sympy.Symbol("u")


@dataclass(frozen=True)
class Elementwise:
    name: str
    latex: str                 # LaTeX of the function's name
    rule: Rule                 # the differential as a textbook writes it (and in LaTeX)
    differential: Callable     # (u, y, du) -> Expr, with y = f(u)
    definition: Callable       # u -> f(u) as a SymPy expression, for sympy.diff in the tests
                               # (built on demand: SymPy arithmetic is slow to warm up)
    numpy: Callable            # vectorised implementation
    domain: str = ""           # "" or "positive": arguments must be > 0


def _minus(a, b):
    return Add((a, neg(b)))


def _ones(like):
    return Ones(*like.shape)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.logaddexp(0.0, x)


ELEMENTWISE = {f.name: f for f in (
    Elementwise("exp", r"\exp",
                Rule("d exp(u) = exp(u)∘du", r"d\exp(u) = \exp(u)\circ du"),
                lambda u, y, du: Hadamard(y, du),
                lambda u: sympy.exp(u), np.exp),
    Elementwise("log", r"\log",
                Rule("d log(u) = du⊘u", r"d\log(u) = du\oslash u"),
                lambda u, y, du: HadamardDivide(du, u),
                lambda u: sympy.log(u), np.log, domain="positive"),
    Elementwise("sigma", r"\sigma",
                Rule("dσ(u) = (σ − σ∘σ)∘du", r"d\sigma(u) = (\sigma - \sigma\circ\sigma)\circ du"),
                lambda u, y, du: Hadamard(_minus(y, Hadamard(y, y)), du),
                lambda u: 1 / (1 + sympy.exp(-u)), _sigmoid),
    Elementwise("tanh", r"\tanh",
                Rule("d tanh(u) = (1 − tanh∘tanh)∘du", r"d\tanh(u) = (\mathbf{1} - \tanh\circ\tanh)\circ du"),
                lambda u, y, du: Hadamard(_minus(_ones(u), Hadamard(y, y)), du),
                lambda u: sympy.tanh(u), np.tanh),
    Elementwise("sqrt", r"\sqrt",
                Rule("d√u = du⊘(2√u)", r"d\sqrt{u} = du\oslash(2\sqrt{u})"),
                lambda u, y, du: HadamardDivide(du, scale(2, y)),
                lambda u: sympy.sqrt(u), np.sqrt, domain="positive"),
    Elementwise("softplus", r"\mathrm{softplus}",
                Rule("d softplus(u) = σ(u)∘du", r"d\,\mathrm{softplus}(u) = \sigma(u)\circ du"),
                lambda u, y, du: Hadamard(Apply("sigma", u), du),
                lambda u: sympy.log(1 + sympy.exp(u)), _softplus),
)}

ALIASES = {"σ": "sigma", "sigmoid": "sigma", "sigma": "sigma", "exp": "exp", "log": "log",
           "tanh": "tanh", "sqrt": "sqrt", "softplus": "softplus"}
