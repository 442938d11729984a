"""The generated NumPy module: it imports, and its gradient is the derived one."""
import ast
import json
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import sympy

from derive import expr as E
from derive.chain import Chain, Definition, Input
from derive.derivation import Derivation, DefinitionLine, Gradient, SubstitutionLine
from derive.errors import Source
from derive.evaluate import evaluate
from derive.numpy_code import NumpyPrinter, _environment, to_numpy
from test_check import (A_plain, FULL, X_, Eo, d, log_derivation, logdet_derivation, quadratic,
                        seed_derivation, sym, two_layer)
from test_evaluate import CASES, DIAG_CASES, SIZES, V

n = sympy.Symbol("n")


def load(source, tmp_path, name="generated"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numeric_gradient(objective, inputs, name, h=1e-5):
    """Entry-by-entry central differences of ``objective`` (independent of derive)."""
    base = np.asarray(inputs[name], dtype=float)
    out = np.zeros(base.shape)
    for index in np.ndindex(base.shape or (1,)):
        moved = []
        for sign in (1, -1):
            value = base.copy()
            if base.shape:
                value[index] += sign * h
            else:
                value = base + sign * h
            moved.append(objective(**{**inputs, name: value}))
        out[index if base.shape else ()] = (moved[0] - moved[1]) / (2 * h)
    return out


def assert_matches_objective(module, inputs):
    gradient = module.gradient(**inputs)
    for name, value in gradient.items():
        expected = numeric_gradient(module.objective, inputs, name)
        assert np.shape(value) == np.shape(inputs[name])
        error = np.linalg.norm(np.asarray(value) - expected) / np.linalg.norm(expected)
        assert error < 1e-7, (name, error)


def assert_no_numeric_differentiation(source):
    tree = ast.parse(source)
    gradient = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "gradient")
    calls = {node.func.id for node in ast.walk(gradient)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "objective" not in calls
    assert not re.search(r"\d[eE]-\d", source)
    assert "eps" not in source


rng = np.random.default_rng(7)


def test_seed_gradient_matches_the_objective(tmp_path):
    source = to_numpy(seed_derivation())
    assert_no_numeric_differentiation(source)
    assert source.splitlines()[1] == "" and "import numpy as np" in source
    assert not re.search(r"^(import|from) (?!numpy)", source, re.M)
    module = load(source, tmp_path)
    inputs = {"W": rng.normal(size=(5, 4)), "x": rng.normal(size=4), "y": rng.normal(size=5)}
    assert_matches_objective(module, inputs)
    s = 1 / (1 + np.exp(-inputs["W"] @ inputs["x"]))
    expected = np.outer((s - s * s) * (s - inputs["y"]), inputs["x"])
    np.testing.assert_allclose(module.gradient(**inputs)["W"], expected, rtol=1e-12)


def test_two_weight_matrices(tmp_path):
    module = load(to_numpy(two_layer()), tmp_path)
    inputs = {"W1": rng.normal(size=(3, 4)), "W2": rng.normal(size=(2, 3)),
              "x": rng.normal(size=(4, 1)), "y": rng.normal(size=(2, 1))}
    assert set(module.gradient(**inputs)) == {"W1", "W2"}
    assert_matches_objective(module, inputs)


@pytest.mark.parametrize("shape", [(4,), (4, 1)])
def test_vector_wrt_keeps_the_shape_given(tmp_path, shape):
    G = E.Mul((E.Add((A_plain, E.Transpose(A_plain))), X_))
    module = load(to_numpy(quadratic(A_plain, FULL, G)), tmp_path, f"quad{len(shape)}")
    inputs = {"A": rng.normal(size=(4, 4)), "x": rng.normal(size=shape)}
    gradient = module.gradient(**inputs)["x"]
    assert gradient.shape == shape
    assert_matches_objective(module, inputs)


def test_logdet_and_log(tmp_path):
    module = load(to_numpy(logdet_derivation(sym("X", n, n, ("spd",)))), tmp_path, "ld")
    a = rng.normal(size=(3, 3))
    assert_matches_objective(module, {"X": a @ a.T + 3 * np.eye(3)})
    module = load(to_numpy(log_derivation(sym("x", n))), tmp_path, "lg")
    assert_matches_objective(module, {"x": np.abs(rng.normal(size=3)) + 0.5})


def test_scalar_wrt_is_a_float_and_odd_names_still_work(tmp_path):
    lam, vec = E.Symbol("lambda"), sym("np", n)
    expr = E.Mul((E.Power(lam, 2), E.Frobenius(vec, vec)))
    chain = Chain(inputs=(Input(lam, True, 1), Input(vec, True, 2)),
                  definitions=(Definition(Eo, expr, 3),), wrt=(lam, vec),
                  title='A """quoted""" title', source=Source("lambda : scalar\nnp : n\nE = lambda^2 np:np"))
    G_lam = E.Mul((E.Number(2), lam, E.Frobenius(vec, vec)))
    G_vec = E.Mul((E.Number(2), E.Power(lam, 2), vec))
    derivation = Derivation(chain, (DefinitionLine(Eo, expr, Eo, E.Zero(), 3),),
                            (SubstitutionLine(E.Zero()),), (Gradient(lam, G_lam), Gradient(vec, G_vec)))
    source = to_numpy(derivation)
    assert "# E = lambda^2 np:np" in source and "title" in source
    module = load(source, tmp_path, "odd")
    inputs = {"lambda": 1.5, "np": rng.normal(size=3)}
    gradient = module.gradient(**inputs)
    assert isinstance(gradient["lambda"], float) and gradient["np"].shape == (3,)
    assert_matches_objective(module, inputs)


def test_gradient_follows_the_displayed_expression(tmp_path):
    """A wrong displayed gradient gives a wrong NumPy gradient: nothing is recomputed."""
    wrong = E.Mul((E.Power(sym("S", sympy.Symbol("m"), sympy.Symbol("m")), 2),
                   E.Add((sym("s", sympy.Symbol("m")), E.neg(sym("y", sympy.Symbol("m"))))),
                   E.Transpose(sym("x", n))))
    module = load(to_numpy(seed_derivation(gradient=wrong)), tmp_path, "wrong")
    inputs = {"W": rng.normal(size=(5, 4)), "x": rng.normal(size=4), "y": rng.normal(size=5)}
    expected = numeric_gradient(module.objective, inputs, "W")
    assert np.linalg.norm(module.gradient(**inputs)["W"] - expected) > 1e-3


# ---------------------------------------------------------------- the printer, node by node


@pytest.fixture(scope="module")
def helpers():
    """Every helper the template can define, executed into one namespace."""
    source = _environment().get_template("numpy.py.j2").render(
        title="", chain_text=[], wrt="x", check=None, inputs=[("x", "x")],
        keyword_arguments=True, sizes={}, objective_lines=[], objective="x",
        gradient_lines=[], gradients=[],
        helpers={"sigma", "frobenius", "trace", "det", "logdet", "diag", "diag_part"})
    namespace = {}
    exec(compile(source, "<helpers>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("node", [c[0] for c in CASES] + DIAG_CASES,
                         ids=lambda c: type(c).__name__)
def test_printed_code_evaluates_like_the_tree(node, helpers):
    printer = NumpyPrinter()
    code = printer.doprint(node)
    namespace = {**helpers, **V, "_size_m": SIZES[sympy.Symbol("m")], "_size_n": SIZES[n]}
    got = eval(code, namespace)
    np.testing.assert_allclose(np.asarray(got, dtype=float) * np.ones((1, 1)),
                               evaluate(node, V, sizes=SIZES), rtol=1e-10, atol=1e-12)


def test_printer_reads_like_numpy():
    W, x, s, y = sym("W", 3, n), sym("x", n), sym("s", 3), sym("y", 3)
    p = NumpyPrinter()
    assert p.doprint(E.Mul((W, x))) == "W @ x"
    assert p.doprint(E.Inverse(sym("X", n, n))) == "np.linalg.inv(X)"
    assert p.doprint(E.Apply("sigma", E.Mul((W, x)))) == "_sigma(W @ x)"
    assert p.doprint(E.Add((s, E.neg(E.Hadamard(s, s))))) == "(s - (s * s))"
    assert p.doprint(E.Transpose(E.Mul((W, x)))) == "(W @ x).T"
    assert p.doprint(E.scale(sympy.Rational(1, 2), E.Frobenius(s, y))) == "0.5 * _frobenius(s, y)"
    assert p.doprint(E.neg(x)) == "-x"
    assert p.doprint(E.Mul((E.Number(-1), E.Transpose(x), x, W))) == "-(x.T @ x) * W"
    assert p.doprint(E.Mul((W, x, E.Transpose(x), x))) == "np.linalg.multi_dot([W, x, x.T, x])"
    assert p.helpers == {"sigma", "frobenius"}


def test_helpers_defined_only_when_used():
    source = to_numpy(quadratic(A_plain, FULL, E.Mul((E.Add((A_plain, E.Transpose(A_plain))), X_))))
    assert "def _sigma" not in source and "def _logdet" not in source
    assert "def _sigma" in to_numpy(seed_derivation())


def test_differentials_are_refused():
    with pytest.raises(ValueError):
        NumpyPrinter().doprint(d(X_))


# ---------------------------------------------------------------- identifiers (issue 11)

import builtins  # noqa: E402
import keyword  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from derive import api  # noqa: E402
from derive.errors import DeriveError  # noqa: E402
from derive.numpy_code import RESERVED, adjoint_name, callable_name, python_name  # noqa: E402

GREEK_LETTERS = [chr(c) for c in range(0x391, 0x3AA)] + [chr(c) for c in range(0x3B1, 0x3CA)]
AWKWARD = ["np", "np_", "np__", "np___", "float", "float_", "lambda", "lambda_", "λ", "Λ",
           "Lambda", "Lambda__", "Sigma", "Σ", "Sigma__", "sigma__", "ς", "varsigma", "W_1",
           "W1", "W_1_", "W__1", "x___", "S_2_", "z_z_z_z", "given", "inputs", "objective",
           "gradient", "id", "input", "match", "case", "type", "f_prime", "f_prime2", "f",
           "None", "True", "print", "\u03a2", "claim\u20330", *keyword.kwlist]
names = st.one_of(st.sampled_from(AWKWARD + GREEK_LETTERS),
                  st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(names, min_size=2, max_size=12, unique=True))
def test_python_names_are_injective_identifiers_apart_from_the_module_and_python(chosen):
    """Distinct names get distinct identifiers, and no identifier is a keyword, a builtin,
    the module's own name, an adjoint or a function's keyword argument of another name."""
    identifiers = [python_name(n) for n in chosen]
    assert len(set(identifiers)) == len(identifiers), dict(zip(chosen, identifiers))
    callables = {callable_name(n, k) for n in chosen for k in (1, 2)}
    adjoints = {adjoint_name(n) for n in chosen}
    assert len(callables) == 2 * len(chosen) and len(adjoints) == len(chosen)
    for name, identifier in zip(chosen, identifiers):
        assert identifier.isidentifier() and identifier.isascii(), (name, identifier)
        assert not keyword.iskeyword(identifier) and not keyword.issoftkeyword(identifier)
        assert identifier not in RESERVED and not hasattr(builtins, identifier)
        assert identifier not in callables and identifier not in adjoints


@pytest.mark.parametrize("name, identifier", [
    ("W_1", "W_1"), ("Sigma", "Sigma"), ("x", "x"), ("Σ", "Sigma__"), ("λ", "lambda__"),
    ("ς", "varsigma__"), ("np", "np_"), ("np_", "np___"), ("lambda", "lambda_")])
def test_python_names_keep_the_ascii_spelling(name, identifier):
    assert python_name(name) == identifier


def test_an_input_called_np_beside_np(tmp_path):
    """The issue's collision: ``np`` escaped to ``np_`` met the input ``np_``, and objective()
    and gradient() computed with the wrong array while the file said "checked"."""
    derivation = api.derive("np : 3\nnp_ : 3\nlambda : scalar\nE = lambda np:np_ + np:np\n"
                            "wrt np, np_, lambda")
    module = load(derivation.to_numpy(), tmp_path, "np_collision")
    a, b, lam = rng.normal(size=3), rng.normal(size=3), 0.7
    inputs = {"np": a, "np_": b, "lambda": lam}
    assert module.objective(**inputs) == pytest.approx(lam * a @ b + a @ a, rel=1e-12)
    gradient = module.gradient(**inputs)
    np.testing.assert_allclose(gradient["np"], lam * b + 2 * a, rtol=1e-12)
    np.testing.assert_allclose(gradient["np_"], lam * a, rtol=1e-12)
    assert gradient["lambda"] == pytest.approx(a @ b, rel=1e-12)
    listed = json.loads(derivation.to_json())["numpy"]
    assert listed["gradient"] == ["np", "np_", "lambda"] and not listed["keyword_arguments"]
    assert listed["identifiers"] == {"np": "np_", "np_": "np___", "lambda": "lambda_"}


def test_greek_inputs_and_a_builtin_name(tmp_path):
    """``Σ`` and ``Sigma`` cannot meet in one chain (they print alike), but ``Σ``, ``σ``
    and a builtin's name (``id``) work side by side; the module says it in ASCII."""
    derivation = api.derive("Σ : 3x3\nid : 3\nα : scalar\nE = α id:(Σ id)\nwrt Σ, α")
    source = derivation.to_numpy()
    identifiers = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert {"Sigma__", "alpha__", "id_"} <= identifiers and all(i.isascii() for i in identifiers)
    module = load(source, tmp_path, "greek")
    S, v, alpha = rng.normal(size=(3, 3)), rng.normal(size=3), -1.3
    gradient = module.gradient(**{"Σ": S, "id": v, "α": alpha})
    np.testing.assert_allclose(gradient["Σ"], alpha * np.outer(v, v), rtol=1e-12)
    assert gradient["α"] == pytest.approx(v @ S @ v, rel=1e-12)


def test_an_input_named_like_a_derivative_argument_is_refused():
    with pytest.raises(DeriveError, match="keyword argument") as caught:
        api.derive("x : 3\nf_prime : 3\nE = f(x):f_prime + np:np\nwrt x").to_numpy()
    assert caught.value.line == 2


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "examples")
                                        .glob("*.chain")), ids=lambda p: p.stem)
def test_json_lists_exactly_the_functions_the_module_defines(path):
    """``--to json``'s ``numpy`` entry names each function of the module with its parameters,
    and no function the module lacks (a Jacobian-only chain has no ``gradient()``)."""
    from derive.api import derive_file
    derivation = derive_file(path, check=False)
    listed = json.loads(derivation.to_json())["numpy"]
    tree = ast.parse(derivation.to_numpy())
    defined = {f.name: [a.arg for a in f.args.args + f.args.kwonlyargs]
               for f in tree.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}
    functions = {k: v for k, v in listed.items() if k not in ("keyword_arguments", "identifiers")}
    assert set(functions) == set(defined)
    if listed["keyword_arguments"]:
        for name, arguments in functions.items():
            assert set(arguments) == set(defined[name]), name
