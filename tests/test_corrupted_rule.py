"""A wrong table rule is caught by the numeric check, on the line it affects.

The corruption happens in the tables themselves (as a careless edit would), so the
check cannot know about it; `derive check` must exit 3 and name the line, and the
NumPy module, which prints the very gradient the derivation shows, must change.
Every row of every rule table is corrupted in turn (rules.DIFFERENTIALS, the rules of
functions.ELEMENTWISE, the nodes of operations.CALLS, frobenius.MOVES and the
diagonal rewrites), each on a chain that uses it: all of them are caught.
"""
import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import sympy

from derive import expr as E
from derive import diagonal, frobenius, functions, operations, rules
from derive.api import derive, derive_file
from derive.cli import main
from derive.numpy_code import to_numpy
from external import need

SEED = str(Path(__file__).resolve().parent.parent / "examples" / "backprop.chain")


def examples_text(name):
    return (Path(__file__).resolve().parent.parent / "examples" / f"{name}.chain").read_text()


def wrong_sigmoid(u, y, du):
    """σ′ = s + s∘s: a sign slip in the table."""
    return E.Hadamard(E.Add((y, E.Hadamard(y, y))), du)


def numpy_gradient(derivation, point):
    namespace = {}
    exec(compile(to_numpy(derivation), "<derive numpy>", "exec"), namespace)  # our own generated code
    return namespace["gradient"](**point)["W"]


def test_correct_tables_pass():
    result = CliRunner().invoke(main, ["check", SEED])
    assert result.exit_code == 0, result.output


def test_corrupted_differential_rule_fails_on_its_line(monkeypatch):
    rng = np.random.default_rng(3)
    point = {"W": rng.normal(size=(5, 4)), "x": rng.normal(size=(4, 1)), "y": rng.normal(size=(5, 1))}
    good = numpy_gradient(derive_file(SEED), point)

    sigma = functions.ELEMENTWISE["sigma"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma", dataclasses.replace(sigma, differential=wrong_sigmoid))
    result = CliRunner().invoke(main, ["check", SEED])
    assert result.exit_code == 3
    assert f"{SEED}:6:" in result.output          # s = sigma(v) is line 6
    assert "Traceback" not in result.output

    bad = numpy_gradient(derive_file(SEED, check=False), point)
    assert not np.allclose(good, bad)


def test_corrupted_frobenius_rule_fails_on_a_substitution(monkeypatch):
    """A:(B∘C) = (A∘B∘B):C — shapes still fit, values do not."""
    def squared_coefficient(g, e):
        return [(E.Hadamard(g, E.Hadamard(e.left, e.left)), e.right, ("broken",))]

    monkeypatch.setitem(frobenius.MOVES, E.Hadamard, squared_coefficient)
    two_layer = SEED.replace("backprop", "two_layer")
    result = CliRunner().invoke(main, ["render", two_layer])
    assert result.exit_code == 3
    assert "numeric check failed" in result.output
    assert result.stdout == ""          # nothing presented as verified


@pytest.mark.parametrize("suffix", [".md", ".tex", ".json", ".py", ".html", ".pdf"])
def test_a_failed_check_writes_nothing_in_any_format(suffix, monkeypatch, tmp_path):
    if suffix == ".pdf":
        need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    sigma = functions.ELEMENTWISE["sigma"]
    monkeypatch.setitem(functions.ELEMENTWISE, "sigma", dataclasses.replace(sigma, differential=wrong_sigmoid))
    out = tmp_path / f"backprop{suffix}"
    result = CliRunner().invoke(main, ["render", SEED, "-o", str(out)])
    assert result.exit_code == 3
    assert f"{SEED}:6: numeric check failed" in result.stderr and "✗" in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []
    if suffix != ".pdf":
        to = {".md": "markdown", ".tex": "latex", ".json": "json", ".py": "numpy",
              ".html": "html"}[suffix]
        piped = CliRunner().invoke(main, ["render", SEED, "-t", to])
        assert piped.exit_code == 3 and piped.stdout == ""


NOT_CHECKED = {                       # what each format says under --no-check
    ("-t", "markdown", "--flavor", "mse"): "was **not** checked numerically",
    ("-t", "markdown", "--flavor", "katex"): "was **not** checked numerically",
    ("-t", "markdown", "--flavor", "github"): "was **not** checked numerically",
    ("-t", "latex"): r"was \emph{not} checked numerically",
    ("-t", "latex", "--standalone"): r"was \emph{not} checked numerically",
    ("-t", "html"): "was <em>not</em> checked numerically",
    ("-t", "json"): '"status": "not checked"',
    ("-t", "numpy"): "which were not checked numerically\n(--no-check)",
}


@pytest.mark.parametrize("options", NOT_CHECKED, ids=" ".join)
def test_no_check_says_not_checked_in_every_format(options):
    result = CliRunner().invoke(main, ["render", SEED, "--no-check", *options])
    assert result.exit_code == 0, result.output
    assert NOT_CHECKED[options] in result.stdout
    for claim in ("Every displayed equality was checked", "checked numerically: worst",
                  '"status": "verified"'):
        assert claim not in result.stdout


def test_no_check_pdf_says_not_checked(tmp_path):
    need("pdflatex", "texlive-latex-base texlive-latex-recommended latexmk")
    need("pdftotext", "poppler-utils")
    out = tmp_path / "backprop.pdf"
    assert CliRunner().invoke(main, ["render", SEED, "--no-check", "-o", str(out)]).exit_code == 0
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert "not checked numerically" in " ".join(text.split())


# ---------------------------------------------------------------- every row of every table


CHAINS = {   # a chain that exercises each node kind (its definitions contain one)
    "Add": "x : n\ny : n\nE = (x + y):(x + y)\nwrt x",
    "Mul": "A : m x n\nx : n\nb : m\nE = b'A x\nwrt A",
    "Transpose": "A : n x n\nx : n\nE = x'A'A x\nwrt A",
    "Inverse": "X : n x n\na : n\nb : n\nE = a' inv(X) b\nwrt X",
    "Power": "X : n x n\nx : n\nE = tr(X^3) + (x'x)^3\nwrt X, x",
    "Hadamard": "x : n\ny : n\nE = 1'(x .* y .* x)\nwrt x",
    "HadamardDivide": "x : n positive\ny : n\nE = 1'(y ./ x)\nwrt x",
    "Frobenius": "X : m x n\nY : m x n\nE = (X:Y)(X:X)\nwrt X",
    "Trace": "X : n x n\nA : n x n\nE = tr(A X)\nwrt X",
    "Det": "X : n x n\nE = det(X)\nwrt X",
    "LogDet": "X : n x n spd\nE = logdet(X)\nwrt X",
    "Apply": "x : n\nE = 1'exp(x)\nwrt x",
    "Unspecified": "x : n\nE = 1'f(x)\nwrt x",
    "Diag": "x : n\nA : n x n\nE = tr(A Diag(x) A)\nwrt x",
    "DiagPart": "X : n x n\nE = diag(X):diag(X X)\nwrt X",
    "Norm": "x : n\nE = norm(x)\nwrt x",
    "ElementPower": "x : n positive\nE = 1'(x.^3 + x.^{1/2})\nwrt x",
    "Kron": "A : 3x4\nB : 2x5\nC : 6x20\nE = C:kron(A, B)\nwrt A, B",
    "Vec": "X : 3x2\na : 6\nE = (a'vec(X))(a'vec(X))\nwrt X",
    "Softmax": "z : n\ny : n\nE = y'log(softmax(z))\nwrt z",
    "SoftmaxRows": "M : m x n\nY : m x n\nE = Y:softmax_rows(M)\nwrt M",
    "LogSumExp": "z : n\nE = logsumexp(z)\nwrt z",
    "Number": "x : scalar\nE = 3 x^2\nwrt x",
    "Identity": "X : n x n\nE = tr((I + X)(I + X))\nwrt X",
    "Ones": "x : n\nE = (1'x)(1'x)\nwrt x",
}
CONSTANT = {"Number", "Identity", "Ones"}     # leaves whose differential is 0
BUILT = {"Zero", "Commutation"}     # leaves only derive builds (never in a chain's text)


def doubled(result):
    return E.Mul((E.Number(2), result))


def corrupt_differential(monkeypatch, kind, name):
    """The row of ``kind`` made wrong: twice its differential, or for a constant leaf a
    differential that is not 0 (that of a variable of its shape)."""
    text, rule = rules.DIFFERENTIALS[kind]
    if name in CONSTANT:
        def wrong(e, d, ans):
            return d(E.Symbol(CONSTANT_SYMBOL[name], e.shape))
    else:
        def wrong(e, d, ans):
            return doubled(rule(e, d, ans))
    monkeypatch.setitem(rules.DIFFERENTIALS, kind, (text, wrong))


CONSTANT_SYMBOL = {"Number": "x", "Identity": "X", "Ones": "x"}   # a wrt input of its shape


def caught(text) -> bool:
    return not derive(text).check.ok


KRON_HESSIAN = ("A : 3x4\nB : 2x5\nC : 6x20\nE = 1/2 (C:kron(A, B))(C:kron(A, B))\nwrt A, B\n"
                "hessian A, B\n")
VEC_HESSIAN = "X : 3x2\nM : 6x6\nE = vec(X)' M vec(X)\nwrt X\nhessian X\n"
HESSIAN_CHAINS = {   # nodes derive builds in gradients: a Hessian differentiates them
    "Unvec": VEC_HESSIAN, "KronBlockSum": KRON_HESSIAN, "KronBlockFrobenius": KRON_HESSIAN,
}
CHAINS.update(HESSIAN_CHAINS)


def _kinds_used(text) -> set:
    """Node kinds in the chain's definitions and in its Hessians' lines."""
    derivation = derive(text, check=False)
    exprs = [d.expr for d in derivation.chain.definitions]
    exprs += [line.expr for h in derivation.hessians for line in h.lines]
    return {type(n).__name__ for e in exprs for n in E.walk(e)}


def test_every_differential_row_has_a_chain():
    kinds = {k.__name__ for k in rules.DIFFERENTIALS}
    assert kinds - set(CHAINS) == BUILT
    for name, text in CHAINS.items():
        found = _kinds_used(text)
        assert name in found, (name, found)
        assert derive(text).check.ok and derive(text).check.complete, name


@pytest.mark.parametrize("kind", [k for k in rules.DIFFERENTIALS if k.__name__ not in BUILT],
                         ids=lambda k: k.__name__)
def test_a_corrupted_differential_rule_is_caught(monkeypatch, kind):
    """Every row of rules.DIFFERENTIALS (the leaves derive builds itself: below)."""
    name = kind.__name__
    corrupt_differential(monkeypatch, kind, name)
    assert caught(CHAINS[name]), name


def test_corrupted_built_leaves_are_caught(monkeypatch):
    """0 and K occur only where derive builds them; a chain built by hand holds them."""
    from derive.chain import Chain, Definition, Input
    from derive.sweep import build
    from derive.check import check
    n = sympy.Symbol("n")
    x, Eo = E.Symbol("x", (n, sympy.Integer(1))), E.Symbol("E")
    zero_chain = Chain(inputs=(Input(x, True, 1),),
                       definitions=(Definition(Eo, E.Add((E.Frobenius(x, x),
                                                          E.Frobenius(E.Zero(x.shape), x))), 2),),
                       wrt=(x,), wrt_line=3)
    V = E.Symbol("V", (sympy.Integer(6), sympy.Integer(1)))
    K = E.Commutation(sympy.Integer(2), sympy.Integer(3))
    k_chain = Chain(inputs=(Input(V, True, 1),),
                    definitions=(Definition(Eo, E.Frobenius(V, E.Mul((K, V))), 2),),
                    wrt=(V,), wrt_line=3)
    for chain in (zero_chain, k_chain):
        assert check(build(chain)).ok
    for kind, chain in ((E.Zero, zero_chain), (E.Commutation, k_chain)):
        with monkeypatch.context() as patch:
            text, _ = rules.DIFFERENTIALS[kind]
            if kind is E.Zero:
                wrong = (lambda e, d, ans: d(x))
            else:
                wrong = (lambda e, d, ans: E.Mul((d(V), E.Transpose(V))))
            patch.setitem(rules.DIFFERENTIALS, kind, (text, wrong))
            assert not check(build(chain)).ok, kind


ELEMENTWISE_CHAIN = "x : n{props}\ny : n\nh = {name}(x)\nE = 1/2 (h - y):(h - y)\nwrt x"
DOMAIN_PROPS = {"log": " positive", "sqrt": " positive"}


@pytest.mark.parametrize("name", list(functions.ELEMENTWISE))
def test_a_corrupted_elementwise_rule_is_caught(monkeypatch, name):
    """Every row of functions.ELEMENTWISE: its differential plus du (a sign slip, a lost
    term; for sign and step, whose derivative is 0, a derivative that is not)."""
    text = ELEMENTWISE_CHAIN.format(name=name, props=DOMAIN_PROPS.get(name, ""))
    if name in ("arcsin", "arccos"):
        text = text.replace(f"{name}(x)", f"{name}(x/10)")
    assert derive(text).check.ok, name
    row = functions.ELEMENTWISE[name]
    monkeypatch.setitem(functions.ELEMENTWISE, name, dataclasses.replace(
        row, differential=lambda u, y, du, rule=row.differential: E.Add((rule(u, y, du), du))))
    assert caught(text), name


CALL_CHAINS = {   # a chain using each row of operations.CALLS
    "tr": CHAINS["Trace"], "det": CHAINS["Det"], "logdet": CHAINS["LogDet"],
    "Diag": CHAINS["Diag"], "diag": CHAINS["DiagPart"], "inv": CHAINS["Inverse"],
    "norm": CHAINS["Norm"], "vec": CHAINS["Vec"], "kron": CHAINS["Kron"],
    "softmax": CHAINS["Softmax"], "softmax_rows": CHAINS["SoftmaxRows"],
    "logsumexp": CHAINS["LogSumExp"], "sum": "x : n\nX : n x n\nE = sum(x .* x) + sum(X .* X)\nwrt x, X",
}


CALL_NODES = {"tr": E.Trace, "det": E.Det, "logdet": E.LogDet, "Diag": E.Diag,
              "diag": E.DiagPart, "inv": E.Inverse, "norm": E.Norm, "vec": E.Vec,
              "kron": E.Kron, "softmax": E.Softmax, "softmax_rows": E.SoftmaxRows,
              "logsumexp": E.LogSumExp, "sum": E.Frobenius}    # sum(X) is 1:X


@pytest.mark.parametrize("name", list(operations.CALLS))
def test_a_corrupted_rule_of_each_call_is_caught(monkeypatch, name):
    """Every row of operations.CALLS: the rule of the node it builds, corrupted, is caught
    on a chain that calls it."""
    assert set(CALL_NODES) == set(operations.CALLS) == set(CALL_CHAINS)
    text, made = CALL_CHAINS[name], CALL_NODES[name]
    built = {type(n) for d in derive(text, check=False).chain.definitions for n in E.walk(d.expr)}
    assert made in built, (name, made)
    corrupt_differential(monkeypatch, made, made.__name__)
    assert caught(text), name


MOVE_CHAINS = {   # a chain whose sweep uses each Frobenius move
    "Add": "A : n x n\nB : n x n\nx : n\nE = x'(A + B)x\nwrt A, B",
    "Mul": CHAINS["Mul"], "Transpose": CHAINS["Transpose"], "Hadamard": CHAINS["Hadamard"], "HadamardDivide": CHAINS["HadamardDivide"],
    "Frobenius": CHAINS["Frobenius"], "Trace": CHAINS["Trace"], "Diag": CHAINS["Diag"],
    "DiagPart": CHAINS["DiagPart"], "Vec": CHAINS["Vec"], "Kron": CHAINS["Kron"],
}


def _built_chain(kind):
    """A chain held by hand whose objective contains ``kind`` around a wrt input, so the
    sweep moves it (derive itself builds these nodes only in gradients)."""
    from derive.chain import Chain, Definition, Input
    I2, I3, I4, I6 = (sympy.Integer(k) for k in (2, 3, 4, 6))
    Eo = E.Symbol("E")
    if kind is E.Unvec:
        x, a = E.Symbol("x", (I6, sympy.Integer(1))), E.Symbol("a", (I3, I2))
        inputs, objective, wrt = (x, a), E.Frobenius(a, E.Unvec(x, I3, I2)), (x,)
    else:
        G, A, C = E.Symbol("G", (I4, I6)), E.Symbol("A", (I2, I3)), E.Symbol("C", (I2, I2))
        node = E.KronBlockSum(G, A) if kind is E.KronBlockSum else E.KronBlockFrobenius(G, C)
        weight = C if kind is E.KronBlockSum else A
        inputs, objective, wrt = (G, A, C), E.Frobenius(weight, node), (G, A if kind is
                                                                         E.KronBlockSum else C)
    return Chain(inputs=tuple(Input(v, True, i + 1) for i, v in enumerate(inputs)),
                 definitions=(Definition(Eo, objective, len(inputs) + 1),), wrt=wrt,
                 wrt_line=len(inputs) + 2)


BUILT_MOVES = (E.Unvec, E.KronBlockSum, E.KronBlockFrobenius)


def test_the_built_move_chains_verify():
    from derive.check import check
    from derive.sweep import build
    for kind in BUILT_MOVES:
        result = check(build(_built_chain(kind)))
        assert result.ok and result.complete, kind


@pytest.mark.parametrize("kind", list(frobenius.MOVES), ids=lambda k: k.__name__)
def test_a_corrupted_frobenius_move_is_caught(monkeypatch, kind):
    """Every row of frobenius.MOVES: the coefficient it moves left, doubled."""
    move = frobenius.MOVES[kind]
    monkeypatch.setitem(frobenius.MOVES, kind, lambda g, e: [
        (doubled(g2), y, used) for g2, y, used in move(g, e)])
    if kind in BUILT_MOVES:
        from derive.check import check
        from derive.sweep import build
        assert not check(build(_built_chain(kind))).ok, kind.__name__
        return
    assert caught(MOVE_CHAINS[kind.__name__]), kind.__name__


REWRITE_CHAINS = {   # chains with an alias S = Diag(s) whose line uses each diagonal rule
    "a∘b = Diag(a) b": "W : m x n\nx : n\nv = W x\ns = exp(v)\nS = Diag(s)\nE = 1's\nwrt W",
    "Diag(a ± b) = Diag(a) ± Diag(b)": examples_text("backprop"),
    "Diag(αa) = α Diag(a)": "x : n\ns = sigma(2 x)\nS = Diag(s)\nE = 1's\nwrt x",
    "Diag(a∘b) = Diag(a) Diag(b)": examples_text("backprop"),
    "Diag(1) = I": "W : m x n\nx : n\nv = W x\nt = tanh(v)\nT = Diag(t)\nE = 1't\nwrt W",
}


@pytest.mark.parametrize("rule", list(REWRITE_CHAINS))
def test_a_corrupted_diagonal_rewrite_is_caught(monkeypatch, rule):
    """Every rule of diagonal.REWRITES (the a∘b = Diag(a)b family): its result doubled."""
    text = REWRITE_CHAINS[rule]
    used = {str(r) for d in derive(text, check=False).definitions for r in d.rules}
    assert rule in used, (rule, used)
    for kind, step in list(diagonal.REWRITES.items()):
        def wrong(e, step=step):
            rewritten, applied = step(e)
            if applied is not None and str(applied) == rule:
                return doubled(rewritten), applied
            return rewritten, applied
        monkeypatch.setitem(diagonal.REWRITES, kind, wrong)
    assert caught(text), rule
