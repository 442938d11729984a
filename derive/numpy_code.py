"""A Derivation → the source of a self-contained NumPy module computing its gradient.

``gradient()`` evaluates the very trees the derivation displays (``Gradient.expr``),
after a forward pass over the definitions they mention: no numeric differentiation,
no call to ``objective()``. Layout lives in ``templates/numpy.py.j2``.
"""
from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from functools import lru_cache

import sympy

from . import expr as E
from .derivation import Derivation
from .errors import DeriveError
from .functions import ELEMENTWISE
from .templates_path import environment

RESERVED = frozenset({"np", "float", "objective", "gradient", "given", "inputs",
                      "hessian", "hvp", "direction"})   # the module's own names
# builtins a local could shadow; the code uses only ``float``, but any of them may one day appear
BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))
PRIME_SUFFIXES = ("", "_prime", "_prime2")          # f, f′, f″ as keyword arguments
_PLAIN = r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*"          # re caches the patterns
_ESCAPABLE = r"[A-Za-z][A-Za-z0-9_]*"


def _greek_word(letter: str) -> str | None:
    """``Σ`` → ``Sigma``, ``σ`` → ``sigma``, ``ς`` → ``varsigma``; None for anything else."""
    if not ("\u0391" <= letter <= "\u03a9" or "\u03b1" <= letter <= "\u03c9"):
        return None
    name = unicodedata.name(letter, "")
    if name == "GREEK SMALL LETTER FINAL SIGMA":
        return "varsigma"
    match = re.fullmatch(r"GREEK (CAPITAL|SMALL) LETTER ([A-Z]+)", name)
    if match is None:                   # U+03A2, unassigned
        return None
    word = {"lamda": "lambda"}.get(match.group(2).lower(), match.group(2).lower())  # Unicode's spelling
    return word.capitalize() if match.group(1) == "CAPITAL" else word


def python_name(name: str) -> str:
    """A derive name as a Python identifier, injective and apart from the module's own names.

    Four classes that the run of underscores at the end tells apart, so no two names meet:
    plain ASCII names stay as written (``W_1``, ``Sigma``: no run); the rest of the ASCII
    names (keywords, builtins, the module's own names, ``np_``, ``x___``) double each
    underscore and add one (an odd run: ``np`` → ``np_``, ``np_`` → ``np___``); a Greek
    letter is its ASCII word and two (``Σ`` → ``Sigma__``); anything else its code points
    in hex and four.  Plain names ending in ``_prime`` are escaped too: ``f_prime`` is the
    keyword argument of f′ (``callable_name``).
    """
    if re.fullmatch(_PLAIN, name) and not _taken(name):
        return name
    if re.fullmatch(_ESCAPABLE, name):
        return name.replace("_", "__") + "_"
    word = _greek_word(name) if len(name) == 1 else None
    if word is not None:
        return word + "__"
    return "u" + "x".join(f"{ord(c):x}" for c in name) + "____"


def _taken(name: str) -> bool:
    """Whether a plain ASCII name means something else in the module or in Python."""
    return (keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in RESERVED
            or name in BUILTINS or name.endswith(PRIME_SUFFIXES[1:]))


def callable_name(name: str, order: int) -> str:
    """``f``, ``f_prime``, ``f_prime2``: the keyword arguments of an unspecified function.
    No input's identifier ends in ``_prime``/``_prime2`` (``python_name``), so none meets these."""
    return python_name(name) + PRIME_SUFFIXES[order]


def adjoint_name(name: str) -> str:
    """``h̄`` as ``_bar_h``: user identifiers never start with an underscore."""
    return "_bar_" + python_name(name)


def direction_name(name: str) -> str:
    """``dW`` taken along a direction, as ``_d_W`` (hvp and the Hessian's blocks)."""
    return "_d_" + python_name(name)


class NumpyPrinter:
    """One ``_print_<Node>`` method per node type; records the helpers and sizes it used."""

    ATOMIC = (E.Symbol, E.Adjoint, E.Zero, E.Identity, E.Ones, E.Inverse, E.Trace, E.Det, E.LogDet,
              E.Frobenius, E.Apply, E.Diag, E.DiagPart, E.Transpose, E.Add, E.Hadamard,
              E.HadamardDivide, E.Norm, E.Vec, E.Unvec, E.Kron, E.KronBlockSum,
              E.KronBlockFrobenius, E.Softmax, E.SoftmaxRows, E.LogSumExp, E.Unspecified,
              E.Commutation)

    def __init__(self):
        self.helpers = set()
        self.sizes = set()
        self.callables = set()      # f, f_prime: the unspecified functions, passed in by keyword

    def doprint(self, expr: E.Expr) -> str:
        return getattr(self, f"_print_{type(expr).__name__}")(expr)

    def _atom(self, expr: E.Expr) -> str:
        """``expr`` as an operand: parenthesised unless it prints as a name or call."""
        text = self.doprint(expr)
        if isinstance(expr, self.ATOMIC) or (isinstance(expr, E.Number) and expr.value >= 0):
            return text
        if isinstance(expr, E.Power) and not expr.arg.is_scalar:
            return text
        return f"({text})"

    def _size(self, size) -> str:
        size = sympy.sympify(size)
        for symbol in size.free_symbols:
            self.sizes.add(symbol)
        return str(size.subs({s: sympy.Symbol(size_name(s)) for s in size.free_symbols}))

    def _shape(self, shape) -> str:
        return f"({self._size(shape[0])}, {self._size(shape[1])})"

    def _helper(self, name: str, call: str) -> str:
        self.helpers.add(name)
        return call

    # leaves
    def _print_Symbol(self, expr):
        return python_name(expr.name)

    def _print_Adjoint(self, expr):
        return adjoint_name(expr.of.name)

    def _print_Differential(self, expr):
        raise ValueError(f"d{expr.of.name} in an expression meant for NumPy code")

    def _print_Number(self, expr):
        value = expr.value
        return str(int(value)) if value.is_Integer else repr(float(value))

    def _print_Zero(self, expr):
        return f"np.zeros({self._shape(expr.shape)})"

    def _print_Identity(self, expr):
        return f"np.eye({self._size(expr.size)})"

    def _print_Commutation(self, expr):
        return self._helper("commutation", f"_commutation({self._size(expr.rows)}, "
                                           f"{self._size(expr.cols)})")

    def _print_Ones(self, expr):
        return f"np.ones({self._shape(expr.shape)})"

    # operations
    def _print_Add(self, expr):
        parts = [self.doprint(expr.terms[0])]
        for term in expr.terms[1:]:
            positive = _negated(term)
            parts.append(f"+ {self.doprint(term)}" if positive is None
                         else f"- {self.doprint(positive)}")
        return "(" + " ".join(parts) + ")"

    def _print_Mul(self, expr):
        """Scalars (1×1 factors, and 1×1 runs such as ``xᵀy`` in ``xᵀy A``) multiply with
        ``*``; each run of matrices is ``A @ B`` or ``np.linalg.multi_dot`` (best order)."""
        factors, sign = expr.factors, ""
        if isinstance(factors[0], E.Number) and factors[0].value == -1 and len(factors) > 1:
            factors, sign = factors[1:], "-"
        scalars, run = [], []
        for factor in factors:
            if factor.is_scalar:
                scalars.append(self._atom(factor))
                continue
            run.append(factor)
            if E.is_scalar_shape((run[0].shape[0], factor.shape[1])):
                scalars.append(self._chain(run, alone=False))
                run = []
        if run:
            scalars.append(self._chain(run, alone=not scalars and not sign))
        return sign + " * ".join(scalars)

    def _chain(self, matrices, alone: bool) -> str:
        if len(matrices) == 1:
            return self._atom(matrices[0])
        if len(matrices) == 2:
            product = " @ ".join(self._atom(m) for m in matrices)
            return product if alone else f"({product})"
        return "np.linalg.multi_dot([" + ", ".join(self.doprint(m) for m in matrices) + "])"

    def _print_Transpose(self, expr):
        if expr.arg.is_scalar:
            return self.doprint(expr.arg)
        return f"{self._atom(expr.arg)}.T"

    def _print_Inverse(self, expr):
        return f"np.linalg.inv({self.doprint(expr.arg)})"

    def _print_Power(self, expr):
        if not E.is_integer(expr.exponent):
            return f"np.power({self.doprint(expr.arg)}, {expr.exponent})"
        if expr.arg.is_scalar:
            return f"{self._atom(expr.arg)} ** {expr.exponent}"
        return f"np.linalg.matrix_power({self.doprint(expr.arg)}, {expr.exponent})"

    def _print_ElementPower(self, expr):
        if not E.is_integer(expr.exponent):
            return f"np.power({self.doprint(expr.arg)}, {expr.exponent})"
        return f"{self._atom(expr.arg)} ** {expr.exponent}"

    def _print_Hadamard(self, expr):
        return f"({self._atom(expr.left)} * {self._atom(expr.right)})"

    def _print_HadamardDivide(self, expr):
        return f"({self._atom(expr.left)} / {self._atom(expr.right)})"

    def _print_Frobenius(self, expr):
        return self._helper("frobenius", f"_frobenius({self.doprint(expr.left)}, "
                                         f"{self.doprint(expr.right)})")

    def _print_Trace(self, expr):
        return self._helper("trace", f"_trace({self.doprint(expr.arg)})")

    def _print_Det(self, expr):
        return self._helper("det", f"_det({self.doprint(expr.arg)})")

    def _print_LogDet(self, expr):
        return self._helper("logdet", f"_logdet({self.doprint(expr.arg)})")

    def _print_Apply(self, expr):
        function = ELEMENTWISE[expr.func]
        if function.helper:
            self.helpers.add(function.helper)
        return function.numpy_call(self.doprint(expr.arg))

    def _print_Unspecified(self, expr):
        name = callable_name(expr.name, expr.order)
        self.callables.add((expr.name, expr.order))
        return f"{name}({self.doprint(expr.arg)})"

    def _print_Diag(self, expr):
        return self._helper("diag", f"_diag({self.doprint(expr.arg)})")

    def _print_DiagPart(self, expr):
        return self._helper("diag_part", f"_diag_part({self.doprint(expr.arg)})")

    def _print_Norm(self, expr):
        return self._helper("norm", f"_norm({self.doprint(expr.arg)})")

    def _print_Vec(self, expr):
        return f"np.reshape({self.doprint(expr.arg)}, (-1, 1), order='F')"

    def _print_Unvec(self, expr):
        return f"np.reshape({self.doprint(expr.arg)}, {self._shape(expr.shape)}, order='F')"

    def _print_Kron(self, expr):
        return f"np.kron({self.doprint(expr.left)}, {self.doprint(expr.right)})"

    def _print_KronBlockSum(self, expr):
        return self._helper("kron_blocks", f"_kron_block_sum({self.doprint(expr.g)}, "
                                           f"{self.doprint(expr.a)})")

    def _print_KronBlockFrobenius(self, expr):
        return self._helper("kron_blocks", f"_kron_block_frobenius({self.doprint(expr.g)}, "
                                           f"{self.doprint(expr.b)})")

    def _print_Softmax(self, expr):
        return self._helper("softmax", f"_softmax({self.doprint(expr.arg)}, 0)")

    def _print_SoftmaxRows(self, expr):
        return self._helper("softmax", f"_softmax({self.doprint(expr.arg)}, 1)")

    def _print_LogSumExp(self, expr):
        return self._helper("logsumexp", f"_logsumexp({self.doprint(expr.arg)})")


class DirectionPrinter(NumpyPrinter):
    """The printer for second differentials: ``dW`` is the direction it is taken along."""

    def _print_Differential(self, expr):
        return direction_name(expr.of.name)


def _negated(term: E.Expr):
    """``c·X`` for a term ``−c·X`` (so a sum prints ``a - c * X``), else None."""
    if not (isinstance(term, E.Mul) and isinstance(term.factors[0], E.Number)
            and term.factors[0].value < 0):
        return None
    coefficient = -term.factors[0].value
    rest = term.factors[1:]
    if coefficient != 1:
        rest = (E.Number(coefficient),) + rest
    return rest[0] if len(rest) == 1 else E.Mul(rest)


def size_name(symbol) -> str:
    return f"_size_{symbol.name}"


def _needed(chain, exprs) -> list:
    """The definitions ``exprs`` depend on, in chain order (a backward reachability pass)."""
    wanted = {n.name for e in exprs for n in E.walk(e) if isinstance(n, E.Symbol)}
    needed = []
    for definition in reversed(chain.definitions):
        if definition.symbol.name in wanted:
            needed.append(definition)
            wanted |= {n.name for n in E.walk(definition.expr) if isinstance(n, E.Symbol)}
    return needed[::-1]


def _size_sources(chain, symbols) -> dict:
    """``_size_n = x.shape[0]``: each symbolic size read off the first input that has it."""
    sources = {}
    for symbol in sorted(symbols, key=lambda s: s.name):
        for item in chain.inputs:
            axes = [i for i, size in enumerate(item.symbol.shape) if size == symbol]
            if axes:
                sources[size_name(symbol)] = f"{python_name(item.symbol.name)}.shape[{axes[0]}]"
                break
        else:
            raise ValueError(f"the size {symbol} is not the size of any input")
    return sources


_environment = lru_cache(maxsize=1)(environment)


def to_numpy(derivation: Derivation) -> str:
    """Python source of a module with ``objective(**inputs)`` and ``gradient(**inputs)``."""
    source = _environment().get_template("numpy.py.j2").render(_plan(derivation))
    compile(source, "<derive numpy>", "exec")   # a printer bug fails here, not in the user's hands
    return source


def parameters(derivation: Derivation) -> dict:
    """The keyword arguments of each function the module defines (``objective()`` and
    ``gradient()`` when there is a gradient, ``jacobian()``, ``hessian()``, ``hvp()`` when
    asked for), and each input's identifier inside the module (``--to json`` lists them):
    a function the module lacks is never listed."""
    plan = _plan(derivation)
    names = [name for name, _ in plan["inputs"]]
    found: dict = {}
    if plan["gradients"]:
        found["objective"] = plan["objective_callables"] + names
        found["gradient"] = plan["gradient_callables"] + names
    if plan["jacobians"]:
        found["jacobian"] = plan["jacobian_callables"] + names
    if plan["hessian"]:
        found["hessian"] = plan["hessian"]["callables"] + names
        found["hvp"] = ["direction"] + plan["hessian"]["callables"] + names
    return {**found, "keyword_arguments": plan["keyword_arguments"],
            "identifiers": dict(plan["inputs"])}


def _plan(derivation: Derivation) -> dict:
    """What ``numpy.py.j2`` reads: every line printed, every identifier chosen."""
    chain = derivation.chain
    printer = objective_printer = NumpyPrinter()

    def assignments(definitions):
        return [(python_name(d.symbol.name), printer.doprint(d.expr)) for d in definitions]

    objective_lines = assignments(chain.definitions)
    printer = NumpyPrinter()          # the gradient's own: it may need f_prime, objective not
    adjoints = [(adjoint_name(step.variable.name), step.adjoint) for step in derivation.steps[1:]]
    gradient_lines = assignments(_needed(chain, [g.expr for g in derivation.gradients]
                                         + [expr for _, expr in adjoints]))
    gradient_lines += [(name, printer.doprint(expr)) for name, expr in adjoints]
    gradients = [(g.wrt.name, python_name(g.wrt.name), printer.doprint(g.expr), g.wrt.is_scalar)
                 for g in derivation.gradients]
    jacobian_printer = NumpyPrinter()
    jacobian_lines, jacobians = _jacobian_code(derivation, jacobian_printer)
    names = [item.symbol.name for item in chain.inputs]
    hessian = _hessian_code(derivation)
    hessian_printer = hessian.pop("printer") if hessian else NumpyPrinter()
    keyword_arguments = all(python_name(n) == n for n in names)
    gradient_callables = _callables(printer, objective_printer)
    if not keyword_arguments:
        _refuse_shadowed_inputs(chain, gradient_callables)
    return dict(
        title=_docstring_safe(chain.title or ""),
        chain_text=_chain_text(chain),
        wrt=", ".join(w.name for w in chain.wrt),
        check=derivation.check,
        inputs=[(name, python_name(name)) for name in names],
        keyword_arguments=keyword_arguments,
        sizes=_size_sources(chain, printer.sizes | objective_printer.sizes | hessian_printer.sizes
                            | jacobian_printer.sizes),
        objective_callables=_callables(objective_printer),
        gradient_callables=gradient_callables,
        objective_lines=objective_lines,
        objective=python_name(chain.objective.symbol.name),
        gradient_lines=gradient_lines,
        gradients=gradients,
        helpers=printer.helpers | objective_printer.helpers | hessian_printer.helpers
        | jacobian_printer.helpers,
        hessian=hessian,
        jacobian_lines=jacobian_lines,
        jacobians=jacobians,
        jacobian_callables=_callables(jacobian_printer, objective_printer),
    )


def _refuse_shadowed_inputs(chain, callables: list) -> None:
    """With ``**inputs``, an input named like a function's keyword argument (``f_prime``
    beside ``f``) could never reach the module: refused, at its declaration."""
    for item in chain.inputs:
        if item.symbol.name in callables:
            raise DeriveError(f"the input {item.symbol.name} has the name of a keyword argument "
                              "of the NumPy module (an unspecified function or its derivative): "
                              "rename it", chain.source, item.line if chain.source else None,
                              item.column)


def _hessian_code(derivation: Derivation) -> dict | None:
    """What ``hessian()`` and ``hvp()`` compute: the forward lines they need, each block on
    column-major vec (its Kronecker form, else its linear map applied to each unit direction:
    ``_matrix_of``), and the second differential along a direction."""
    if not derivation.hessians:
        return None
    h = derivation.hessians[0]
    printer = DirectionPrinter()
    final = {}
    for line in h.lines:
        if line.kind == "differential":
            final[line.of.name] = line.expr
    blocks = []
    for block in h.blocks:
        key = block.key
        if block.matrix is not None:
            code = printer.doprint(block.matrix)
        else:
            local = python_name(block.by.name)
            printer.helpers.add("matrix_of")
            code = (f"_matrix_of(lambda {direction_name(block.by.name)}: "
                    f"{printer.doprint(block.expr)}, {local}.shape)")
        blocks.append((key, code))
    products = [(w.name, python_name(w.name), direction_name(w.name), printer.doprint(final[w.name]))
                for w in h.wrt]
    exprs = list(final.values()) + [b.matrix for b in h.blocks if b.matrix is not None]
    lines = [(python_name(d.symbol.name), printer.doprint(d.expr))
             for d in _needed(derivation.chain, exprs)]
    return {"printer": printer, "lines": lines, "blocks": blocks, "products": products,
            "wrt": ", ".join(w.name for w in h.wrt), "single": len(h.wrt) == 1,
            "block_names": ", ".join(f'"{key}"' for key, _ in blocks),
            "kronecker": h.kronecker, "callables": _callables(printer)}


def _jacobian_code(derivation: Derivation, printer: NumpyPrinter) -> tuple:
    """The forward lines and ``("F/X", code)`` of each Jacobian (requested, then local),
    each reshaped to (len vec F, len vec X); the first of two with one key is kept."""
    blocks: dict = {}
    for block in derivation.jacobians:
        if block.kind != "product":
            blocks.setdefault(f"{block.of.name}/{block.wrt.name}", block.matrix)
    if not blocks:
        return [], []
    lines = [(python_name(d.symbol.name), printer.doprint(d.expr))
             for d in _needed(derivation.chain, list(blocks.values()))]
    return lines, [(key, f"np.reshape(np.asarray({printer.doprint(j)}, dtype=float), "
                         f"{printer._shape(j.shape)})") for key, j in blocks.items()]


def _callables(*printers: NumpyPrinter) -> list:
    """``f_1, f_1_prime``: the keyword callables the printed code needs, by name then order
    (gradient() takes objective()'s too, so one dictionary of functions serves both)."""
    needed = set().union(*(p.callables for p in printers))
    return [callable_name(name, order) for name, order in sorted(needed)]


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _chain_text(chain) -> list:
    """The chain as the user wrote it, or rebuilt from the definitions when there is no source."""
    if chain.source is not None:
        return chain.source.text.strip("\n").splitlines()
    lines = [f"{item.symbol.name} : {_declared_size(item.symbol.shape)}" for item in chain.inputs]
    lines += [f"{d.symbol.name} = {NumpyPrinter().doprint(d.expr)}" for d in chain.definitions]
    return lines + ["wrt " + ", ".join(w.name for w in chain.wrt)]


def _declared_size(shape) -> str:
    rows, cols = shape
    if E.is_scalar_shape(shape):
        return "scalar"
    return str(rows) if cols == E.ONE else f"{rows} x {cols}"
