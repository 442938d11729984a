"""Which variables vary, which definitions are aliases: asked of the Chain, by the sweep
and the check alike."""
from pathlib import Path

from derive.api import derive
from derive.chain import Chain
from derive.latex_input import read_chain

SEED = (Path(__file__).resolve().parent.parent / "examples" / "backprop.chain").read_text()

TWO_LAYERS = """\
W1 : 4x3
W2 : 2x4
b : 4
x : 3
y : 2
h = tanh(W1 x + b)
o = W2 h
E = 1/2 (o - y):(o - y)
wrt W1, W2
"""

UNSPECIFIED = """\
W : 3x4
x : 4
y : 3
f : function
x_1 = W x
x_2 = f(x_1)
F = Diag(f'(x_1))
G = Diag(x)
E = 1/2 (x_2 - y):(x_2 - y) + tr(G)
wrt W
"""


def chain_of(text: str) -> Chain:
    return read_chain(text)


def test_varying_follows_the_wrt_through_the_definitions():
    chain = chain_of(SEED)
    assert chain.varying() == {"W", "v", "s", "S", "E"}
    assert chain.varying(["x"]) == {"x", "v", "s", "S", "E"}
    assert chain.varying(["y"]) == {"y", "E"}


def test_varying_with_several_wrt_and_one_held_fixed():
    chain = chain_of(TWO_LAYERS)
    assert chain.varying() == {"W1", "W2", "h", "o", "E"}
    assert chain.varying(["W2"]) == {"W2", "o", "E"}         # W1 held fixed: h does not vary
    assert chain.varying(["b"]) == {"b", "h", "o", "E"}


def test_a_defined_wrt_is_held_independent():
    """``jacobian o wrt h``: h varies, what h is defined from does not."""
    chain = chain_of(TWO_LAYERS)
    assert chain.varying(["h"]) == {"h", "o", "E"}
    assert chain.varying([chain.definitions[0].symbol]) == {"h", "o", "E"}    # a Symbol works too


def test_aliases_are_the_notation_definitions():
    assert chain_of(SEED).aliases() == {"S"}
    assert chain_of(TWO_LAYERS).aliases() == frozenset()
    # F names a coefficient and is used by nothing; G = Diag(x) of an input is used by E
    assert chain_of(UNSPECIFIED).aliases() == {"F"}


def test_the_sweep_and_the_check_ask_the_chain(monkeypatch):
    """Both answers come from the Chain: the sweep and the check each ask, and what the
    Chain says is what they use (a wrong answer makes the derivation wrong, visibly)."""
    asked = []
    original = Chain.varying

    def recording(self, wrt=None):
        import inspect
        asked.append(inspect.stack()[1].frame.f_globals["__name__"])
        return original(self, wrt)

    monkeypatch.setattr(Chain, "varying", recording)
    d = derive(SEED)
    assert d.check.ok
    assert {"derive.sweep", "derive.check"} <= set(asked)


def test_the_sweep_uses_the_chains_aliases(monkeypatch):
    monkeypatch.setattr(Chain, "aliases", lambda self: frozenset())
    d = derive(SEED, check=False)
    assert not any(line.is_alias for line in d.definitions)      # S is now a variable of its own
