"""Printers: expression trees to LaTeX and to plain Unicode text, by dispatch.

One ``_print_<Node>`` method per node type; notation lives in ``LatexPrinter`` and the
``TextPrinter`` subclass changes only what differs.  Terms print in the order they
arose (``S - S^2``), never re-sorted.
"""
from __future__ import annotations

import re
import unicodedata

import sympy

from . import expr as E
from .functions import ELEMENTWISE

# binding strength, loosest first (the input language's precedence)
ADD, FROBENIUS, PRODUCT, HADAMARD, POSTFIX, ATOM = range(6)

GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
    "rho sigma tau upsilon phi chi psi omega"
).split()
UNICODE_GREEK = dict(zip("αβγδεζηθικλμνξοπρστυφχψω", GREEK))
UNICODE_GREEK["ς"] = "varsigma"
UNICODE_GREEK.update(zip("ΓΔΘΛΞΠΣΥΦΨΩ", "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split()))
# Greek capitals that are Latin letters in print (TeX has no \Alpha): drawn upright
LATIN_LOOKING = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX"))
LATEX_GREEK_CAPITALS = {g.capitalize() for g in GREEK} & set(UNICODE_GREEK.values())
ACCENTS = {"hat", "bar", "tilde", "check", "breve", "dot", "ddot"}   # name suffixes drawn as accents
SUPERSCRIPT = str.maketrans("0123456789-T", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻ᵀ")


class LatexPrinter:
    """Expression → LaTeX, e.g. ``(S-S^2)(s-y)x^T:dW``."""

    differential_prefix = "d"
    circ = r"\circ "
    oslash = r"\oslash "
    colon = ":"
    minus = "-"
    plus = "+"
    thin = r"\,"
    norm_bar = r"\|"
    otimes = r"\otimes "
    block_sum = r"\textstyle\sum_{ij}"
    frobenius_subscript = "_F"
    digit_joint = r"\cdot "        # between a number and what it would run into

    def __init__(self, differential_prefix: str | None = None):
        if differential_prefix is not None:
            self.differential_prefix = differential_prefix

    def doprint(self, expr: E.Expr) -> str:
        return self.print(expr, ADD)

    def print(self, expr: E.Expr, context: int) -> str:
        text = getattr(self, "_print_" + type(expr).__name__)(expr)
        return self.paren(text) if precedence(expr) < context else text

    def paren(self, text: str) -> str:
        return f"({text})"

    # ---- leaves

    def name(self, name: str) -> str:
        head, sub = self.name_parts(name)
        return f"{head}_{{{sub}}}" if sub else head

    def name_parts(self, name: str) -> tuple:
        """(the letter with its accents, the subscript or ""), each valid TeX, KaTeX and
        MathJax for every legal name: ``y_hat`` → ``\\hat{y}``, ``W_1`` and ``W1`` →
        ``W``, ``1``; ``z_z_z`` nests (``z_{z_{z}}``); empty parts (``x___``, ``S_2_``) are
        drawn as underscores (``\\_``)."""
        base, *parts = name.split("_")
        if parts and parts[0] in ACCENTS and base:     # y_hat: \hat{y}, as the LaTeX reader reads it
            letter = self.letter(base)
            while parts and parts[0] in ACCENTS:
                letter = f"\\{parts.pop(0)}{{{letter}}}"
            return (letter + r"\_", "") if parts == [""] else (letter, self.subscript(parts))
        digits = re.fullmatch(r"([A-Za-z]+?)(\d+)", base)
        if not parts and digits:
            base, number = digits.groups()
            return self.letter(base), number
        if parts == [""]:                              # x_: the underscore itself
            return self.letter(base) + r"\_", ""
        return self.letter(base), self.subscript(parts)

    def subscript(self, parts: list) -> str:
        """``a_b_c`` as nested subscripts; with an empty part, the text with its underscores."""
        if not parts:
            return ""
        if "" in parts:
            return r"\mathrm{" + r"\_".join(parts) + "}"
        inner = self.letter(parts[0])
        rest = self.subscript(parts[1:])
        return f"{inner}_{{{rest}}}" if rest else inner

    def letter(self, word: str) -> str:
        if word in LATIN_LOOKING:              # Greek capitals drawn as the Latin letter, upright
            return rf"\mathrm{{{LATIN_LOOKING[word]}}}"
        word = UNICODE_GREEK.get(word, word)
        if word == "omicron":                  # LaTeX has no \omicron: it is the letter o
            return "o"
        if word in GREEK or word in LATEX_GREEK_CAPITALS or word == "varsigma":
            return "\\" + word
        return word if len(word) == 1 else rf"\mathrm{{{word}}}"

    def _print_Symbol(self, e):
        return self.name(e.name)

    def _print_Differential(self, e):
        return self.differential_prefix + self.name(e.of.name)

    def _print_Adjoint(self, e):
        """``\\bar{h}_{2}``: the bar over the letter, the subscript beside it."""
        head, sub = self.name_parts(e.of.name)
        bar = r"\overline" if head.startswith(r"\mathrm") or head.endswith(r"\_") else r"\bar"
        return f"{bar}{{{head}}}" + (f"_{{{sub}}}" if sub else "")

    def _print_Number(self, e):
        value = e.value
        if value.q != 1:
            sign = "-" if value < 0 else ""
            return rf"{sign}\frac{{{abs(value.p)}}}{{{value.q}}}"
        return str(value)

    def _print_Zero(self, e):
        return "0"

    def _print_Identity(self, e):
        return "I"

    def _print_Ones(self, e):
        return r"\mathbf{1}"

    def _print_Commutation(self, e):
        """``K_{mn}``: the sizes say which transpose it performs."""
        return f"K_{{{sympy.latex(e.rows)}{sympy.latex(e.cols)}}}"     # Magnus & Neudecker's K_mn

    # ---- sums and products

    def _print_Add(self, e):
        out = self.print(e.terms[0], ADD)
        for term in e.terms[1:]:
            negated = negation_of(term)
            if negated is not None:
                out += f" {self.minus} " + self.print(negated, ADD + 1)
            else:
                out += f" {self.plus} " + self.print(term, ADD + 1)
        return out

    def _print_Mul(self, e):
        *scalars, last = e.factors
        if isinstance(last, E.Frobenius) and all(isinstance(f, (E.Number, E.Symbol)) and f.is_scalar
                                                for f in scalars):
            return self._print_Frobenius(E.Frobenius(E.Mul((*scalars, last.left)), last.right))
        numerator, denominator = split_fraction(e.factors)
        coefficient, rest = leading_number(numerator)
        if denominator and coefficient.q != 1 and rest:    # ⅓ (dxᵀy)/(xᵀy)^{2/3}, not nested
            return (self._print_Number(E.Number(coefficient)) + self.after_fraction(coefficient)
                    + self.fraction(rest, denominator))
        if denominator:
            return self.fraction(numerator, denominator)
        return self.product(e.factors)

    def product(self, factors) -> str:
        coefficient, rest = leading_number(factors)
        if not rest:
            return self._print_Number(E.Number(coefficient))
        out = {1: "", -1: self.minus}.get(coefficient)
        if out is None:
            out = self._print_Number(E.Number(coefficient)) + self.after_fraction(coefficient)
        previous = None
        for factor in rest:
            context = HADAMARD + 1 if isinstance(factor, (E.Hadamard, E.Kron)) else PRODUCT + 1
            piece = self.print(factor, context)
            if previous is not None:
                out += self.joiner(previous, factor)
            out = glue(out, piece, self.digit_joint)
            previous = factor
        return out

    def after_fraction(self, coefficient) -> str:
        return ""

    def joiner(self, left, right) -> str:
        """``dW\\,x`` and ``(S-S^2)\\,dv`` as the seed writes them; ``Wx`` otherwise."""
        if any(isinstance(f, E.Differential) or self.is_wide(f) for f in (left, right)):
            return self.thin
        return ""

    def is_wide(self, e) -> bool:
        return isinstance(e, E.Symbol) and self.name(e.name).startswith(r"\mathrm")

    def fraction(self, numerator, denominator) -> str:
        return rf"\frac{{{self.part(numerator)}}}{{{self.part(denominator)}}}"

    def part(self, factors) -> str:
        """One side of a fraction bar, which groups by itself."""
        if not factors:
            return "1"
        return self.print(factors[0], ADD) if len(factors) == 1 else self.product(factors)

    def _print_Frobenius(self, e):
        return self.print(e.left, FROBENIUS + 1) + self.colon + self.print(e.right, FROBENIUS + 1)

    def _print_Hadamard(self, e):
        return self.print(e.left, HADAMARD) + self.circ + self.print(e.right, HADAMARD + 1)

    def _print_HadamardDivide(self, e):
        if e.is_scalar:
            return self.fraction((e.left,), (e.right,))
        return self.print(e.left, HADAMARD) + self.oslash + self.print(e.right, HADAMARD + 1)

    # ---- postfix

    def superscript(self, base: E.Expr, sup: str) -> str:
        inner = self.print(base, ATOM)
        return f"{inner}^{{{sup}}}" if len(sup) > 1 else f"{inner}^{sup}"

    def _print_Transpose(self, e):
        if isinstance(e.arg, E.Inverse):
            return self.superscript(e.arg.arg, "-T")
        return self.superscript(e.arg, "T")

    def _print_Inverse(self, e):
        return self.superscript(e.arg, "-1")

    def _print_Power(self, e):
        return self.superscript(e.arg, str(e.exponent))

    def _print_ElementPower(self, e):
        return f"{self.print(e.arg, ATOM)}^{{{self.circ.strip()}{e.exponent}}}"

    # ---- functions

    def call(self, name: str, arg: E.Expr) -> str:
        return f"{name}({self.print(arg, ADD)})"

    def _print_Trace(self, e):
        return self.call(r"\mathrm{tr}", e.arg)

    def _print_Det(self, e):
        return self.call(r"\det", e.arg)

    def _print_LogDet(self, e):
        return self.call(r"\log\det", e.arg)

    def _print_Apply(self, e):
        function = ELEMENTWISE[e.func]
        if function.latex_call:
            return function.latex_call.format(self.print(e.arg, ADD))
        return self.call(function.latex, e.arg)

    def _print_Diag(self, e):
        return self.call(r"\mathrm{Diag}", e.arg)

    prime = "'"

    def _print_Unspecified(self, e):
        """``f_{1}'(x_{1})``: the function's name, a prime per derivative, its argument."""
        return self.call(self.name(e.name) + self.prime * e.order, e.arg)

    def _print_Kron(self, e):
        return f"{self.print(e.left, HADAMARD + 1)}{self.otimes}{self.print(e.right, HADAMARD + 1)}"

    def _print_KronBlockSum(self, e):
        return (rf"{self.block_sum}[{self.print(e.a, ADD)}]_{{ij}}"
                rf"[{self.print(e.g, ADD)}]_{{ij}}")

    def _print_KronBlockFrobenius(self, e):
        return (rf"[[{self.print(e.g, ADD)}]_{{ij}}{self.colon}"
                rf"{self.print(e.b, FROBENIUS + 1)}]_{{ij}}")

    def _print_Vec(self, e):
        return self.call(r"\mathrm{vec}", e.arg)

    def _print_Unvec(self, e):
        return self.call(r"\mathrm{unvec}", e.arg)

    def _print_Softmax(self, e):
        return self.call(r"\mathrm{softmax}", e.arg)

    def _print_SoftmaxRows(self, e):
        return self.call(r"\mathrm{softmax}_{\mathrm{rows}}", e.arg)

    def _print_LogSumExp(self, e):
        return self.call(r"\mathrm{logsumexp}", e.arg)

    def _print_Norm(self, e):
        bar = self.norm_bar
        subscript = "" if e.arg.shape[1] == E.ONE else self.frobenius_subscript
        return f"{bar}{self.print(e.arg, ADD)}{bar}{subscript}"

    def _print_DiagPart(self, e):
        return self.call(r"\mathrm{diag}", e.arg)


class DocumentPrinter(LatexPrinter):
    """LaTeX for derive's own documents (standalone, notes, HTML): the notation goes through
    the macros of ``templates/notation.j2`` (``\\frob``, ``\\tr``, ``\\Diag``), defined once."""

    colon = r"\frob "
    circ = r"\hadamard "

    def _print_Trace(self, e):
        return self.call(r"\tr", e.arg)

    def _print_Diag(self, e):
        return self.call(r"\Diag", e.arg)

    def _print_DiagPart(self, e):
        return self.call(r"\diag", e.arg)


class TextPrinter(LatexPrinter):
    """Expression → Unicode text, e.g. ``(S − S²)(s − y)xᵀ : dW``."""

    norm_bar = "‖"
    otimes = " ⊗ "
    block_sum = "Σᵢⱼ"
    frobenius_subscript = "_F"

    circ = " ∘ "
    oslash = " ⊘ "
    colon = " : "
    minus = "−"
    thin = " "
    digit_joint = " "

    def letter(self, word: str) -> str:
        return word

    def name(self, name: str) -> str:
        return name

    def _print_Number(self, e):
        return str(e.value).replace("-", self.minus)

    def _print_Differential(self, e):
        """``dx``; ``d(x)`` beside a variable named ``dx`` (any prefix but the plain d)."""
        return "d" + e.of.name if self.differential_prefix == "d" else f"d({e.of.name})"

    def _print_Adjoint(self, e):
        return unicodedata.normalize("NFC", e.of.name[0] + "\u0304" + e.of.name[1:])

    def _print_Ones(self, e):
        return "1"

    def _print_Commutation(self, e):
        return f"K_({e.rows},{e.cols})"

    def superscript(self, base, sup):
        inner = self.print(base, ATOM)
        if "/" in sup:                     # (xᵀy)^{1/3}: a fraction has no superscript digits
            return f"{inner}^{{{sup}}}"
        return inner + sup.translate(SUPERSCRIPT)

    def fraction(self, numerator, denominator):
        return f"{self.part(numerator, PRODUCT)}/{self.part(denominator, ATOM)}"

    def part(self, factors, context=ADD):
        """One side of ``a/b``: bracketed unless it binds tightly enough."""
        if not factors:
            return "1"
        if len(factors) == 1:
            return self.print(factors[0], context)
        return self.paren(self.product(factors))

    def _print_Apply(self, e):
        function = ELEMENTWISE[e.func]
        return (function.text or function.name + "({})").format(self.print(e.arg, ADD))

    prime = "′"

    def _print_Unspecified(self, e):
        return f"{e.name}{self.prime * e.order}({self.print(e.arg, ADD)})"

    def call(self, name, arg):
        name = {r"\mathrm{softmax}_{\mathrm{rows}}": "softmax_rows"}.get(name, name)
        name = re.sub(r"^\\mathrm\{(.*)\}$", r"\1", name)
        name = {r"\mathrm{tr}": "tr", r"\det": "det", r"\log\det": "logdet", r"\mathrm{Diag}": "Diag",
                r"\mathrm{diag}": "diag"}.get(name, name.lstrip("\\"))
        return f"{name}({self.print(arg, ADD)})"

    def is_wide(self, e):
        return isinstance(e, E.Symbol)

    def after_fraction(self, coefficient):
        return " " if coefficient.q != 1 else ""


# ---------------------------------------------------------------- helpers


def precedence(e: E.Expr) -> int:
    if isinstance(e, E.Add):
        return ADD
    if isinstance(e, E.Frobenius):
        return FROBENIUS
    if isinstance(e, E.Mul):
        return PRODUCT
    if isinstance(e, E.Number):
        return ATOM if e.value >= 0 and e.value.q == 1 else PRODUCT
    if isinstance(e, E.Kron):
        return HADAMARD
    if isinstance(e, (E.Hadamard, E.HadamardDivide)):
        return ATOM if e.is_scalar and isinstance(e, E.HadamardDivide) else HADAMARD
    if isinstance(e, (E.Transpose, E.Inverse, E.Power, E.ElementPower)):
        return POSTFIX
    return ATOM


def glue(left: str, right: str, digits: str = r"\cdot ") -> str:
    """Concatenate, keeping ``\\lambda w`` from becoming ``\\lambdaw`` and a number from
    running into the one before it or a name (``40·1``, not ``401``; ``x\\cdot 2``, not
    ``x2``): ``digits`` goes between them."""
    if re.search(r"\\[A-Za-z]+$", left) and right[:1].isalpha():
        return left + " " + right
    if right[:1].isdigit() and left[-1:].isalnum():
        return left + digits + right
    return left + right


def leading_number(factors):
    """Split ``(2, A, B)`` into ``(2, [A, B])``; no number gives coefficient 1."""
    coefficient = sympy.Integer(1)
    rest = []
    for f in factors:
        if isinstance(f, E.Number) and not rest:
            coefficient *= f.value
        else:
            rest.append(f)
    return coefficient, rest


def split_fraction(factors):
    """Factors ``b^{-k}`` of a scalar product go below a fraction bar."""
    denominator = [E.Power(f.arg, -f.exponent) if f.exponent != -1 else f.arg
                   for f in factors if isinstance(f, E.Power) and f.exponent < 0]
    if not denominator:
        return list(factors), []
    numerator = [f for f in factors if not (isinstance(f, E.Power) and f.exponent < 0)]
    return numerator, denominator


def negation_of(term: E.Expr):
    """``x`` when ``term`` is ``-x`` (a product with a negative number in front)."""
    if isinstance(term, E.Number) and term.value < 0:
        return E.Number(-term.value)
    if isinstance(term, E.Mul):
        coefficient, rest = leading_number(term.factors)
        if coefficient < 0 and rest:
            if coefficient == -1:
                return rest[0] if len(rest) == 1 else E.Mul(tuple(rest))
            return E.Mul((E.Number(-coefficient), *rest))
    return None


def differential_prefix(chain) -> str:
    """``d``, or ``\\mathrm{d}`` when a name would make ``dx`` ambiguous."""
    names = {i.symbol.name for i in chain.inputs} | {d.symbol.name for d in chain.definitions}
    clash = "d" in names or any("d" + n in names for n in names)
    return r"\mathrm{d}" if clash else "d"


def latex(expr: E.Expr, differential: str = "d") -> str:
    return LatexPrinter(differential).doprint(expr)


def text(expr: E.Expr, differential: str = "d") -> str:
    return TextPrinter(differential).doprint(expr)


def text_printer(chain):
    """``text`` for this chain's lines: ``d(x)`` for a differential where a name makes
    ``dx`` ambiguous (``differential_prefix``; LaTeX writes it upright, ``\\mathrm{d}x``)."""
    prefix = differential_prefix(chain)
    return text if prefix == "d" else lambda expr: text(expr, prefix)
