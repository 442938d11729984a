"""What a derivation is made of: the lines it displays, its gradients, its check."""
from __future__ import annotations

from typing import Callable

from .record import field, record
from .chain import Chain
from .expr import Expr, Symbol


@record
class DefinitionLine:
    """``Y = f(…)  ⟹  dZ = ℓ``; Z is Y, or the aliased vector for ``S = Diag(s)``."""

    symbol: Symbol            # Y, the variable this source line defines
    expr: Expr                # f(…), as written
    differential_of: Symbol   # Z, whose differential the line shows
    differential: Expr        # ℓ, linear in differentials of wrt inputs and definitions
    line: int                 # source line
    rules: tuple = ()         # names of the rules used (see rules.py)
    is_alias: bool = False


@record
class SubstitutionLine:
    """One ``= …`` line of the substitution block; its value equals dE exactly."""

    expr: Expr                # linear in differentials
    eliminated: Symbol | None = None   # the variable whose differential was substituted
    rules: tuple = ()


@record
class AdjointStep:
    """Backprop with named adjoints: ``z̄ = G``, then ``z̄ : dz = z̄ : ℓ_z = Σ Gᵢ : dYᵢ``.

    For the objective E itself the adjoint is 1 and the line reads
    ``dE = ℓ_E = Σ Gᵢ : dYᵢ``.  The three sides are equal exactly.
    """

    variable: Symbol          # z
    adjoint: Expr             # G, in terms of the adjoints of later variables
    substituted: Expr         # z̄ : ℓ_z
    moved: Expr               # Σ Gᵢ : dYᵢ, each Gᵢ in terms of z̄
    rules: tuple = ()


@record
class Gradient:
    """``∂E/∂W = G`` read off ``dE = G : dW``; in a notebook it shows itself, and
    ``.numpy(**inputs)`` evaluates ``G`` (derive's own evaluator, no generated code)."""

    wrt: Symbol
    expr: Expr
    expanded: Expr | None = None   # the ``--expand`` form
    chain: Chain | None = field(default=None, compare=False, repr=False)
    # the named adjoints G is written with, as (z, z̄'s value), in the order they are computed
    adjoints: tuple = field(default=(), compare=False, repr=False)

    @property
    def label(self) -> str:
        objective = self.chain.objective.symbol.name if self.chain else "E"
        return f"∂{objective}/∂{self.wrt.name}"

    @property
    def latex(self) -> str:
        from .printer import differential_prefix, latex
        prefix = differential_prefix(self.chain) if self.chain else "d"
        objective = latex(self.chain.objective.symbol) if self.chain else "E"
        return rf"\frac{{\partial {objective}}}{{\partial {latex(self.wrt)}}} = " \
               + latex(self.expr, prefix)

    @property
    def text(self) -> str:
        from .printer import text
        return f"{self.label} = {text(self.expr)}"

    def numpy(self, **inputs):
        """The gradient at ``inputs`` (arrays by input name) as a NumPy array."""
        from .evaluate import evaluate, forward
        from .expr import Adjoint
        if self.chain is None:
            raise ValueError("this gradient was built without its chain")
        values = forward(self.chain, inputs)
        for z, adjoint in self.adjoints:
            values[Adjoint(z).key] = evaluate(adjoint, values)
        return evaluate(self.expr, values)

    def __repr__(self) -> str:
        return f"<Gradient {self.text}>"

    def _repr_latex_(self) -> str:
        return f"$${self.latex}$$"


@record
class HessianLine:
    """One displayed line of a Hessian (hessian.py).

    ``kind`` is ``gradient`` (``∇_W E = G``, the gradient the Hessian differentiates),
    ``differential`` (``d(∇_W E) = ℓ``: the first line, then one per substituted
    differential, ``eliminated`` naming it), ``second`` (``d²E = Σ dW : d(∇_W E)``) or
    ``block`` (``∂²E/∂W∂Y``: on vec in Kronecker form when ``matrix`` is set, else the
    linear map ``dY ↦ ℓ`` that is the block's part of ``d(∇_W E)``).
    """

    kind: str
    of: Symbol                     # W: the gradient the line is about
    expr: Expr                     # G, ℓ, d²E, or the block's part of d(∇_W E)
    by: Symbol | None = None       # Y of a block ∂²E/∂W∂Y
    eliminated: Symbol | None = None
    matrix: Expr | None = None     # the block on column-major vec, numerator layout
    rules: tuple = ()

    @property
    def key(self) -> str:
        """A block's name in JSON and NumPy's ``hessian()``: ``"W"`` for ∂²E/∂W², ``"W,b"``
        for ∂²E/∂W∂b."""
        by = self.by.name if self.by is not None else self.of.name
        return self.of.name if by == self.of.name else f"{self.of.name},{by}"


@record
class Hessian:
    """``hessian W, b``: the second differential of the objective, read as a Hessian."""

    wrt: tuple                     # of Symbol, as asked
    line: int                      # the ``hessian`` statement
    column: int
    lines: tuple                   # of HessianLine, in display order
    symmetric: bool = False        # symmetric by construction (every block mirrors its partner)

    def block(self, of: str, by: str) -> HessianLine:
        """The block ∂²E/∂of∂by."""
        for line in self.lines:
            if line.kind == "block" and line.of.name == of and line.by is not None \
                    and line.by.name == by:
                return line
        raise KeyError(f"no Hessian block {of},{by}")

    @property
    def blocks(self) -> list:
        return [line for line in self.lines if line.kind == "block"]

    @property
    def kronecker(self) -> bool:
        """Whether every block has a matrix form on vec."""
        return all(line.matrix is not None for line in self.blocks)


@record
class JacobianBlock:
    """``∂F/∂X = J`` read off ``vec dF = J vec dX`` (numerator layout, column-major vec;
    a vector needs no vec).  ``kind`` says which question it answers:

    * ``"request"`` — ``jacobian F wrt X``: ``lines`` are ``dF = …`` with the definitions'
      differentials between X and F substituted one by one, the last linear in dX alone;
    * ``"local"`` — ``--jacobians``: one definition's own Jacobian, read off its line;
    * ``"product"`` — ``--jacobians``: the local Jacobians multiplied in the chain's order
      (``factors``, one product per path from X to F), equal to ``vec(∂E/∂X)ᵀ``, whose
      gradient is ``gradient``.
    """

    of: Symbol                # F
    wrt: Symbol               # X (held independent when it is a defined variable)
    matrix: Expr              # J
    lines: tuple = ()         # of SubstitutionLine, each equal to dF
    rules: tuple = ()         # the vec rules (vec.py) that read J
    line: int = 0             # source line of the request (0: none)
    kind: str = "request"
    factors: tuple = ()       # "product": tuple of paths, each a tuple of local Jacobians
    gradient: Expr | None = None   # "product": ∂E/∂X as the derivation reads it

    @property
    def vec_of(self) -> bool:
        """Whether F is a matrix (its Jacobian is of vec F)."""
        return self.of.shape[1] != 1

    @property
    def vec_wrt(self) -> bool:
        return self.wrt.shape[1] != 1

    @property
    def rows(self) -> int:
        """How many displayed lines the block has (each gets a verdict)."""
        return len(self.lines) + 1


def jacobian_rows(derivation) -> list:
    """``(index, block, k)`` of every displayed Jacobian line, ``k`` the position within its
    block (``len(block.lines)`` is its result); ``index`` is the verdicts' ``index``."""
    out: list[tuple] = []
    for block in derivation.jacobians:
        for k in range(block.rows):
            out.append((len(out), block, k))
    return out


@record
class LineVerdict:
    """The numeric verdict on one displayed line.

    ``ok`` is False only for a line shown to be wrong; ``checked`` is False for a line no
    point could confirm (both sides vanish, underflow, or rounding dominates): never a
    pass, said in every output.  ``exact`` marks a line also checked in exact arithmetic.
    """

    block: str                # "definition", "substitution", "step", "gradient", …
    index: int                # position within its block
    line: int                 # source line (0 when the line has none)
    relative_error: float
    ok: bool
    note: str = ""
    checked: bool = True
    exact: bool = False
    tolerance: float | None = None   # the bound this line was held to (from its error estimate)

    @property
    def verified(self) -> bool:
        return self.ok and (self.checked or self.exact)


@record
class CheckResult:
    seed: int
    tolerance: float          # for central differences
    identity_tolerance: float # for substitution lines (exact identities)
    directions: int
    sizes: dict               # symbolic size name -> value used
    verdicts: tuple           # of LineVerdict
    points: int = 1           # random points the verdicts were gathered at
    exact_prime: int = 0      # the prime of the exact check (0: none)

    @property
    def ok(self) -> bool:
        """No line was shown wrong (some may be unchecked: see ``complete``)."""
        return all(v.ok for v in self.verdicts)

    @property
    def complete(self) -> bool:
        """Every line was checked."""
        return all(v.verified for v in self.verdicts)

    @property
    def worst(self) -> float:
        return max((v.relative_error for v in self.verdicts if v.checked), default=0.0)

    @property
    def failures(self) -> list:
        return [v for v in self.verdicts if not v.ok]

    @property
    def unchecked(self) -> list:
        return [v for v in self.verdicts if v.ok and not v.verified]

    @property
    def exact(self) -> list:
        return [v for v in self.verdicts if v.exact]


# The output layer fills this when it is imported (render.py), and ``LOADERS`` holds what
# imports it on first use (derive.api puts it there): a Derivation offers its formats
# without importing what writes them, so imports point down, and ``derive check`` — which
# writes no document — never loads the template engine.
OUTPUTS: dict[str, Callable[..., str]] = {}
LOADERS: list[Callable[[], object]] = []


def _output(name: str) -> Callable[..., str]:
    while name not in OUTPUTS and LOADERS:
        LOADERS.pop()()
    try:
        return OUTPUTS[name]
    except KeyError:
        raise RuntimeError(f"no {name} output: import derive.render (derive.api does)") from None


@record
class ClaimVerdict:
    """derive's answer to "is my gradient right?": a claimed ∂E/∂W compared with ∂E/∂W.

    ``holds`` is None when the claim was not checked (``--no-check``, or no random point
    inside the functions' domains). A wrong claim carries a direction ``U`` along which
    the two differ, with ``C : U``, ``G : U`` and a central difference of E along U, and
    the slip, when one is recognised and verified at fresh points."""

    objective: str
    wrt: str
    claimed: Expr             # C, over the chain's names
    gradient: Expr            # G, derive's (as the output shows it)
    line: int                 # where the claim was written (0: --claim or the API)
    column: int
    holds: bool | None
    points: int = 0           # independent random points compared
    exact: bool = False       # also equal in exact rational arithmetic
    tolerance: float = 0.0
    error: float = 0.0        # worst relative difference ‖C − G‖/max(‖C‖, ‖G‖) over the points
    direction: tuple = ()     # (text, LaTeX) of U, e.g. ("e₂e₃ᵀ", "e_2 e_3^T")
    claimed_value: float | None = None     # C : U at the first point
    gradient_value: float | None = None    # G : U
    difference_value: float | None = None  # (E(W + hU) − E(W − hU))/2h
    slip: str = ""            # the slip's kind: transpose, factor, sign, term, order, …
    diagnosis: str = ""       # the sentence naming it (verified), or ""
    note: str = ""            # e.g. right only along symmetric directions
    point: dict = field(default_factory=dict, compare=False, repr=False)  # inputs where U is shown

    @property
    def label(self) -> str:
        return f"∂{self.objective}/∂{self.wrt}"


@record
class Derivation:
    chain: Chain
    definitions: tuple            # of DefinitionLine, in source order
    substitutions: tuple          # of SubstitutionLine; the first is dE = ℓ_E
    gradients: tuple              # of Gradient, in wrt order
    steps: tuple = ()             # of AdjointStep: the named-adjoint form, used instead of
                                  # substitutions when variables are reused
    check: CheckResult | None = None
    warnings: tuple = ()
    options: dict = field(default_factory=dict)   # expand, seed, ... as asked
    hessians: tuple = ()          # of Hessian: ``hessian W, b`` (hessian.py)
    claims: tuple = ()            # of ClaimVerdict, one per claim read, in the order written
    jacobians: tuple = ()         # of JacobianBlock: requested ones, then --jacobians

    @property
    def objective(self) -> Symbol:
        return self.chain.objective.symbol

    def to_markdown(self, flavor: str = "mse", explain: bool = False) -> str:
        """Markdown: ``mse`` (the ``$$\\eqalign{…}$$`` layout MathJax 2.7 renders), ``katex``
        or ``github``; ``explain`` names the rules used on each line."""
        return _output("markdown")(self, flavor, explain)

    def to_latex(self, explain: bool = False) -> str:
        """A LaTeX snippet for a document that loads amsmath."""
        return _output("latex")(self, explain)

    def to_json(self) -> str:
        return _output("json")(self)

    def to_numpy(self) -> str:
        """A module importing only numpy with ``objective(**inputs)`` and ``gradient(**inputs)``."""
        return _output("numpy")(self)

    def __repr__(self) -> str:
        """One line: the gradients and the verdict (the lines are in ``to_markdown()``)."""
        gradients = "; ".join(g.text for g in self.gradients)
        if self.check is None:
            verdict = "not checked"
        elif self.check.ok and self.check.unchecked:
            verdict = f"{len(self.check.unchecked)} line(s) NOT checked, the others verified"
        elif self.check.ok:
            verdict = f"verified, worst relative error {self.check.worst:.1e}"
        else:
            verdict = f"CHECK FAILED on {len(self.check.failures)} line(s)"
        return f"<Derivation {gradients} ({len(self.definitions)} definitions, {verdict})>"

    def gradient(self, wrt: str) -> Gradient:
        """The gradient with respect to the input named ``wrt``."""
        for g in self.gradients:
            if g.wrt.name == wrt:
                return g
        raise KeyError(f"no gradient with respect to {wrt}: "
                       + ", ".join(g.wrt.name for g in self.gradients))

    def _repr_markdown_(self) -> str:
        """Notebooks (Jupyter's MathJax, VS Code's KaTeX) get the KaTeX-safe flavor."""
        return self.to_markdown("katex")

    def _repr_latex_(self) -> str:
        return _output("jupyter")(self)
