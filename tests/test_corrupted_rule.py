"""A wrong table rule is caught by the numeric check, on the line it affects.

The corruption happens in the tables themselves (as a careless edit would), so the
check cannot know about it; `derive check` must exit 3 and name the line, and the
NumPy module, which prints the very gradient the derivation shows, must change.
"""
import dataclasses
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from derive import expr as E
from derive import frobenius, functions
from derive.api import derive_file
from derive.cli import main
from derive.numpy_code import to_numpy

SEED = str(Path(__file__).resolve().parent.parent / "examples" / "backprop.chain")


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
