"""No silent misreading: what derive is unsure of is said on stderr in every mode."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import derive
from derive.cli import main
from derive.errors import DeriveError

TYPO = """\
W : 5x4
x : 4
y : 5
s = sigma(W x)
E = 1/2 (s - z):(s - z)
wrt W
"""
NO_PATH = "W : 5x4\nx : 4\nb : 5\nE = x'x\nwrt W, b\n"


def run(tmp_path, text, *args):
    path = tmp_path / "typo.chain"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(main, [a if a != "FILE" else str(path) for a in args]), path


MODES = [
    ("render", "FILE"),
    ("render", "FILE", "-t", "json"),
    ("render", "FILE", "-t", "numpy"),
    ("render", "FILE", "-t", "latex"),
    ("render", "FILE", "--flavor", "github"),
    ("render", "FILE", "--no-check"),
    ("check", "FILE"),
]


@pytest.mark.parametrize("args", MODES, ids=[" ".join(m) for m in MODES])
def test_warnings_reach_stderr_in_every_mode(tmp_path, args):
    result, path = run(tmp_path, TYPO, *args)
    assert result.exit_code == 0, result.output
    assert f"{path}:5:14: warning: z is not declared: read as a vector of length 5 " \
           "(did you mean y, declared but never used?)" in result.stderr
    assert f"{path}:3:1: warning: y is declared but never used" in result.stderr


def test_warnings_reach_stderr_with_output_file_and_notes(tmp_path):
    out = tmp_path / "out.md"
    result, path = run(tmp_path, TYPO, "render", "FILE", "-o", str(out))
    assert result.exit_code == 0 and "z is not declared" in result.stderr and out.exists()
    notes = tmp_path / "notes.tex"
    result, path = run(tmp_path, TYPO, "notes", "FILE", "-o", str(notes))
    assert result.exit_code == 0 and "z is not declared" in result.stderr


@pytest.mark.parametrize("args", [("render", "FILE", "-t", "json", "-o", "OUT"), ("check", "FILE"),
                                  ("render", "FILE", "-t", "numpy")])
def test_a_wrt_without_path_is_said_in_every_mode(tmp_path, args):
    args = [str(tmp_path / "o.json") if a == "OUT" else a for a in args]
    result, path = run(tmp_path, NO_PATH, *args)
    assert result.exit_code == 0, result.output
    assert "warning: W has no path to the objective E: its gradient is 0" in result.stderr
    assert "warning: b has no path" in result.stderr


def test_json_lists_the_warnings():
    d = derive.derive(TYPO)
    warnings = json.loads(d.to_json())["warnings"]
    assert any("z is not declared" in w for w in warnings)
    assert any("y is declared but never used" in w for w in warnings)


def test_strict_turns_warnings_into_exit_2(tmp_path):
    result, path = run(tmp_path, TYPO, "check", "--strict", "FILE")
    assert result.exit_code == 2 and "--strict makes warnings errors" in result.stderr
    assert "Traceback" not in result.output
    result, _ = run(tmp_path, TYPO.replace("(s - z):(s - z)", "(s - y):(s - y)"),
                    "check", "--strict", "FILE")
    assert result.exit_code == 0, result.output


def test_undeclared_names_alone_are_the_convention_not_a_warning():
    d = derive.derive("v = W x\nE = v'v\nwrt W")
    assert not d.warnings


@pytest.mark.parametrize("text, fragment", [
    ("W : 5x4; x : 4; v = Wx; E = v'v; wrt W", "write W x (with spaces)"),
    ("W : 5x4; x : 4; v = W x; u = vW; E = u'u; wrt W", "reads as the product of v, W"),
    ("A : 3x3; B : 3x3; E = tr(AB); wrt A", "write A B (with spaces)"),
])
def test_glued_names_in_scope_are_refused(text, fragment):
    with pytest.raises(DeriveError) as info:
        derive.derive(text)
    assert fragment in info.value.message and info.value.line == 1


def test_glued_names_are_refused_before_the_shape_error_they_cause():
    with pytest.raises(DeriveError) as info:
        derive.derive("W : 5x4; x : 4; y : 5; E = (Wx - y)'(Wx - y) + x'x; wrt W")
    assert "reads as the product of W, x" in info.value.message


def test_a_declared_name_that_looks_glued_is_a_name():
    d = derive.derive("Wx : 5x4; x : 4; E = x'Wx'Wx x; wrt x")
    assert [i.symbol.name for i in d.chain.inputs] == ["Wx", "x"] and not d.warnings


def test_a_coefficient_takes_the_size_that_makes_the_objective_a_scalar():
    d = derive.derive("W : 3x4; E = lam ||W||_F^2; wrt W")
    lam = d.chain.input_named("lam").symbol
    assert lam.is_scalar
    assert any("lam is not declared: read as a scalar" in w for w in d.warnings)
    assert d.check.ok
    from derive.evaluate import evaluate, forward
    W = np.arange(12.0).reshape(3, 4) / 7
    values = forward(d.chain, {"W": W, "lam": 0.3})
    assert np.allclose(evaluate(d.gradients[0].expr, values), 0.6 * W)


@pytest.mark.parametrize("written", ["(x'x)^1/2", "(x'x)^2/3", "x.^1/2"])
def test_a_fraction_after_a_power_without_braces_is_refused(written):
    """``(x'x)^1/2`` was silently (x'x)/2 — most likely meant as the square root."""
    text = f"x : 3 positive\nE = 1'({written})\nwrt x" if written.startswith("x.") else \
        f"x : 3\nE = {written}\nwrt x"
    with pytest.raises(DeriveError, match=r"is read by precedence as .*: write \^\{"):
        derive.derive(text)


def test_the_braced_power_and_the_spaced_quotient_still_read():
    x = np.array([1.0, 2.0, 2.0])
    root = derive.derive("x : 3\nE = (x'x)^{1/2}\nwrt x")
    half = derive.derive("x : 3\nE = (x'x)^1 / 2\nwrt x")
    assert np.allclose(root.gradients[0].numpy(x=x).ravel(), x / 3)     # ∇‖x‖ = x/‖x‖
    assert np.allclose(half.gradients[0].numpy(x=x).ravel(), x)         # ∇ xᵀx/2 = x


@pytest.mark.parametrize("written, braced", [("(x'x)^(1/2)", "(x'x)^{1/2}"),
                                             ("(x'x)^( -1 )", "(x'x)^{-1}"),
                                             ("(x'x)^(0.5)", "(x'x)^0.5"),
                                             ("1'(x.^(3/2))", "1'(x.^{3/2})")])
def test_a_number_exponent_in_brackets_reads_as_in_braces(written, braced):
    x = np.array([1.0, 2.0, 2.0])
    got, want = (derive.derive(f"x : 3 positive\nE = {e}\nwrt x") for e in (written, braced))
    assert got.gradients[0].text == want.gradients[0].text
    closed = {"(x'x)^{1/2}": x / 3, "(x'x)^{-1}": -2 * x / 81, "(x'x)^0.5": x / 3,
              "1'(x.^{3/2})": 1.5 * np.sqrt(x)}[braced]
    assert np.allclose(got.gradients[0].numpy(x=x).ravel(), closed)


def test_a_bracketed_exponent_that_is_not_a_number_is_refused():
    with pytest.raises(DeriveError, match=r"after '\^' write T, -1, -T or a number .*x\^\(1/2\)"):
        derive.derive("x : 3\na : scalar\nE = (x'x)^(a)\nwrt x")
