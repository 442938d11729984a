"""Chain text → Chain: a LALR grammar, then shapes by unification, then expression trees.

Three passes keep each concern in one place. The grammar knows only the syntax.
A first walk turns every right-hand side into drafts whose sizes are union-find
variables (declared sizes, naming conventions, ``1`` and ``I`` meet there, see
``shapes.py``). Once every line is read, unknown sizes get names and the drafts
become ``expr`` nodes, whose constructors check the shapes once more.
"""
from __future__ import annotations

import functools
import re
import sys
from dataclasses import replace
from fractions import Fraction
from typing import Callable, cast

import lark
import sympy
from lark import Lark, Token, Tree
from lark.exceptions import (LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput,
                             UnexpectedToken)

from .record import record
from .chain import Chain, Definition, Input
from .bars import AmbiguousBars, NormBars, StrayBar
from .cache import private_cache_file
from .errors import DeriveError, Notice, Source, first_unprintable
from .expr import (Add, ElementPower, Expr, Kron, Frobenius, Hadamard, HadamardDivide,
                   Identity, Inverse, Mul, Norm, Number, Ones, Power,
                   ShapeError, Symbol, Transpose, Unspecified, Apply, Zero, is_integer,
                   product_shape, properties_of, show_shape, walk)
from .functions import ALIASES, CONVENTION
from .limits import current as current_limits
from .lookalike import first_alike, hidden, not_a_letter
from .limits import raise_it, tick
from .operations import CALLS, FUNCTION_NAMES, SPELLINGS
from .shapes import Sizes

ELEMENTWISE = set(ALIASES)
FUNCTIONS = set(FUNCTION_NAMES)          # from the tables in functions.py and operations.py
RESERVED = FUNCTIONS
PRIMES = {"'": 1, "′": 1}                # f'(x), f′(x): the derivative of a function f
# a pattern, compiled (and cached by re) for the first name no cheaper test settles
_CONVENTION_NAME = "(?:" + "|".join(CONVENTION) + r")(?:_[A-Za-z0-9]+|[0-9]+)?"

# ASCII names of lower-case Greek letters: scalars (``sigma`` alone is the function)
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"}

IMPLIES = {"symmetric": {"symmetric"}, "spd": {"spd", "symmetric", "invertible"},
           "invertible": {"invertible"}, "positive": {"positive"}}
NEEDS_SQUARE = {"symmetric", "spd", "invertible"}

_BINARY = {"∘": Hadamard, "⊙": Hadamard, ".*": Hadamard, "./": HadamardDivide,
           "⊘": HadamardDivide, ":": Frobenius}

_SLASH_NEXT = re.compile(r"[ \t\f\r\u00a0]*/")
_TITLE = re.compile(r"#\s*title\s*:\s*(.*?)\s*$")
# control characters (a NUL, an escape) and lone surrogates are refused even in comments:
# comments reach the NumPy module and titles every document
_CONTROL = "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff]"


def refused_character(text: str) -> re.Match | None:
    """The first control character or lone surrogate of ``text`` (tab, line feed, form
    feed and carriage return are layout), or None."""
    return first_unprintable(text, _CONTROL, "\t\n\f\r")


def looks_like_latex(text: str) -> bool:
    """The chain syntax has neither ``$`` nor a backslash outside its ``#`` comments; pasted
    LaTeX nearly always has one (here, so that a chain is read without loading the LaTeX
    reader: ``api.read_chain``)."""
    return any("$" in line or "\\" in line
               for line in (raw.split("#", 1)[0] for raw in text.split("\n")))


def parse_chain(text: str, source_name: str = "<-e>", wrt: list[str] | None = None) -> Chain:
    """Read a chain; every mistake in ``text`` is a DeriveError with line and column."""
    source = Source(text, source_name)
    _check_size(text, source)
    control = refused_character(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        column = control.start() - text.rfind("\n", 0, control.start())
        raise DeriveError(f"unexpected character {control.group()!r}", source, line, column)
    try:
        return _Reader(text, source).chain(wrt)
    except RecursionError:
        raise DeriveError("expression nested too deeply", source, 1, 1) from None


# ---------------------------------------------------------------- syntax


@functools.cache
def _parser() -> Lark:
    return Lark.open("grammar.lark", rel_to=__file__, parser="lalr", lexer="contextual",
                     propagate_positions=True, postlex=_BARS,
                     cache=_cache_file())   # cached tables: fast start


_BARS = NormBars()     # the post-lexer reads the text around each bar (one parse at a time)


def _cache_file(grammar: str = "grammar"):
    """The parse tables' pickle, in this user's private cache folder (else no cache);
    ``derive.cache`` checks every folder on the way and the file itself on descriptors."""
    version = f"lark{lark.__version__}-py{sys.version_info[0]}.{sys.version_info[1]}"
    path = private_cache_file(f"{grammar}-{version}.pickle")   # lark checks the grammar's hash
    return path if path is not None else False


def _syntax_tree(text: str, source: Source) -> Tree:
    """The lark tree of ``text``; lark's exceptions become DeriveErrors in plain words."""
    parser = _parser()
    _BARS.text = text
    interactive = parser.parse_interactive(text)
    seen: list[Token | None] = [None, None]            # the last two tokens handed to the parser
    try:
        for count, token in enumerate(interactive.iter_parse()):
            seen = [seen[1], token]
            if count % 4096 == 0:      # a long text takes seconds: the time limit holds here too
                tick(source, token.line)
        return interactive.feed_eof(seen[1])
    except UnexpectedInput as error:
        failed = getattr(error, "token", None)
        previous = seen[0] if failed is not None and failed is seen[1] else seen[1]
        raise _syntax_error(error, previous, source) from None
    except AmbiguousBars as error:
        first, second = error.readings
        raise DeriveError(f"these norm bars read two ways: {first}, or {second}; write * "
                          "between factors or use norm(…)", source, error.token.line,
                          error.token.column) from None
    except StrayBar as error:
        raise DeriveError(f"{str(error.token)!r} closes a norm, but no norm is open here",
                          source, error.token.line, error.token.column) from None
    except LarkError as error:     # anything else lark may raise: still a located error
        raise DeriveError(f"syntax error: {error}", source, 1, 1) from None


def _syntax_error(error: UnexpectedInput, previous, source: Source) -> DeriveError:
    if isinstance(error, UnexpectedCharacters):
        return _character_error(error, source)
    # what lark raises here besides UnexpectedCharacters (handled above) carries the token
    token = cast("UnexpectedToken | UnexpectedEOF", error).token
    expected = set(getattr(error, "expected", ()) or ())
    line, column = error.line, error.column
    if token.type == "$END" and previous is not None:
        line, column = previous.end_line, previous.end_column
    if not isinstance(line, int) or line < 1:
        line, column = 1, 1
    return DeriveError(_syntax_message(token, expected, previous), source, line, column)


def _describe(token) -> str:
    if token.type == "$END":
        return "the end of the input"
    if token.type == "_SEP":
        return "the end of the line" if token == "\n" else "';'"
    return repr(str(token))


def _character_error(error: UnexpectedCharacters, source: Source) -> DeriveError:
    """A character no token starts with; ``1.2.3`` is reported whole, as a bad number."""
    # lark sets pos_in_stream (Optional on the base class) on every UnexpectedCharacters
    text, position = source.text, cast(int, error.pos_in_stream)
    start = position
    while start > 0 and text[start - 1] in "0123456789.":
        start -= 1
    end = position
    while end < len(text) and text[end] in "0123456789.":
        end += 1
    if error.char == "." and any(c.isdigit() for c in text[start:end]):
        return DeriveError(f"bad number {text[start:end]}: write a number such as 2, 0.5 or 1/3",
                           source, error.line, error.column - (position - start))
    hint = " (a name is Latin letters, digits and _, or one Greek letter)" \
        if error.char.isalpha() else ""
    return DeriveError(f"unexpected character {error.char!r}{hint}", source, error.line,
                       error.column)


def _syntax_message(token, expected: set, previous) -> str:
    after = f" after {_describe(previous)}" if previous is not None else ""
    ends = token.type in ("$END", "_SEP")
    if "DIMS" in expected:
        return f"expected a size (scalar, N or M x N){after}, got {_describe(token)}"
    if previous is not None and previous.type == "X":
        return f"expected a size after 'x', got {_describe(token)}"
    if previous is not None and previous.type == "JACOBIAN" or "WRT" in expected:
        return (f"expected a request `jacobian F wrt X` (F a defined variable, X what it "
                f"depends on){after}, got {_describe(token)}")
    if previous is not None and previous.type == "WRT":
        return f"expected a name after 'wrt' (or * for every input), got {_describe(token)}"
    if previous is not None and previous.type == "CLAIM":
        if token.type in ("COLON", "EQUAL"):
            return ("claim is a word of the chain syntax (claim dE/dW = EXPR states a gradient "
                    "to check): give the variable another name")
        return f"expected dE/dW after 'claim' (claim dE/dW = EXPR), got {_describe(token)}"
    if previous is not None and previous.type == "HESSIAN":
        if token.type in ("COLON", "EQUAL"):
            return ("hessian is a word of the chain syntax (hessian W asks for the Hessian "
                    "with respect to W): give the variable another name")
        return f"expected a name after 'hessian' (hessian W, or hessian W, b), got {_describe(token)}"
    if "LPAR" in expected and "PLUS" not in expected:
        return f"expected an expression{after}" + ("" if ends else f", got {_describe(token)}")
    if "EQUAL" in expected:
        return (f"expected ':' (a declaration) or '=' (a definition){after}, "
                f"got {_describe(token)}")
    if "RPAR" in expected and ends:
        return "missing ')'"
    if "BAR_CLOSE" in expected and ends:
        return "missing '||' to close the norm"
    if token.type == "BAR_CLOSE":
        return (f"unexpected {_describe(token)}: after an operand it closes a norm; "
                "multiply by a norm with * (x * ||y||) or write norm(…)")
    if previous is None or previous.type == "_SEP":
        return (f"unexpected {_describe(token)}: a statement is a declaration `x : 4`, "
                "a definition `v = W x` or `wrt W`")
    if expected == {"NAME"} or expected == {"NAME", "COMMA"}:
        return f"expected a name{after}, got {_describe(token)}"
    return f"unexpected {_describe(token)}"


def _check_size(text: str, source: Source) -> None:
    """Refuse a text beyond the byte or line limit before parsing it: lark needs seconds
    for a megabyte. The error points at where the limit is crossed."""
    limits = current_limits()
    if limits.max_bytes and len(text) > limits.max_bytes // 4 \
            and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        kept = text.encode("utf-8", "surrogatepass")[:limits.max_bytes]
        at = len(kept.decode("utf-8", "ignore"))
        line = text.count("\n", 0, at) + 1
        raise DeriveError(f"the chain is longer than {limits.max_bytes} bytes, the limit "
                          + raise_it("max_bytes"),
                          source, line, at - text.rfind("\n", 0, at))
    if limits.max_lines and text.count("\n") >= limits.max_lines:
        lines = text.split("\n")
        if len(lines) > limits.max_lines and "".join(lines[limits.max_lines:]).strip():
            raise DeriveError(f"the chain has more than {limits.max_lines} lines, the limit "
                              + raise_it("max_lines"),
                              source, limits.max_lines + 1, 1)


def _check_depth(tree: Tree, fail) -> None:
    """Refuse deeply nested or huge expressions before anything walks them recursively."""
    limits = current_limits()
    stack, count = [(tree, 0)], 0
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        depth += _weight(node)
        count += 1
        if limits.max_depth and depth > limits.max_depth:
            raise fail(f"expression nested too deeply: more than {limits.max_depth} levels, "
                       f"the limit {raise_it('max_depth')}", node)
        if limits.max_nodes and count > limits.max_nodes:
            raise fail(f"expression too large: more than {limits.max_nodes} nodes, the limit "
                       + raise_it("max_nodes"), tree)
        stack.extend((child, depth) for child in node.children)


def _weight(node: Tree) -> int:
    """Levels a node adds to the finished tree: chains of binary or postfix ops nest."""
    if node.data in ("hada", "frob"):
        return len(node.children) // 2
    if node.data == "postfix":
        return len(node.children) - 1
    return 1


# ---------------------------------------------------------------- drafts


@record(eq=False)
class _Draft:
    """A node whose sizes are still being inferred; ``make`` builds it from finished kids."""

    make: Callable[..., Expr]
    kids: tuple
    shape: tuple                    # two size-variable ids
    at: tuple                       # (line, column) for errors about this node
    text: str                       # as written, for messages
    number: Fraction | None = None  # the value of a plain number


@record
class _InputInfo:
    shape: tuple
    props: frozenset
    declared: bool
    line: int
    column: int


def _mul(factors) -> Expr:
    """A flat product in order; adjacent numbers fold (``1/2`` is one factor).

    A nested product is spliced in only where every step stays well shaped:
    ``A (xᵀy)`` keeps its parentheses, since there ``xᵀy`` acts as a scalar.
    """
    flat: list[Expr] = []
    shape = None
    for factor in factors:
        parts = (factor,)
        if isinstance(factor, Mul) and _fold(shape, factor.factors) is not None:
            parts = factor.factors
        shape = _fold(shape, parts) or shape
        for f in parts:
            if flat and isinstance(f, Number) and isinstance(flat[-1], Number):
                flat[-1] = Number(flat[-1].value * f.value)
            else:
                flat.append(f)
    flat = [f for f in flat if f != Number(1)] or flat[:1]
    return flat[0] if len(flat) == 1 else Mul(tuple(flat))


def _fold(shape, factors):
    """The shape of ``shape · f₁ · f₂ …`` (shape None: nothing yet), or None if a step fails."""
    try:
        for f in factors:
            shape = f.shape if shape is None else product_shape(shape, f.shape)
    except ShapeError:
        return None
    return shape


def _negate(x: Expr) -> Expr:
    return Number(-x.value) if isinstance(x, Number) else _mul((Number(-1), x))


def _add(terms) -> Expr:
    flat: list[Expr] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, Add) else (term,))
    return Add(tuple(flat))


def _inverse(x: Expr) -> Expr:
    return Power(x, -1) if x.is_scalar else Inverse(x)


def _rational(value: Fraction) -> Number:
    return Number(sympy.Rational(value.numerator, value.denominator))


def _first_token(node) -> Token:
    while isinstance(node, Tree):
        node = node.children[0]
    return node


def _last_token(node) -> Token:
    while isinstance(node, Tree):
        node = node.children[-1]
    return node


def _start(node) -> int:
    # every token of a parse tree comes from the lexer, which sets its positions
    return cast(int, _first_token(node).start_pos)


def _end(node) -> int:
    return cast(int, _last_token(node).end_pos)


def _at(token: Token) -> tuple[int, int]:
    """(line, column) of a token; the lexer sets both on every token it makes."""
    return cast(int, token.line), cast(int, token.column)


def _position(where) -> tuple:
    """(line, column) of a token, of a tree's first token, or a pair as given."""
    if isinstance(where, (Token, Tree)):
        token = _first_token(where)
        return token.line, token.column
    return where


def _statement_start(statement: Tree) -> tuple:
    """(line, column) where a statement starts, its keyword included (lark's positions; a
    tree another front end built without them: its first token)."""
    meta = statement.meta
    return (meta.line, meta.column) if not meta.empty else _position(statement)


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:39] + "…"


def _rows(sizes: Sizes, shape) -> str:
    n = sizes.show(shape[0])
    return "1 row" if n == "1" else f"{n} rows"


def _convention(name: str) -> str:
    """Kind of an undeclared input: W, Σ matrix; x vector; α, alpha, alpha_1 scalar."""
    if "\u03b1" <= name[0] <= "\u03c9":
        return "scalar"
    match = re.fullmatch(r"([a-z]+)(?:_\w*|[0-9]+)?", name)
    if match and match.group(1) in GREEK:
        return "scalar"
    return "vector" if name[0].islower() else "matrix"


# ---------------------------------------------------------------- the reader


class _Reader:
    """Reads one chain text; holds the state shared by its passes."""

    def __init__(self, text: str, source: Source):
        self.text, self.source = text, source
        self.sizes = Sizes()
        self.inputs: dict[str, _InputInfo] = {}
        self.size_names: dict[str, Token] = {}
        self.names: dict[str, tuple] = {}       # declared or defined name -> (kind, token)
        self.defined: dict[str, tuple] = {}     # defined name -> (index, token)
        self.definitions: list = []             # (name token, rhs tree)
        self.drafts: list[_Draft] = []          # one per definition read so far
        self.wrt_tokens: list = []
        self.wrt_line = 0
        self.hessian: Tree | None = None        # the ``hessian W, b`` statement, if any
        self.jacobian_tokens: list = []         # (F token, [X tokens]) of each jacobian line
        self.current = 0                        # index of the definition being read
        self.symbols: dict[str, Symbol] = {}
        self.inferred: list = []                # (size variable, node, what) of each I and 1
        self.used: set = set()                  # inputs used on some line
        self.functions: dict[str, Token] = {}   # unspecified functions, declared or applied
        self.claims: list = []                  # (DERIV token, expression tree, statement)

    def fail(self, message: str, where) -> DeriveError:
        line, column = _position(where)
        return DeriveError(message, self.source, line, column)

    def where(self, token, here) -> str:
        """``on line 7``, or ``at column 12`` when ``here`` is on the same line."""
        here_line = _position(here)[0]
        return f"at column {token.column}" if token.line == here_line else f"on line {token.line}"

    def chain(self, wrt, statements: list | None = None) -> Chain:
        """The Chain of this text, or of ``statements`` (decl, defn and wrt trees that another
        front end, ``latex_input``, built with tokens placed in this text)."""
        if statements is None:
            statements = _syntax_tree(self.text, self.source).children
        if not statements:
            raise self.fail("the chain is empty: declare inputs and define an objective", (1, 1))
        for statement in statements:
            {"decl": self.declare, "defn": self.announce, "wrt": self.note_wrt,
             "hessian": self.note_hessian, "claim": self.note_claim,
             "jacobian": self.note_jacobian}[statement.data](statement)
        self.check_size_names()
        try:
            for index, (name, rhs) in enumerate(self.definitions):
                tick(self.source, name.line)
                _check_depth(rhs, self.fail)
                self.current = index
                self.drafts.append(self.expr(rhs))
        except DeriveError:
            self.refuse_glued_products()     # the likelier cause of a shape error, if any
            raise
        if not self.definitions:
            last_line = _position(statements[-1])[0]
            raise self.fail("no definitions: a chain needs an objective, its last definition "
                            "(such as E = x'x)", (last_line, 1))
        self.refuse_glued_products()
        self.refuse_lookalikes()
        wrt_symbols = self.requests_as_jacobians(self.wrt_names(wrt), bool(wrt))
        # a coefficient whose kind the text leaves open (lam in lam ||W||^2) takes the size
        # that makes the objective a scalar; its warning below says what it became
        if wrt_symbols:
            self.sizes.unify_shapes(self.drafts[self.objective_index()].shape, self.sizes.scalar())
        self.sizes.name_unknowns(self.size_names.keys() | self.names.keys() | self.inputs.keys())
        return self.read_claims(self.finish(wrt_symbols, wrt is not None and bool(wrt)))

    def requests_as_jacobians(self, wrt_names: tuple, overridden: bool) -> tuple:
        """The wrt names; a front end whose requests may be Jacobians says so here."""
        return wrt_names

    def objective_index(self) -> int:
        """Which definition is the objective: the last."""
        return len(self.drafts) - 1

    # ------------------------------------------------ no silent misreading

    def refuse_glued_products(self) -> None:
        """``Wx`` where W and x are names in scope: surely the product, so an error."""
        known = set(self.inputs) | set(self.defined)
        for name, info in self.inputs.items():
            parts = None if info.declared else _split_name(name, known - {name})
            if parts:
                product = " ".join(parts)
                raise self.fail(f"{name} is not declared but reads as the product of "
                                f"{', '.join(parts)}: write {product} (with spaces) for the "
                                f"product, or declare {name}", (info.line, info.column))

    def refuse_lookalikes(self) -> None:
        """Two names that print alike (``A`` and Greek ``Α``, ``W1`` and ``W_1``) are refused
        at the second: the output could not tell them apart."""
        places = {name: (token.line, token.column) for name, (_, token) in self.names.items()}
        places.update((name, (info.line, info.column)) for name, info in self.inputs.items()
                      if name not in places)
        places.update((name, (token.line, token.column)) for name, token in self.functions.items()
                      if name not in places)
        for name, token in self.size_names.items():
            places.setdefault(name, (token.line, token.column))
        places = {n: at for n, at in places.items() if not hidden(n)}
        for name, where in places.items():
            char = not_a_letter(name)
            if char is not None:
                raise self.fail(f"{name!r} has the character U+{ord(char):04X}, which is not a "
                                "letter: a name is letters, digits and _", where)
        ordered = sorted(places, key=lambda n: places[n])
        alike = first_alike(ordered)
        if alike is not None:
            later, earlier = alike
            line, column = places[earlier]
            raise self.fail(f"{later} and {earlier} (line {line}, column {column}) print alike: "
                            "the output could not tell them apart; rename one", places[later])

    def notices(self, wrt_names) -> list:
        """Warnings on names: undeclared beside declared ones, declared but never used (a
        wrt input never used gets the sweep's warning that its gradient is 0 instead)."""
        unused = [n for n, info in self.inputs.items()
                  if info.declared and n not in self.used and n not in wrt_names]
        found = []
        if any(info.declared for info in self.inputs.values()):
            for name, info in self.inputs.items():
                if not info.declared:
                    found.append(Notice(self.undeclared(name, info, unused), info.line, info.column))
        for name in unused:
            info = self.inputs[name]
            found.append(Notice(f"{name} is declared but never used", info.line, info.column))
        return found

    def undeclared(self, name: str, info: _InputInfo, unused: list) -> str:
        sentence = f"{name} is not declared: read as {self.kind_of(info.shape)}"
        alike = [n for n in unused if self.alike(self.inputs[n].shape, info.shape)]
        if alike:
            sentence += f" (did you mean {' or '.join(alike)}, declared but never used?)"
        prefix = next((known for known in sorted(self.inputs, key=len, reverse=True)
                       if known != name and name.startswith(known)), None)
        if prefix and not alike:
            sentence += f" (for the product of {prefix} and {name[len(prefix):]}, put a space)"
        return sentence

    def kind_of(self, shape: tuple) -> str:
        if self.sizes.is_scalar(shape):
            return "a scalar"
        if self.sizes.is_one(shape[1]):
            return f"a vector of length {self.sizes.show(shape[0])}"
        return f"a matrix of size {self.sizes.show_shape(shape)}"

    def alike(self, a: tuple, b: tuple) -> bool:
        return all(self.sizes.can_unify(i, j) for i, j in zip(a, b))

    # ------------------------------------------------ first pass: names, sizes, wrt

    def claim(self, token: Token, kind: str) -> str:
        name = str(token)
        if name in RESERVED:
            raise self.fail(f"{name} is a function name and cannot name a variable", token)
        if name == "I":
            raise self.fail("I is the identity matrix and cannot name a variable", token)
        if name in self.names:
            earlier_kind, earlier = self.names[name]
            raise self.fail(f"{name} is already {earlier_kind} {self.where(earlier, token)}", token)
        self.names[name] = (kind, token)
        return name

    def declare(self, statement: Tree) -> None:
        name_token, _colon, size, *properties = statement.children
        # the grammar: NAME ":" size property*
        name_token, size = cast(Token, name_token), cast(Tree, size)
        if size.data == "vector_size" and str(size.children[0]) == "function":
            return self.declare_function(name_token, properties)
        name = self.claim(name_token, "declared")
        shape = self.size(size)
        props = self.properties(name, shape, properties)
        self.inputs[name] = _InputInfo(shape, props, True, *_at(name_token))

    def declare_function(self, name_token: Token, properties) -> None:
        """``f : function``: an unspecified elementwise scalar function, applied as f(x)."""
        if properties:
            raise self.fail(f"unexpected {str(properties[0])!r}: a function declaration is "
                            f"`{name_token} : function`", properties[0])
        self.claim(name_token, "declared a function")
        self.functions[str(name_token)] = name_token

    def size(self, tree: Tree) -> tuple:
        if tree.data == "scalar_size":
            return self.sizes.scalar()
        if tree.data == "dims_size":
            token = cast(Token, tree.children[0])
            # the grammar's DIMS token is exactly this pattern
            match = cast(re.Match, re.fullmatch(r"([0-9]+|[A-Za-z])[x×](.+)", token))
            rows, cols = match.groups()
            return (self.dim(rows, token, 0), self.dim(cols, token, len(rows) + 1))
        dims = [self.dim(str(t), cast(Token, t)) for t in tree.children]
        return (dims[0], dims[1] if len(dims) == 2 else self.sizes.constant(1))

    def dim(self, text: str, token: Token, offset: int = 0) -> int:
        """A declared size: a positive whole number or a size symbol."""
        line, column = _at(token)
        at = (line, column + offset)
        if not text[0].isdigit():
            self.size_names.setdefault(text, Token("NAME", text, line=at[0], column=at[1]))
            return self.sizes.symbol(text)
        if "." in text or int(text[:19]) == 0:
            raise self.fail(f"a size must be a positive whole number or a name, not {text}", at)
        if len(text) > 18:
            raise self.fail("size too large", at)
        return self.sizes.constant(int(text))

    def properties(self, name: str, shape: tuple, tokens) -> frozenset:
        props = set()
        for token in tokens:
            prop = str(token)
            if prop not in IMPLIES and not self.text[token.start_pos - 1].isspace():
                raise self.fail(f"unexpected {prop!r} after the size: a size is scalar, N or "
                                "M x N", token)
            if prop not in IMPLIES:
                raise self.fail(f"unknown property {prop} (known: {', '.join(IMPLIES)})", token)
            rows, cols = self.sizes.value(shape[0]), self.sizes.value(shape[1])
            if prop in NEEDS_SQUARE and rows != cols:
                raise self.fail(f"{prop} needs a square matrix, but {name} is "
                                f"{self.sizes.show_shape(shape)}", token)
            props |= IMPLIES[prop]
        return frozenset(props)

    def announce(self, statement: Tree) -> None:
        name_token, rhs = statement.children
        name_token = cast(Token, name_token)      # the grammar: NAME "=" expression
        name = self.claim(name_token, "defined")
        self.defined[name] = (len(self.definitions), name_token)
        self.definitions.append((name_token, rhs))

    def note_jacobian(self, statement: Tree) -> None:
        """``jacobian F wrt X, Y``: read once the chain is built (``jacobians``)."""
        f_token, *x_tokens = statement.children
        self.jacobian_tokens.append((f_token, x_tokens))

    def note_wrt(self, statement: Tree) -> None:
        self.wrt_tokens.extend(statement.children)
        self.wrt_line = self.wrt_line or _at(cast(Token, statement.children[0]))[0]

    def note_hessian(self, statement: Tree) -> None:
        """``hessian W, b``: one request per chain (its blocks cover every pair of names)."""
        if self.hessian is not None:
            first = ", ".join(str(t) for t in self.hessian.children)
            raise self.fail(f"a second hessian line: a chain asks for one Hessian (line "
                            f"{self.hessian.meta.line} asks for {first}); write hessian W, b "
                            "on one line for the blocks of several variables",
                            _statement_start(statement))
        self.hessian = statement

    def note_claim(self, statement: Tree) -> None:
        token, tree = statement.children
        self.claims.append((cast(Token, token), tree, statement))

    def claimed_wrt(self) -> list:
        """``claim dE/dW = …`` also asks for ∂E/∂W: each claim's W, checked to be an input."""
        entries = []
        for token, _, _ in self.claims:
            (objective, _), (name, at) = _claim_names(token)
            problem = None
            if name in self.defined:
                problem = (f"{name} is defined on line {self.defined[name][1].line}; a claim is "
                           "about the gradient with respect to an input")
            elif name not in self.inputs:
                problem = (f"{name} is not an input of this chain (inputs: "
                           f"{', '.join(self.inputs) or 'none'})")
            if problem:
                raise self.fail(f"claim ∂{objective}/∂{name}: {problem}", at)
            entries.append((name, None))
        return entries

    def read_claims(self, chain: Chain) -> Chain:
        """Each ``claim dE/dW = C`` read over the finished chain (its names, its sizes)."""
        found = []
        for token, tree, statement in self.claims:
            (objective, at), (name, _) = _claim_names(token)
            if objective != chain.objective.symbol.name:
                raise self.fail(f"claim ∂{objective}/∂{name}: {objective} is not the objective "
                                f"(the last definition, {chain.objective.symbol.name}); a claim is "
                                "about the objective's gradient", at)
            expr = claimed_expression(chain, tree, self.text, self.source, name, self.functions)
            line, column = _at(_first_token(statement))
            found.append((objective, name, expr, line, column))
        return replace(chain, claims=tuple(found)) if found else chain

    def check_size_names(self) -> None:
        for name, (kind, token) in self.names.items():
            if name in self.size_names:
                size = self.size_names[name]
                if (size.line, size.column) > (token.line, token.column):
                    raise self.fail(f"{name} is a variable ({kind} {self.where(token, size)}) "
                                    "and cannot also name a size", size)
                raise self.fail(f"{name} names a size ({self.where(size, token)}) "
                                "and cannot also name a variable", token)

    # ------------------------------------------------ second pass: drafts with shapes

    def draft(self, make, kids, shape, node, at=None, number=None) -> _Draft:
        text = self.text[_start(node):_end(node)]
        return _Draft(make, tuple(kids), shape, _position(at or node), text, number)

    def number_draft(self, value: Fraction, node, at=None) -> _Draft:
        return self.draft(lambda: _rational(value), (), self.sizes.scalar(), node, at, value)

    def expr(self, node: Tree) -> _Draft:
        return getattr(self, "read_" + node.data)(node)

    def read_name(self, node: Tree) -> _Draft:
        token = cast(Token, node.children[0])
        name = str(token)
        if name in RESERVED or name in self.functions or self.applied_by_convention(name):
            raise self.fail(f"{name} is a function: write {name}(…)", token)
        if name == "wrt":
            raise self.fail("wrt starts a statement of its own: put it on a new line "
                            "or after ';'", token)
        if name == "I":
            n = self.sizes.fresh()
            self.inferred.append((n, node, "the size of I"))
            return self.draft(lambda: Identity(self.sizes.size(n)), (), (n, n), node)
        shape = self.lookup(name, token)
        return self.draft(lambda: self.symbols[name], (), shape, node)

    def lookup(self, name: str, token: Token) -> tuple:
        """The shape of a name used on the current line, creating inputs by convention."""
        if name in self.defined:
            index, defined_at = self.defined[name]
            if index == self.current:
                raise self.fail(f"{name} is used in its own definition", token)
            if index > self.current:
                raise self.fail(f"{name} is defined {self.where(defined_at, token)}, "
                                "after its use here", token)
            return self.drafts[index].shape
        if name in self.size_names:
            earlier = self.size_names[name]
            raise self.fail(f"{name} is a size ({self.where(earlier, token)}), not a variable", token)
        if name not in self.inputs:
            shape = self.convention_shape(_convention(name))
            self.inputs[name] = _InputInfo(shape, frozenset(), False, *_at(token))
        self.used.add(name)
        return self.inputs[name].shape

    def convention_shape(self, kind: str) -> tuple:
        if kind == "scalar":
            return self.sizes.scalar()
        rows = self.sizes.fresh()
        return (rows, self.sizes.constant(1) if kind == "vector" else self.sizes.fresh())

    def read_number(self, node: Tree) -> _Draft:
        token = cast(Token, node.children[0])
        if token.type == "HALF":
            return self.number_draft(Fraction(1, 2), node)
        if token == "1" and not _SLASH_NEXT.match(self.text, _end(token)):
            n = self.sizes.fresh()
            self.inferred.append((n, node, "the length of the ones vector 1"))

            def ones():     # the ones vector; of length 1 it is the number 1
                size = self.sizes.size(n)
                return Number(1) if size == 1 else Ones(size)
            return self.draft(ones, (), (n, self.sizes.constant(1)), node)
        if len(token) > 100:
            raise self.fail("number too long", token)
        return self.number_draft(Fraction(str(token)), node)

    def read_paren(self, node: Tree) -> _Draft:
        inner = self.expr(node.children[1])
        return replace(inner, text=self.text[_start(node):_end(node)])

    def read_norm(self, node: Tree) -> _Draft:
        """``||A||_F`` (also of a vector), ``||v||`` and ``||v||_2``; a matrix without ``_F``
        is refused: its ``||M||`` and ``||M||_2`` are often the spectral norm."""
        inner = self.expr(node.children[1])
        close = str(node.children[2])
        if "F" not in close and not self.sizes.unify(inner.shape[1], self.sizes.constant(1)):
            spectral = "2" in close or "₂" in close
            raise self.fail(f"{_quote(inner.text)} is {self.sizes.show_shape(inner.shape)}: "
                            + ("||…||_2 of a matrix is its spectral norm, which derive does "
                               "not differentiate; " if spectral else "")
                            + "write ||…||_F for its Frobenius norm", node.children[0])
        return self.draft(Norm, (inner,), self.sizes.scalar(), node, node.children[0])

    def read_inner(self, node: Tree) -> _Draft:
        """``⟨a, b⟩``: the Frobenius (inner) product ``a:b``."""
        left, right = self.expr(node.children[1]), self.expr(node.children[2])
        if not self.sizes.unify_shapes(left.shape, right.shape):
            raise self.fail(f"{_quote(self.text[_start(node):_end(node)])}: {_quote(left.text)} "
                            f"is {self.sizes.show_shape(left.shape)} but {_quote(right.text)} is "
                            f"{self.sizes.show_shape(right.shape)}", node.children[0])
        return self.draft(Frobenius, (left, right), self.sizes.scalar(), node)

    def read_neg(self, node: Tree) -> _Draft:
        operand = self.expr(node.children[1])
        if operand.number is not None:
            return self.number_draft(-operand.number, node)
        return self.draft(_negate, (operand,), operand.shape, node)

    def read_sum(self, node: Tree) -> _Draft:
        items = node.children
        terms, signs = [self.expr(items[0])], [True]
        shape = terms[0].shape
        for i in range(1, len(items), 2):
            op, term = cast(Token, items[i]), self.expr(items[i + 1])
            if not self.sizes.unify_shapes(shape, term.shape):
                left = _quote(self.text[_start(node):_end(items[i - 1])])
                raise self.fail(f"{left} {op} {_quote(term.text)}: {left} is "
                                f"{self.sizes.show_shape(shape)} but {_quote(term.text)} is "
                                f"{self.sizes.show_shape(term.shape)}", op)
            terms.append(term)
            signs.append(op.type == "PLUS")
        def make(*ts):
            return _add(t if plus else _negate(t) for t, plus in zip(ts, signs))
        return self.draft(make, terms, shape, node)

    def read_product(self, node: Tree) -> _Draft:
        items = self.calls_in_product(node.children)
        if len(items) == 1:
            return self.expr(items[0])
        factors = [self.expr(items[0])]
        shape, left_end, i = factors[0].shape, _end(items[0]), 1
        while i < len(items):
            op = items[i] if isinstance(items[i], Token) else None
            right_node = items[i + 1] if op else items[i]
            i += 2 if op else 1
            right = self.expr(right_node)
            if op == "/":
                self.refuse_split_exponent(items[i - 3], op, right_node, right)
                right = self.reciprocal(right, op, right_node)
            shape = self.times(shape, right, (_start(node), left_end), op or right_node,
                               _end(right_node))
            factors.append(right)
            left_end = _end(right_node)
        return self.draft(lambda *fs: _mul(fs), factors, shape, node)

    def refuse_split_exponent(self, left_node, op: Token, right_node, right: _Draft) -> None:
        """``x^1/2`` written tight: by precedence (x¹)/2, though a person most likely means
        the square root; refused rather than read either way."""
        tight = _end(left_node) == _start(op) and _end(op) == _start(right_node)
        power = re.search(r"\^(-?\d+)$", self.text[:_start(op)])
        if tight and right.number is not None and power:
            k, n = power.group(1), self.text[_start(right_node):_end(right_node)]
            raise self.fail(f"^{k}/{n} is read by precedence as (…^{k})/{n}: write "
                            f"^{{{k}/{n}}} or ^({k}/{n}) for the power, or (…^{k}) / {n} for "
                            "the quotient", op)

    def times(self, left_shape, right: _Draft, left_span: tuple, at, end: int) -> tuple:
        """Shape of a product; a factor acts as a scalar only if surely 1×1 already."""
        sizes = self.sizes
        if sizes.is_scalar(left_shape):
            return right.shape
        if sizes.is_scalar(right.shape):
            return left_shape
        if not sizes.unify(left_shape[1], right.shape[0]):
            whole = _quote(self.text[left_span[0]:end])
            left = _quote(self.text[slice(*left_span)])
            raise self.fail(f"{whole}: {left} is {sizes.show_shape(left_shape)} but "
                            f"{_quote(right.text)} has {_rows(sizes, right.shape)}", at)
        return (left_shape[0], right.shape[1])

    def reciprocal(self, divisor: _Draft, op: Token, node) -> _Draft:
        """``/ k``: a number becomes 1/k; any other divisor must be a scalar."""
        if divisor.number is not None:
            if divisor.number == 0:
                raise self.fail("division by zero", op)
            return self.number_draft(1 / divisor.number, node)
        if not self.sizes.unify_shapes(divisor.shape, self.sizes.scalar()):
            raise self.fail(f"cannot divide by {_quote(divisor.text)}, which is "
                            f"{self.sizes.show_shape(divisor.shape)}", op)
        return self.draft(lambda x: Power(x, -1), (divisor,), divisor.shape, node, op)

    def read_hada(self, node: Tree) -> _Draft:
        return self.binary_chain(node, same_shape=True)

    def read_frob(self, node: Tree) -> _Draft:
        return self.binary_chain(node, same_shape=False)

    def binary_chain(self, node: Tree, same_shape: bool) -> _Draft:
        """``a ∘ b ./ c`` or ``a : b``, left-associative, operands of equal shapes."""
        items = node.children
        left = self.expr(items[0])
        for op, item in zip(items[1::2], items[2::2]):
            right = self.expr(item)
            text = self.text[_start(node):_end(item)]
            if op == "⊗":
                left = self.kron(left, right, op, text)
                continue
            if not self.sizes.unify_shapes(left.shape, right.shape):
                raise self.fail(f"{_quote(text)}: {_quote(left.text)} is "
                                f"{self.sizes.show_shape(left.shape)} but {_quote(right.text)} is "
                                f"{self.sizes.show_shape(right.shape)}", op)
            make = _BINARY[str(op)]
            shape = left.shape if same_shape else self.sizes.scalar()
            left = _Draft(make, (left, right), shape, _position(op), text)
        return left

    # ------------------------------------------------ postfix operators and functions

    def read_postfix(self, node: Tree) -> _Draft:
        draft = self.expr(node.children[0])
        for child in node.children[1:]:
            token = cast(Token, child)                  # postfix operators are tokens
            if token.type == "TRANSPOSE":              # x⊤, x.T
                token = Token.new_borrow_pos("POSTFIX", "ᵀ", token)
            draft = self.postfix(draft, token, self.text[_start(node):_end(token)])
        return draft

    def postfix(self, operand: _Draft, token: Token, text: str) -> _Draft:
        kind = _postfix_kind(str(token))
        if kind is None and (token.startswith(".") or "∘" in token or "circ" in token):
            raise self.fail("an elementwise power takes a number: A.^2, x.^{1/2} or A^{∘0.5}",
                            token)
        if kind is None:
            raise self.fail(f"after '^' write T, -1, -T or a number (x^2, x^0.5, x^{{1/2}}, "
                            f"x^(1/2)), not {token[1:]!r}" if len(token) > 1 else
                            "after '^' write T, -1, -T or a number (x^2, x^0.5, x^{1/2}, "
                            "x^(1/2))", token)
        at = _position(token)
        if isinstance(kind, tuple):
            return self.element_power(operand, kind[1], token, text)
        if kind == "T":
            if operand.number is not None:
                return replace(operand, text=text)
            return _Draft(Transpose, (operand,), operand.shape[::-1], at, text)
        if kind == "-T":
            inverse = self.power(operand, -1, token, text)
            if inverse.number is not None:
                return inverse
            return _Draft(Transpose, (inverse,), inverse.shape[::-1], at, text)
        return self.power(operand, kind, token, text)

    def power(self, operand: _Draft, k: int, token: Token, text: str) -> _Draft:
        limit = current_limits().max_exponent
        if limit and abs(k) > limit:
            raise self.fail(f"exponent too large: at most {limit}, the limit "
                            + raise_it("max_exponent"), token)
        at = _position(token)
        if operand.number is not None:
            if operand.number == 0 and k < 0:
                raise self.fail("division by zero", token)
            value = self.number_power(operand.number, k, token)
            return _Draft(lambda: _rational(value), (), operand.shape, at, text, value)
        if not is_integer(k) and not self.sizes.is_scalar(operand.shape):
            raise self.fail(f"{_quote(operand.text)} is {self.sizes.show_shape(operand.shape)}: "
                            f"a power {k} exists only of a scalar; for its entries write "
                            f"{_quote(operand.text)}.^{{{k}}}", token)
        if not self.sizes.is_scalar(operand.shape):
            what = "the inverse" if k == -1 else "a matrix power"
            self.require_square(operand, what, token)
        make = _inverse if k == -1 else (lambda x: Power(x, k))
        return _Draft(make, (operand,), operand.shape, at, text)

    def number_power(self, number: Fraction, k, token) -> Fraction:
        """An exact power of a number: ``4^{1/2}`` is 2; ``2^{1/2}`` is not a fraction."""
        if is_integer(k):
            return number ** int(k)
        value = sympy.Rational(number.numerator, number.denominator) ** k
        if not value.is_Rational:
            raise self.fail(f"{number}^{{{k}}} is not a fraction: write a decimal such as "
                            f"{float(value):.6g}", token)
        return Fraction(int(value.p), int(value.q))

    def kron(self, left: _Draft, right: _Draft, at, text: str) -> _Draft:
        sizes = self.sizes
        shape = tuple(sizes.product(left.shape[k], right.shape[k]) for k in (0, 1))
        if None in shape:
            unknown = left if None in (sizes.value(s) for s in left.shape) else right
            raise self.fail(f"the Kronecker product needs the shape of {_quote(unknown.text)}, "
                            f"which is {sizes.show_shape(unknown.shape)}: declare its sizes", at)
        return _Draft(Kron, (left, right), shape, _position(at), text)

    def element_power(self, operand: _Draft, k: int, token: Token, text: str) -> _Draft:
        limit = current_limits().max_exponent
        if limit and abs(k) > limit:
            raise self.fail(f"exponent too large: at most {limit}, the limit "
                            + raise_it("max_exponent"), token)
        if operand.number is not None:
            return self.power(operand, k, token, text)
        return _Draft(lambda x: ElementPower(x, k), (operand,), operand.shape, _position(token), text)

    def require_square(self, operand: _Draft, what: str, at) -> None:
        if not self.sizes.unify(operand.shape[0], operand.shape[1]):
            raise self.fail(f"{what} needs a square matrix, but {_quote(operand.text)} is "
                            f"{self.sizes.show_shape(operand.shape)}", at)

    def read_call(self, node: Tree, order: int = 0) -> _Draft:
        """``name(args)``: a row of the function tables, or an unspecified function
        (``order`` primes: ``f'(x)`` is f′ applied to x)."""
        token, args = _call_parts(node)
        name = str(token).strip()
        order = getattr(node, "order", order)
        if self.is_unspecified(name):
            return self.unspecified(name, order, args, token, node)
        if name not in FUNCTIONS:
            raise self.unknown_function(name, token)
        if order:
            raise self.fail(f"{name}' is not a function: write the derivative out, or declare "
                            f"an unspecified function (f : function) and write f'(…)", token)
        if name == "log" and len(args) == 1 and _is_call(self.as_call(args[0]), "det"):
            name, args = "logdet", _call_parts(self.as_call(args[0]))[1]
        arity = CALLS[SPELLINGS[name]].arity if name in SPELLINGS else 1
        if len(args) != arity:
            wanted = {1: "one argument", 2: "two arguments"}[arity]
            raise self.fail(f"{name} takes {wanted}, got {len(args)}", token)
        operands = [self.expr(arg) for arg in args]
        return self.function(name, operands, token, node)

    def as_call(self, node):
        """``det (X)``, a product of a name and a bracket, as the call it is read as."""
        if isinstance(node, Tree) and node.data == "product":
            items = self.calls_in_product(node.children)
            return items[0] if len(items) == 1 else node
        return node

    def function(self, name: str, operands: list, token: Token, node: Tree) -> _Draft:
        """A table row applied: its shape rule infers the shape, or says what is wrong."""
        if name in ELEMENTWISE:
            canonical = ALIASES[name]
            return self.draft(lambda x: Apply(canonical, x), operands, operands[0].shape, node, token)
        row = CALLS[SPELLINGS[name]]
        shape = SHAPE_RULES[row.shape](self, row, operands, token)
        return self.draft(row.make, operands, shape, node, token)

    def same_shape(self, row, operands, token) -> tuple:
        return operands[0].shape

    def any_to_scalar(self, row, operands, token) -> tuple:
        return self.sizes.scalar()

    def square_to_scalar(self, row, operands, token) -> tuple:
        self.require_square(operands[0], row.name, token)
        return self.sizes.scalar()

    def square_to_vector(self, row, operands, token) -> tuple:
        self.require_square(operands[0], row.name, token)
        return (operands[0].shape[0], self.sizes.constant(1))

    def inverse_shape(self, row, operands, token) -> tuple:
        if not self.sizes.is_scalar(operands[0].shape):
            self.require_square(operands[0], "the inverse", token)
        return operands[0].shape

    def vector_operand(self, row, operand, token) -> None:
        if not self.sizes.unify(operand.shape[1], self.sizes.constant(1)):
            raise self.fail(f"{row.name} needs a {'' if row.name == 'Diag' else 'column '}vector, "
                            f"but {_quote(operand.text)} is "
                            f"{self.sizes.show_shape(operand.shape)}{row.hint}", token)

    def vector_to_same(self, row, operands, token) -> tuple:
        self.vector_operand(row, operands[0], token)
        return operands[0].shape

    def vector_to_scalar(self, row, operands, token) -> tuple:
        self.vector_operand(row, operands[0], token)
        return self.sizes.scalar()

    def vector_to_square(self, row, operands, token) -> tuple:
        self.vector_operand(row, operands[0], token)
        return (operands[0].shape[0],) * 2

    def vec_shape(self, row, operands, token) -> tuple:
        operand = operands[0]
        length = self.sizes.product(*operand.shape)
        if length is None:
            raise self.fail(f"vec needs the shape of {_quote(operand.text)}, which is "
                            f"{self.sizes.show_shape(operand.shape)}: declare its sizes", token)
        return (length, self.sizes.constant(1))

    def kron_shape(self, row, operands, token) -> tuple:
        left, right = operands
        return self.kron(left, right, token, "").shape

    # ------------------------------------------------ unspecified functions

    def is_unspecified(self, name: str) -> bool:
        """Declared ``f : function``, or a conventional name (f, g_1, φ) that names no variable."""
        if name in self.functions:
            return True
        return name not in self.names and name not in self.inputs and name not in FUNCTIONS \
            and re.fullmatch(_CONVENTION_NAME, name) is not None

    def unspecified(self, name: str, order: int, args, token, node) -> _Draft:
        if len(args) != 1:
            raise self.fail(f"{name} is an elementwise function of one argument, "
                            f"got {len(args)}", token)
        if order > 2:
            raise self.fail(f"{name}: at most a second derivative ({name}'') is supported", token)
        self.functions.setdefault(name, token)
        operand = self.expr(args[0])
        return self.draft(lambda x: Unspecified(name, x, order), (operand,), operand.shape,
                          node, token)

    def applied_by_convention(self, name: str) -> bool:
        """A conventional function name (f, g_1) applied somewhere in the chain cannot also
        be a variable elsewhere: ``f'x`` beside ``f(x)`` would be read two ways."""
        if not self.is_unspecified(name):
            return False
        pattern = rf"(?<![A-Za-z0-9_]){re.escape(name)}[ \t]*['′]*[ \t]*\("
        return re.search(pattern, self.uncommented) is not None

    @functools.cached_property
    def uncommented(self) -> str:
        """The text without its ``#`` comments (a comment's ``f(x)`` applies nothing)."""
        return re.sub(r"#[^\n]*", "", self.text)

    def unknown_function(self, name: str, token: Token) -> DeriveError:
        """The nearest names that exist, and how to say what was meant instead (difflib is
        imported here: only a mistake needs it, and a cold start saves its import)."""
        import difflib
        names = sorted(FUNCTIONS)
        near = difflib.get_close_matches(name, names, n=3, cutoff=0.6) \
            or difflib.get_close_matches(name, names, n=3, cutoff=0.0)
        variable = name in self.names or name in self.inputs
        product = (f"; {name} is a variable: for a product write {name} (…) or {name}*(…)"
                   if variable else f"; for a product of a variable {name} with (…) write "
                   f"{name}*(…)")
        return self.fail(f"unknown function {name} (nearest: {', '.join(near)}): for an "
                         f"unspecified elementwise function declare `{name} : function`{product}",
                         token)

    def calls_in_product(self, items: list) -> list:
        """``tr (A)``, ``f_1 (x)``, ``f'(x)``: a function's name juxtaposed with a bracket
        is its application, as ``tr(A)`` is; a variable's name stays a factor (``W (x+y)``)."""
        out, i = [], 0
        while i < len(items):
            item = items[i]
            head = self.function_head(item)
            following = items[i + 1] if i + 1 < len(items) else None
            if head is not None and isinstance(following, Tree):
                merged = _with_call_first(following, *head)
                if merged is not None:
                    out.append(merged)
                    i += 2
                    continue
            out.append(item)
            i += 1
        return out

    def function_head(self, item):
        """``(name token, order)`` when ``item`` is a function's name, maybe with primes."""
        primes = []
        if isinstance(item, Tree) and item.data == "postfix":
            item, primes = item.children[0], item.children[1:]
            if not all(str(p) in PRIMES for p in primes):
                return None
        if not (isinstance(item, Tree) and item.data == "name"):
            return None
        token = item.children[0]
        name = str(token)
        if not self.is_unspecified(name) and (name not in FUNCTIONS or primes):
            return None
        return token, len(primes)

    # ------------------------------------------------ wrt, and the finished chain

    def wrt_names(self, override) -> tuple:
        """The inputs to differentiate with respect to, from ``--wrt`` or the ``wrt`` line."""
        if override:
            names = [n for item in override for n in re.split(r"[,\s]+", item) if n]
            entries = [(name, None) for name in names]
        else:
            entries = [(str(t), t) for t in self.wrt_tokens]
        entries += self.hessian_names(entries)
        entries += [e for e in self.claimed_wrt() if e[0] not in {n for n, _ in entries}]
        if not entries and self.jacobian_tokens:
            return ()                        # only Jacobians asked for: no gradient
        if not entries:
            last = self.definitions[-1][0]
            raise self.fail("nothing to differentiate with respect to: add a line `wrt W` "
                            "or pass --wrt", (last.line, 1))
        chosen = []
        for name, token in entries:
            if name == "*":
                chosen.append(name)
                continue
            self.check_wrt(name, token)
            if name not in chosen:
                chosen.append(name)
        return tuple(chosen)

    def hessian_names(self, entries) -> list:
        """The Hessian's names, each checked, that the gradient needs besides ``entries``: a
        Hessian is the derivative of the gradient, so its names are differentiated too (with
        no wrt line, they are the wrt, and the wrt's line is the hessian's)."""
        if self.hessian is None:
            return []
        tokens = [cast(Token, t) for t in self.hessian.children]
        for token in tokens:
            self.check_wrt(str(token), token, "hessian")
        if not self.wrt_tokens:
            self.wrt_line = self.wrt_line or _statement_start(self.hessian)[0]
        given = {name for name, _ in entries}
        return [(str(t), t) for t in tokens if str(t) not in given]

    def check_wrt(self, name: str, token, statement: str = "wrt") -> None:
        problem = None
        if name in self.defined:
            defined_at = self.defined[name][1]
            problem = f"{name} is defined on line {defined_at.line}; {statement} needs an input"
        elif name not in self.inputs:
            problem = f"{name} is not an input of this chain"
            inputs = ", ".join(self.inputs)
            problem += f" (its inputs: {inputs})" if statement == "hessian" and inputs else ""
        if problem and token is None:
            raise DeriveError(f"--wrt {name}: {problem}", self.source)
        if problem:
            raise self.fail(f"{statement} {name}: {problem}", token)

    def hessian_request(self) -> tuple:
        """``Chain.hessians``: ``((names, line, column),)`` or ``()``."""
        if self.hessian is None:
            return ()
        names = []
        for token in self.hessian.children:
            names += [str(token)] * (str(token) not in names)
        return ((tuple(names), *_statement_start(self.hessian)),)

    def refuse_hessian_of_non_scalar(self, objective: Definition) -> None:
        """A Hessian is of a scalar: say so where it is asked, and what can be asked."""
        if self.hessian is None or objective.expr.is_scalar:
            return
        name, names = objective.symbol.name, ", ".join(str(t) for t in self.hessian.children)
        first = str(self.hessian.children[0])
        raise self.fail(f"hessian {names}: the objective {name} is "
                        f"{show_shape(objective.expr.shape)}, and a Hessian is of a scalar: "
                        f"ask `jacobian {name} wrt {first}` for its first derivative, or end the "
                        f"chain with a scalar of {name} (such as E = {name}:{name}) and ask for "
                        "its Hessian", _statement_start(self.hessian))

    def finish(self, wrt_names: tuple, overridden: bool) -> Chain:
        inputs = []
        for name, info in self.inputs.items():
            symbol = Symbol(name, self.sizes.shape(info.shape), props=info.props)
            self.symbols[name] = symbol
            inputs.append(Input(symbol, info.declared, info.line, info.column))
        inputs.sort(key=lambda item: (item.line, item.column))
        self.check_inferred(inputs)
        definitions = [self.define(name, rhs, draft)
                       for (name, rhs), draft in zip(self.definitions, self.drafts)]
        objective = definitions[-1]
        if "*" in wrt_names:
            wrt_names = _every_input_used(definitions, wrt_names, [i.symbol.name for i in inputs])
            if not wrt_names:
                self.nothing_to_differentiate(overridden)
        self.refuse_hessian_of_non_scalar(objective)
        if wrt_names and not objective.expr.is_scalar:
            name = objective.symbol.name
            raise self.fail(f"the objective {name} must be a scalar, but it is "
                            f"{show_shape(objective.expr.shape)}: a gradient is of a scalar; for "
                            f"the derivative of {name} ask for its Jacobian, a line "
                            f"`jacobian {name} wrt {wrt_names[0]}`",
                            (objective.line, objective.column))
        chain = Chain(inputs=tuple(inputs), definitions=tuple(definitions),
                      wrt=tuple(self.symbols[n] for n in wrt_names), title=_title(self.text),
                      source=self.source, wrt_line=0 if overridden else self.wrt_line,
                      warnings=tuple(self.notices(wrt_names)), hessians=self.hessian_request())
        return replace(chain, jacobians=self.jacobians(chain)) \
            if self.jacobian_tokens else chain

    def jacobians(self, chain: Chain) -> tuple:
        """``(F, X, line, column)`` of each ``jacobian F wrt X``: F a defined variable, X an
        input or a defined variable F depends on (a defined X is held independent)."""
        found: list = []
        for f_token, x_tokens in self.jacobian_tokens:
            f = str(f_token)
            if f not in self.defined:
                what = "an input: a Jacobian is of a defined variable" if f in self.inputs \
                    else "not defined in this chain"
                raise self.fail(f"jacobian {f}: {f} is {what}", f_token)
            for x_token in x_tokens:
                x = str(x_token)
                if x not in self.defined and x not in self.inputs:
                    raise self.fail(f"jacobian {f} wrt {x}: {x} is not an input or a defined "
                                    "variable of this chain", x_token)
                if f not in chain.varying([x]):
                    raise self.fail(f"jacobian {f} wrt {x}: {f} does not depend on {x}, so "
                                    f"∂{f}/∂{x} is 0", x_token)
                request = (f, x, *_at(cast(Token, f_token)))
                if all(r[:2] != request[:2] for r in found):
                    found.append(request)
        return tuple(found)

    def check_inferred(self, inputs) -> None:
        """Every size of an ``I`` or ``1`` is some input's: the check and the NumPy module
        learn sizes only from the inputs."""
        known = {s for item in inputs for size in item.symbol.shape for s in size.free_symbols}
        for n, node, what in self.inferred:
            if self.sizes.size(n).free_symbols - known:
                raise self.fail(f"cannot tell {what}: no input has a size it could take", node)

    def nothing_to_differentiate(self, overridden: bool) -> None:
        """``wrt *`` where the objective depends on no input."""
        objective = self.definitions[-1][0]
        message = f"wrt *: {objective} depends on no input, so there is nothing to differentiate"
        star = [t for t in self.wrt_tokens if str(t) == "*"]
        if overridden or not star:
            raise DeriveError("--" + message, self.source)
        raise self.fail(message, star[0])

    def define(self, name_token: Token, rhs: Tree, draft: _Draft) -> Definition:
        expr = self.build(draft)
        name = str(name_token)
        symbol = Symbol(name, expr.shape, props=properties_of(expr))
        self.symbols[name] = symbol
        return Definition(symbol, expr, *_at(name_token), _position(rhs)[1])

    def build(self, draft: _Draft) -> Expr:
        """The finished node; a shape error the drafts missed is placed at its operator."""
        kids = [self.build(kid) for kid in draft.kids]
        try:
            return draft.make(*kids)
        except ShapeError as error:
            raise self.fail(str(error), draft.at) from None


SHAPE_RULES = {     # operations.Call.shape -> the reader's inference (and error wording)
    "same": _Reader.same_shape,
    "any → scalar": _Reader.any_to_scalar,
    "square → scalar": _Reader.square_to_scalar,
    "square → vector": _Reader.square_to_vector,
    "vector → same": _Reader.vector_to_same,
    "vector → scalar": _Reader.vector_to_scalar,
    "vector → square": _Reader.vector_to_square,
    "inverse": _Reader.inverse_shape,
    "vec": _Reader.vec_shape,
    "kron": _Reader.kron_shape,
}


def _every_input_used(definitions, wrt_names, input_names) -> tuple:
    """``wrt *``: every input with a path to the objective, in the order declared."""
    needed = {definitions[-1].symbol.name}
    for definition in reversed(definitions):
        if definition.symbol.name in needed:
            needed |= {n.name for n in walk(definition.expr) if isinstance(n, Symbol)}
    star = [name for name in input_names if name in needed]
    named = [name for name in wrt_names if name != "*"]
    return tuple(dict.fromkeys(named + star))


def _split_name(name: str, known: set) -> list | None:
    """``Wx`` → ``[W, x]`` when the name is two or more names of ``known`` glued together."""
    if len(name) < 2 or _convention(name) == "scalar" and name[0].isascii():
        return None                         # alpha, beta_1: Greek letters spelled out
    ways: dict = {0: []}
    for end in range(1, len(name) + 1):
        for start in sorted(ways):
            if start < end and name[start:end] in known and end not in ways:
                ways[end] = ways[start] + [name[start:end]]
    parts = ways.get(len(name))
    return parts if parts and len(parts) > 1 else None


def _postfix_kind(token: str):
    """``'T'``, ``'-T'``, an exponent (an int, or an exact SymPy Rational for ``^{1/2}``,
    ``^{-1/3}``, ``^0.5``), ``("elementwise", k)`` for ``.^k`` and ``^{∘k}``, or None for
    an exponent we cannot read."""
    fixed = {"'": "T", "′": "T", "ᵀ": "T", "²": 2, "³": 3, "⁻¹": -1, "⁻ᵀ": "-T"}
    if token in fixed:
        return fixed[token]
    elementwise = token.startswith(".")
    body = "".join(token[1 + elementwise:].split()).removeprefix("{").removesuffix("}")
    for circ in ("∘", "\\circ", "\\odot"):
        if not elementwise and body.startswith(circ):
            elementwise, body = True, body[len(circ):].removeprefix("{").removesuffix("}")
    if elementwise:                              # A.^k, A^{∘k}: ("elementwise", k)
        k = _exponent(body)
        return None if k is None else ("elementwise", k)
    if body in ("T", "\\top", "\\intercal", "⊤"):
        return "T"
    if body in ("-T", "-\\top", "-\\intercal", "-⊤"):
        return "-T"
    return _exponent(body)


def _exponent(body: str):
    """``3`` → 3, ``1/2`` or ``0.5`` → Rational(1, 2), ``(1/3)`` too; None if not a number.
    A huge whole number becomes 10⁹, for the max_exponent limit to refuse."""
    body = body.removeprefix("(").removesuffix(")") if body.startswith("(") else body
    if re.fullmatch(r"-?[0-9]+", body):
        return int(body) if len(body) < 10 else 10 ** 9
    if re.fullmatch(r"-?[0-9]{1,9}(/[0-9]{1,9}|\.[0-9]{1,9})", body):
        if re.fullmatch(r"-?[0-9]+/0+", body):
            return None
        k = sympy.Rational(body)
        return int(k) if k.is_Integer else k
    return None


def _with_call_first(node: Tree, token: Token, order: int) -> Tree | None:
    """``node`` with its leftmost bracket ``( … )`` made the call ``name( … )``: the call
    binds as an atom does, so ``f (x)ᵀ`` is ``f(x)ᵀ`` and ``f (x) ∘ y`` is ``f(x) ∘ y``."""
    if node.data == "paren":
        call = Tree("call", [token, *node.children], node.meta)
        # an extra attribute on this one tree, read back by read_call (getattr, with a default)
        call.order = order  # type: ignore[attr-defined]
        return call
    if node.data in ("postfix", "hada") and isinstance(node.children[0], Tree):
        first = _with_call_first(node.children[0], token, order)
        if first is not None:
            return Tree(node.data, [first, *node.children[1:]], node.meta)
    return None


def _call_parts(node: Tree) -> tuple:
    """The function-name token and the argument trees of a call."""
    return node.children[0], [c for c in node.children if isinstance(c, Tree)]


def _is_call(node, name: str) -> bool:
    return (isinstance(node, Tree) and node.data == "call"
            and str(node.children[0]).strip() == name and len(_call_parts(node)[1]) == 1)


def _title(text: str) -> str | None:
    for line in text.split("\n"):
        if "#" in line:
            match = _TITLE.match(line[line.index("#"):])
            if match:
                return " ".join(match.group(1).split())   # no line break (\r, \u2028) survives
    return None


# ---------------------------------------------------------------- claims


_CLAIM = r"[d∂]\s*(\S+?)\s*/\s*[d∂]\s*(\S+)"     # compiled (and cached by re) when a claim is read


def _claim_names(token: Token) -> tuple:
    """``dE/dW`` → ((E, its place), (W, its place))."""
    match = cast(re.Match, re.fullmatch(_CLAIM, str(token)))   # the grammar's DERIV is this shape
    line, column = _at(token)
    return ((match.group(1), (line, column + match.start(1))),
            (match.group(2), (line, column + match.start(2))))


def claimed_expression(chain: Chain, tree: Tree, text: str, source: Source, wrt: str,
                       functions=()) -> Expr:
    """A claimed ∂E/∂W read over the finished ``chain``: only its names, at their sizes, and
    of W's shape; anything else is a located error."""
    reader = _ClaimReader(text, source, chain, functions)
    return reader.read(tree, wrt, f"∂{chain.objective.symbol.name}/∂{wrt}")


def parse_claim(chain: Chain, text: str, source_name: str = "--claim") -> tuple:
    """``--claim 'W = EXPR'`` (EXPR in the chain syntax, over the chain's names) → (W, Expr);
    errors are placed in ``text``."""
    source = Source(text, source_name)
    _check_size(text, source)
    statements = _syntax_tree(text, source).children if "=" in text else []
    if len(statements) != 1 or statements[0].data != "defn":
        raise DeriveError(f"--claim {text!r}: write W = EXPR (the claimed gradient with "
                          "respect to the input W, in the chain syntax)")
    name_token, tree = statements[0].children
    name = str(name_token)
    item = chain.input_named(name)
    if item is None:
        defined = chain.definition_of(Symbol(name))
        problem = (f"{name} is defined on line {defined.line}; a claim is about the gradient "
                   "with respect to an input" if defined is not None else
                   f"{name} is not an input of this chain (inputs: "
                   f"{', '.join(i.symbol.name for i in chain.inputs)})")
        raise DeriveError(f"--claim {name}: {problem}", source, *_at(cast(Token, name_token)))
    functions = {n.name for d in chain.definitions for n in walk(d.expr)
                 if isinstance(n, Unspecified)}
    return name, claimed_expression(chain, tree, text, source, name, dict.fromkeys(functions))


class _ClaimReader(_Reader):
    """Reads a claim over a finished chain: every name is the chain's, with its final
    sizes, so a claim can neither add an input nor move a size of the chain."""

    def __init__(self, text: str, source: Source, chain: Chain, functions):
        super().__init__(text, source)
        symbols = [i.symbol for i in chain.inputs] + [d.symbol for d in chain.definitions]
        self.fixed = {s.name: tuple(self.sizes.rigid(n) for n in s.shape) for s in symbols}
        self.symbols = {s.name: s for s in symbols}
        self.names = {s.name: ("a variable", None) for s in symbols}
        self.functions = dict(functions)
        self.chain_inputs = chain.inputs
        self.size_symbol_names = {s.name for s in chain.size_symbols}

    def lookup(self, name: str, token: Token) -> tuple:
        if name in self.fixed:
            return self.fixed[name]
        if name in self.size_symbol_names:
            raise self.fail(f"{name} is a size of the chain, not a variable", token)
        raise self.fail(f"{name} is not a name of this chain: a claim is written over the "
                        "chain's inputs and definitions", token)

    def read(self, tree: Tree, wrt: str, label: str) -> Expr:
        """The claim's expression, of ``wrt``'s shape (which also sizes its ``I`` and ``1``)."""
        _check_depth(tree, self.fail)
        draft = self.expr(tree)
        if draft.number == 0:             # 0: the zero of W's shape, as derive prints it
            return Zero(self.symbols[wrt].shape)
        if not self.sizes.unify_shapes(draft.shape, self.fixed[wrt]):
            raise self.fail(f"the claimed {label} is {self.sizes.show_shape(draft.shape)}, but "
                            f"{wrt} is {self.sizes.show_shape(self.fixed[wrt])}: a gradient has "
                            "the shape of its variable", tree)
        self.sizes.name_unknowns(set(self.fixed) | self.size_symbol_names)
        self.check_inferred(self.chain_inputs)
        return self.build(draft)
