"""Pasted LaTeX → Chain: the second front end, feeding the chain syntax's own reader.

A question's text is prose with formulas. This module finds the formulas (``$…$``,
``$$…$$``, ``\\[…\\]``, ``\\(…\\)``, align/aligned/eqalign rows), parses each with
``latex.lark``, rewrites the rules only LaTeX has (``\\frac``, ``|X|``, ``\\langle a, b\\rangle``)
into the chain grammar's trees, and classifies each formula as a definition, a declaration,
a request or a claim. The statement trees then go to ``parse._Reader``, exactly as the
chain syntax's do: one tree, two front ends. Tokens keep their place in the pasted text,
so every error points into it. What is not read is reported, never dropped.
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import re
from dataclasses import dataclass
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from .chain import Chain
from .errors import DeriveError, Notice, Source
from .expr import Number, Zero, show_shape
from .limits import tick
from .parse import (IMPLIES, _at, _cache_file, _check_size, _convention, _first_token,
                    _last_token, _Reader, _syntax_tree, looks_like_latex, parse_chain,
                    refused_character)

# ---------------------------------------------------------------- tables

# function words as LaTeX writes them → the chain syntax's names
FUNCTION_WORDS = {
    "tr": "tr", "Tr": "tr", "trace": "tr", "Trace": "tr", "det": "det", "logdet": "logdet",
    "log": "log", "ln": "log", "exp": "exp", "sigma": "sigma", "sigmoid": "sigma",
    "tanh": "tanh", "Diag": "Diag", "diagm": "Diag", "diag": "diag", "inv": "inv",
    "sqrt": "sqrt", "softplus": "softplus", "softmax": "softmax", "logsumexp": "logsumexp",
    "LSE": "logsumexp", "vec": "vec", "kron": "kron", "sin": "sin", "cos": "cos", "tan": "tan",
    "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan", "sinh": "sinh", "cosh": "cosh",
    "abs": "abs", "sign": "sign", "sgn": "sign", "relu": "relu", "ReLU": "relu",
    "log1p": "log1p", "sum": "sum", "norm": "norm",
}
GREEK_VARIANTS = {"varepsilon": "epsilon", "vartheta": "theta", "varphi": "phi", "varpi": "pi",
                  "varrho": "rho", "varsigma": "sigma"}
UNICODE_GREEK = dict(zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ",
                         ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
                          "pi rho sigma tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi "
                          "Pi Sigma Upsilon Phi Psi Omega").split()))
GREEK_LETTERS = {v: k for k, v in UNICODE_GREEK.items()}
# decorations that only style a letter (bold, italic, an arrow): x and \mathbf{x} are one name
STYLES = {"mathbf", "boldsymbol", "bm", "textbf", "mathbfit", "mathit", "mathsf", "mathcal",
          "mathscr", "pmb", "vec", "underline", "mathrm", "operatorname", "text", "textrm",
          "textit", "rm"}
# accents that make a new name: \hat y is y_hat, which the printer writes \hat{y} again
ACCENTS = {"hat": "hat", "widehat": "hat", "bar": "bar", "overline": "bar", "tilde": "tilde",
           "widetilde": "tilde", "check": "check", "breve": "breve", "dot": "dot", "ddot": "ddot"}
HOPS = {r"\circ": "∘", r"\odot": "∘", r"\oslash": "⊘", r"\otimes": "⊗", "∘": "∘", "⊙": "∘",
        "⊘": "⊘", "⊗": "⊗"}
EQUALS = ("=", ":=", r"\coloneqq", r"\triangleq", r"\equiv", r"\doteq", r"\stackrel", r"\overset")
MEMBERSHIP = (r"\in", "∈")
# what LaTeX writes for an operation derive does not read: a hint instead of "unexpected"
UNSUPPORTED_HINTS = {
    r"\sum": "a sum over indices: write it with matrices (xᵀy, tr(…), ‖…‖², 1ᵀx)",
    r"\prod": "a product over indices",
    r"\int": "an integral", r"\max": "max", r"\min": "min", r"\mathbb": "a blackboard letter",
    r"\mathbb{E}": "an expectation", r"\lim": "a limit", r"\partial": "a partial derivative",
}
# the formulas of derive's own notation sentence ("where $(:)$ denotes …"): pasted back, quiet
DERIVE_NOTATION = {"(:)", r"(\circ)", r"A:B=\operatorname{tr}(A^{T}B)", r"A:B=\mathrm{tr}(A^TB)",
                   r"A:B={\rmtr}(A^TB)", r"\barz", r"\partialE/\partialz", "z"}
FRESH_OBJECTIVES = ("f", "E", "L", "J", "F", "g")

_DELIMITERS = re.compile(r"\\\$|\$\$|\$|\\\[|\\\(|\\begin\s*\{\s*(align|aligned|equation|gather|"
                         r"multline|eqnarray|split|alignat|flalign)\*?\s*\}")
_CLOSERS = {"BAR_CLOSE": "BAR_OPEN", "DET_CLOSE": "DET_OPEN"}
_WRAPPERS = re.compile(r"\\begin\s*\{\s*\w+\*?\s*\}(\{[^{}]*\})?|\\end\s*\{\s*\w+\*?\s*\}|"
                       r"\\eqalign(no)?\s*\{|\\label\s*\{[^{}]*\}|\\tag\*?\s*\{[^{}]*\}|"
                       r"\\(nonumber|notag)(?![A-Za-z])")
_PROSE_IN_MATH = re.compile(r"\\(?:text|mbox|textrm|mathrm|hbox)\s*\{([^{}]*)\}")
PROSE_WORDS = {"and", "where", "with", "for", "if", "then", "or", "given", "s.t.", "st", "so",
               "i.e.", "e.g.", "when", "while", "let", "since", "hence", "thus", "also"}
_WRT_BEFORE = re.compile(r"(?:respect\s+to|w\.\s*r\.\s*t\.?|\bwrt|\bover)\s*(?:the\s+\w+\s+)?$",
                         re.IGNORECASE)
_ROW_BREAK = re.compile(r"\\\\(\s*\[[^\]]*\])?|\\cr(?![A-Za-z])")
# what may end a formula without being part of it: punctuation, spaces, and "= ?" (the
# unknown the asker wants, as in \frac{\partial J}{\partial X} = ?)
_TRAILING = re.compile(r"(\s|[.,;?]|=\s*\?+|\\[,;:! ]|\\q?quad(?![A-Za-z])|\\text\s*\{\s*[.,;]?\s*\})*$")


def read_chain(text: str, source_name: str = "<-e>", wrt: list[str] | None = None,
               language: str | None = None) -> Chain:
    """Either front end: ``language`` ``"latex"``, ``"chain"`` or None (tell from the text)."""
    if language not in (None, "latex", "chain"):
        raise DeriveError(f"unknown input language {language!r}: choose chain or latex")
    if language == "chain" or (language is None and not looks_like_latex(text)):
        return parse_chain(text, source_name, wrt)
    return parse_latex(text, source_name, wrt)


def parse_latex(text: str, source_name: str = "<-e>", wrt: list[str] | None = None) -> Chain:
    """Read pasted LaTeX; a mistake in a formula it must read is a DeriveError placed in ``text``."""
    source = Source(text, source_name)
    _check_size(text, source)
    control = refused_character(text)
    if control:
        line, column = _Positions(text).at(control.start())
        raise DeriveError(f"unexpected character {control.group()!r}", source, line, column)
    try:
        return _Document(text, source).chain(wrt)
    except RecursionError:
        raise DeriveError("formula nested too deeply", source, 1, 1) from None
    except DeriveError:
        raise
    except (LarkError, ValueError, IndexError, KeyError, TypeError, AttributeError) as error:
        raise DeriveError(f"cannot read this LaTeX ({type(error).__name__})", source, 1, 1) \
            from None


# ---------------------------------------------------------------- syntax


@functools.cache
def _parser() -> Lark:
    return Lark.open("latex.lark", rel_to=__file__, parser="lalr", lexer="contextual",
                     propagate_positions=True, cache=_cache_file("latex"))


def _parse_formula(text: str) -> Tree:
    """The lark tree of one formula. ``\\|`` and ``|`` open where they cannot close, so
    ``\\frac12\\|x\\|^2`` is a product (the lexer alone cannot tell an opening bar)."""
    interactive = _parser().parse_interactive(text)
    for token in interactive.lexer_thread.lex(interactive.parser_state):
        if token.type in _CLOSERS and token.type not in interactive.accepts():
            token = Token.new_borrow_pos(_CLOSERS[token.type], token, token)
        interactive.feed_token(token)
    return interactive.feed_eof()


@dataclass
class _Row:
    """One formula as written: its text with wrappers blanked, and where it starts."""

    text: str
    start: int          # offset in the pasted text
    continues: bool = False   # a row starting with a relation (``&= …``) continues the last


class _Positions:
    """Offsets in the pasted text → (line, column), for tokens parsed out of context."""

    def __init__(self, text: str):
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def at(self, offset: int) -> tuple:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def shift(self, tree, offset: int):
        """Every token of ``tree`` moved by ``offset`` into the pasted text."""
        tokens = [tree] if isinstance(tree, Token) else list(tree.scan_values(lambda v: isinstance(v, Token)))
        for token in tokens:
            token.start_pos = _start_pos(token) + offset
            token.end_pos = cast(int, token.end_pos) + offset
            token.line, token.column = self.at(token.start_pos)
            token.end_line, token.end_column = self.at(token.end_pos)
        return tree


# ---------------------------------------------------------------- finding the formulas


def _math_spans(text: str, source: Source) -> list:
    """(opening, body start, body end, closing end) of every formula; an unclosed delimiter is
    an error at its opening."""
    spans: list[tuple[int, int, int, int]] = []
    position = 0
    positions = _Positions(text)
    while True:
        match = _DELIMITERS.search(text, position)
        if match is None:
            return spans
        opener = match.group(0)
        if opener == "\\$":
            position = match.end()
            continue
        if match.group(1):
            closer = re.compile(r"\\end\s*\{\s*" + match.group(1) + r"\*?\s*\}")
        else:
            closer = re.compile({"$$": r"\$\$", "$": r"(?<!\\)\$", "\\[": r"\\\]",
                                 "\\(": r"\\\)"}[opener])
        end = closer.search(text, match.end())
        if end is None or (opener == "$" and "\n\n" in text[match.end():end.start()]):
            line, column = positions.at(match.start())
            raise DeriveError(f"{opener} opens a formula that is never closed", source,
                              line, column)
        spans.append((match.start(), match.end(), end.start(), end.end()))
        position = end.end()


def _blank(text: str) -> str:
    """Wrappers (``\\begin{aligned}``, ``\\eqalign{``, labels) as spaces, and prose inside math
    (``\\text{ and }``) as a comma, which separates formulas: offsets stay put."""
    text = _WRAPPERS.sub(lambda m: " " * len(m.group(0)), text)
    text = _PROSE_IN_MATH.sub(lambda m: "," + " " * (len(m.group(0)) - 1)
                              if _is_prose(m.group(1)) else m.group(0), text)
    if re.search(r"\\eqalign", text) is None and text.rstrip().endswith("}") and \
            text.count("}") > text.count("{"):
        cut = text.rstrip()
        text = cut[:-1] + " " + text[len(cut):]      # the brace that closed \eqalign{
    return text


def _is_prose(words: str) -> bool:
    """``\\text{ and }``, ``\\text{for all }``: words, not a name such as ``\\text{loss}``."""
    words = words.strip()
    return not words or " " in words or words.lower() in PROSE_WORDS


def _rows(text: str, start: int, end: int) -> list:
    """A formula's rows (``\\\\``, ``\\cr``); a row starting with ``=`` continues the one above."""
    body = text[start:end]
    blanked = _blank(body)
    if blanked.count("{") < blanked.count("}"):
        last = blanked.rfind("}")
        blanked = blanked[:last] + " " + blanked[last + 1:]
    rows: list[_Row] = []
    position = 0
    for piece in list(_ROW_BREAK.finditer(blanked)) + [None]:
        stop = piece.start() if piece else len(blanked)
        row = blanked[position:stop]
        trailing = _TRAILING.search(row)
        row = row[:trailing.start()] if trailing else row
        if row.strip():
            stripped = row.lstrip(" \t\n&")
            continues = bool(rows) and bool(
                re.match(r"(=|:=|\\implies|\\Rightarrow|\\le|\\ge|<|>)", stripped))
            rows.append(_Row(row, start + position, continues))
        position = piece.end() if piece else stop
    return rows


# ---------------------------------------------------------------- the document


@dataclass
class _Formula:
    """A parsed formula: its sides and relations, where it starts, what it says."""

    sides: list
    relations: list
    line: int
    column: int


class _Document:
    """One pasted text: its formulas, its chain-syntax lines, and the statements they make."""

    def __init__(self, text: str, source: Source):
        self.text, self.source = text, source
        self.positions = _Positions(text)
        self.warnings: list = []
        self.mentions: list = []
        self.chain_statements: list = []   # decl and wrt trees from lines outside math
        self.declared: dict = {}           # chain-syntax declared names (for name spellings)
        self.styles: dict = {}             # name -> {styled?: (line, column)}

    def fail(self, message: str, offset: int) -> DeriveError:
        line, column = self.positions.at(offset)
        return DeriveError(message, self.source, line, column)

    def warn(self, line: int, column: int, sentence: str, kind: str = "warning") -> None:
        self.warnings.append(Notice(sentence, line, column, kind))

    # ------------------------------------------------ reading

    def chain(self, wrt) -> Chain:
        spans = _math_spans(self.text, self.source)
        self.read_prose(spans)
        formulas = []
        for _, start, end, _ in spans:
            if "".join(self.text[start:end].split()).strip("`") not in DERIVE_NOTATION:
                formulas.extend(self.formulas(start, end))
        return _Assembly(self, formulas).chain(wrt)

    def read_prose(self, spans) -> None:
        """Pieces of lines outside math that are chain-syntax declarations or ``wrt`` lines
        (``x_0 : 4``, ``wrt W_1``): what the user adds to what the question left out."""
        gaps, position = [], 0
        for opening, _, _, closing in spans:
            gaps.append((position, opening))
            position = closing
        gaps.append((position, len(self.text)))
        for start, end in gaps:
            offset = start
            for piece in self.text[start:end].split("\n"):
                core = piece.strip(" \t.,;")            # "… $E = x'x$. wrt x."
                statement = self.chain_statement(core)
                if statement is not None:
                    self.chain_statements.append(
                        self.positions.shift(statement, offset + piece.find(core)))
                offset += len(piece) + 1

    def chain_statement(self, line: str):
        """The decl or wrt tree of a prose line, or None: prose that looks like a declaration
        but is not one is prose."""
        if not line.strip() or "$" in line or "\\" in line:
            return None
        try:
            statements = _syntax_tree(line, Source(line)).children
        except DeriveError:
            return None
        if len(statements) != 1 or statements[0].data not in ("decl", "wrt", "hessian"):
            return None
        statement = statements[0]
        if statement.data == "decl":
            properties = statement.children[3:]
            if any(str(p) not in IMPLIES for p in properties):
                return None
            self.declared[str(statement.children[0])] = statement.children[0]
        return statement

    def formulas(self, start: int, end: int) -> list:
        out: list[_Formula] = []
        for row in _rows(self.text, start, end):
            formulas = self.formula(row)
            if not formulas:
                continue
            first = formulas[0]
            if row.continues and out and first.sides[0] is None:
                out[-1].relations.extend(first.relations)     # &= … under J = …
                out[-1].sides.extend(first.sides[1:])
                formulas = formulas[1:]
            out.extend(formulas)
        return out

    def formula(self, row: _Row):
        """A row parsed; unreadable rows are errors when they define or declare, else skipped."""
        tick(self.source, self.positions.at(row.start)[0])
        text = row.text
        leading = len(text) - len(text.lstrip(" \t\n&"))
        body = text[leading:]
        offset = row.start + leading
        if row.continues:
            return self.continuation(body, offset)
        try:
            tree = _parse_formula(body)
        except UnexpectedInput as error:
            return self.unreadable(body, offset, error)
        self.positions.shift(tree, offset)
        try:
            return self.split(tree, offset)
        except _Indexed as indexed:
            return self.indexed(body, indexed.token)

    def indexed(self, body: str, token: Token) -> list:
        """``x_{ij}``, ``x^{(i)}``: an entry, not a matrix. An error in a definition, else the
        formula is skipped with a warning."""
        message = (f"{str(token).strip()} is an entry (an index), which derive does not read: "
                   "write the formula with whole vectors and matrices")
        defines_entry = body.lstrip().startswith(str(token))        # A_{ij} = x_i y_j
        if _starts_statement(body) and not defines_entry:
            raise self.fail(message, _start_pos(token))
        self.warn(*_at(token), f"skipped a formula: {message}")
        return []

    def continuation(self, body: str, offset: int):
        """``&= x`` under ``J = …``: parsed after a placeholder name, then joined to its row."""
        placeholder = "Z "
        try:
            tree = _parse_formula(placeholder + body)
        except UnexpectedInput as error:
            return self.unreadable(body, offset, error, shift=len(placeholder))
        self.positions.shift(tree, offset - len(placeholder))
        formulas = self.split(tree, offset)
        formulas[0].sides[0] = None
        return formulas

    def split(self, tree: Tree, offset: int) -> list:
        """The formulas of one row: ``v = Wx, s = \\sigma(v)`` is two (a comma inside a
        relation chain ends one formula and starts the next)."""
        sides = [_normalise(c, self) for c in tree.children[0::2]]
        relations = list(tree.children[1::2])
        formulas, current, rels = [], [sides[0]], []
        for relation, side in zip(relations, sides[1:]):
            rels.append(relation)
            if _is(side, "tuple"):
                *ends, starts = side.children
                current.append(ends[0] if len(ends) == 1 else Tree("tuple", ends))
                formulas.append(self.made(current, rels, offset))
                current, rels = [starts], []
                offset = _start_pos(_first(starts))
            else:
                current.append(side)
        formulas.append(self.made(current, rels, offset))
        return formulas

    def made(self, sides: list, relations: list, offset: int) -> _Formula:
        line, column = self.positions.at(offset)
        return _Formula(sides, relations, line, column)

    def unreadable(self, body: str, offset: int, error: UnexpectedInput, shift: int = 0):
        """A formula lark cannot read: an error if it starts like a definition or a declaration
        (the user meant it), else a warning naming what stopped the reading."""
        position = offset + max(getattr(error, "pos_in_stream", None) or 0, shift) - shift
        if isinstance(error, UnexpectedEOF) or getattr(error, "token", None) is not None \
                and getattr(cast(UnexpectedToken, error).token, "type", "") == "$END":   # has .token
            position = offset + len(body.rstrip())
        message = _unreadable_message(self.text, position, error)
        if _starts_statement(body):
            raise self.fail(message, position)
        line, column = self.positions.at(position)
        self.warn(line, column, f"skipped a formula: {message}")
        return []

    # ------------------------------------------------ names

    def name(self, raw: str, at: Token) -> str:
        """A LaTeX name in chain spelling: ``\\mathbf{W}_{1}`` → ``W_1`` (or ``W1`` when a
        chain-syntax line declared that), ``\\hat y`` → ``y_hat``, ``\\alpha`` → ``alpha``."""
        base, accents, styled, sub = _name_parts(raw)
        if base == "I" and not accents and re.fullmatch(r"[a-z0-9]+", sub):
            sub = ""                                   # I_n is the identity: sizes are inferred
        name = base + "".join("_" + a for a in accents) + ("_" + sub if sub else "")
        for candidate in _spellings(base, accents, sub):
            if candidate in self.declared:
                name = candidate
                break
        seen = self.styles.setdefault(name, {})
        seen.setdefault(styled, (at.line, at.column))
        if len(seen) == 2 and "warned" not in seen:
            seen["warned"] = True
            plain, bold = seen[False], seen[True]
            line, column = bold
            self.warn(line, column, f"{name} is written both plain (line {plain[0]}) and bold "
                             f"(line {bold[0]}): derive reads both as the same {name}")
        return name


def _name_parts(raw: str) -> tuple:
    """(base letter or word, accents, styled?, subscript) of a NAME token's text."""
    raw = raw.strip()
    sub = ""
    depth, cut = 0, None
    for i, c in enumerate(raw):
        depth += {"{": 1, "}": -1}.get(c, 0)
        if c == "_" and depth == 0:
            cut = i
    if cut is not None:
        raw, sub = raw[:cut].strip(), _subscript(raw[cut + 1:])
    accents: list[str] = []
    styled = False
    while True:
        raw = raw.strip()
        if raw.startswith("{") and raw.endswith("}"):
            raw = raw[1:-1].strip()
            continue
        match = re.fullmatch(r"\\([A-Za-z]+)\s*(.*)", raw, re.DOTALL)
        if match is None or match.group(1) not in STYLES | set(ACCENTS):
            break
        if match.group(1) in ACCENTS:
            accents.insert(0, ACCENTS[match.group(1)])
        elif match.group(1) not in ("mathrm", "operatorname", "text", "textrm", "rm"):
            styled = True
        raw = match.group(2)
    if raw.startswith("\\"):
        raw = GREEK_VARIANTS.get(raw[1:], raw[1:])
    raw = UNICODE_GREEK.get(raw, raw)
    return raw, accents, styled, sub


def _subscript(text: str) -> str:
    text = text.strip().removeprefix("{").removesuffix("}").strip()
    match = re.fullmatch(r"\\(?:mathrm|text|textrm|rm|mathit)\s*\{\s*(\w+)\s*\}", text)
    return match.group(1) if match else text


def _spellings(base: str, accents: list, sub: str) -> list:
    """Chain spellings one LaTeX name may stand for, preferred first."""
    bases = [base] + ([GREEK_LETTERS[base]] if base in GREEK_LETTERS else [])
    tail = "".join("_" + a for a in accents)
    out = []
    for b in bases:
        out.append(b + tail + ("_" + sub if sub else ""))
        if sub.isdigit() and not accents:
            out.append(b + sub)
    return out


def _starts_statement(body: str) -> bool:
    """Does the formula start like a definition ``y = …``, ``f(X) := …`` or a declaration
    ``X \\in …``? Decided by the lexer's first tokens, so it holds for unreadable formulas."""
    tokens = []
    try:
        for token in _parser().lex(body):
            tokens.append(token)
            if len(tokens) == 12:
                break
    except LarkError:
        pass
    kinds = "".join({"NAME": "n", "REL": "=", "COMMA": ",", "LPAR": "(", "RPAR": ")"}.get(t.type, "?")
                    for t in tokens)
    if re.match(r"n(\(n(,n)*\))?=", kinds):                  # y = …, f(X) = …, f(x, y) = …
        return True
    if len(tokens) >= 3 and tokens[0].type == "NAME" and tokens[1].type == "COMMA":
        return any(t.type == "REL" and str(t) in MEMBERSHIP for t in tokens)
    return False


def _unreadable_message(text: str, position: int, error) -> str:
    if isinstance(error, UnexpectedCharacters):
        macro = re.match(r"\\[A-Za-z]+(\s*\{\s*\w\s*\})?", text[position:])
        if macro:
            word = macro.group(0).replace(" ", "")
            hint = UNSUPPORTED_HINTS.get(word) or UNSUPPORTED_HINTS.get(macro.group(0).split("{")[0])
            if hint:
                return f"{word} is not supported ({hint})"
            return f"{word} is not supported here"
        return f"unexpected '{text[position]}'"
    token = getattr(error, "token", None)
    if token is None or token.type == "$END":
        return "the formula ends too early (a bracket or an argument is missing)"
    return f"unexpected '{token}'"


# ---------------------------------------------------------------- LaTeX rules → chain rules


def _tok(kind: str, value: str, like: Token) -> Token:
    return Token.new_borrow_pos(kind, value, like)


def _start_pos(token: Token) -> int:
    """Where a token starts in the text; the lexer sets it on every token it makes."""
    return cast(int, token.start_pos)


_first, _last = _first_token, _last_token     # a tree's first and last tokens (parse.py)


def _paren(inner: Tree, opening: Token, closing: Token) -> Tree:
    return Tree("paren", [_tok("LPAR", "(", opening), inner, _tok("RPAR", ")", closing)])


def _call(name: str, args: list, at: Token, closing: Token) -> Tree:
    return Tree("call", [_tok("FUNC", name, at), _tok("LPAR", "(", at), *args,
                         _tok("RPAR", ")", closing)])


def _number_of(tree):
    """The text of a plain number (``2`` or ``{2}``), else None."""
    if isinstance(tree, Tree) and tree.data == "paren":
        return _number_of(tree.children[1])
    if isinstance(tree, Tree) and tree.data == "number" and tree.children[0].type == "NUMBER":
        return str(tree.children[0])
    return None


def _fraction(numerator: Tree, denominator: Tree, at: Token) -> Tree:
    """``\\frac{a}{b}``: ``a / b`` as the chain syntax reads it; numbers fold into one."""
    top, bottom = _number_of(numerator), _number_of(denominator)
    if top is not None and bottom is not None and "." not in top + bottom:
        return Tree("number", [_tok("NUMBER", f"{top}/{bottom}", at)])
    if top == "1":       # the number one, not the ones vector (the chain syntax: a 1 before /)
        numerator = Tree("number", [_tok("NUMBER", "1/1", _first(numerator))])
    return Tree("product", [numerator, _tok("MULOP", "/", at), denominator])


def _postfix_value(raw: str) -> str:
    """``^{\\top}``, ``^\\top``, ``^{\\mathsf{T}}`` → ``^{T}``: what ``parse._postfix_kind`` reads."""
    if raw in ("'", "ᵀ"):
        return raw
    body = re.sub(r"\\(?:mathsf|mathrm|rm|text|mathit)\s*(?:\{\s*(\w)\s*\}|(\w))",
                  lambda m: m.group(1) or m.group(2), raw[1:].strip())
    body = body.removeprefix("{").removesuffix("}")
    body = re.sub(r"\\(?:top|intercal|prime)(?![A-Za-z])|⊤", "T", body)
    body = re.sub(r"\\(?:circ|odot)(?![A-Za-z])", "∘", body)
    return "^{" + "".join(body.split()) + "}"


def _bar(token: Token) -> Token:
    kind = "BAR_CLOSE" if token.type == "BAR_CLOSE" else "BAR_OPEN"
    value = "||_F" if re.search(r"_\s*\{?\s*(\\(mathrm|text|rm)\s*\{?\s*)?F", str(token)) else "||"
    return _tok(kind, value, token)


def _normalise(tree: Tree, document: _Document) -> Tree:
    """LaTeX's trees rewritten into the chain grammar's, bottom up (tokens normalised too)."""
    kids = [_normalise(c, document) if isinstance(c, Tree) else _token(c, document)
            for c in tree.children]
    rewrite = _REWRITES.get(tree.data)
    return rewrite(kids, document) if rewrite else Tree(tree.data, kids, tree._meta)


class _Indexed(Exception):
    """A name with an index subscript or superscript met while normalising a formula."""

    def __init__(self, token: Token):
        super().__init__(str(token))
        self.token = token


_INDEX = re.compile(r"[ijkl]{1,3}|[ijkl][+-]1|\([a-z]\)|\[[a-z0-9]\]")   # x_{ij}, x^{(i)}


def _token(token: Token, document: _Document) -> Token:
    kind = token.type
    if kind == "NAME":
        if _INDEX.fullmatch(_name_parts(str(token))[3]) and len(_name_parts(str(token))[3]) > 1:
            raise _Indexed(token)
        return _tok("NAME", document.name(str(token), token), token)
    if kind == "POSTFIX" and _INDEX.fullmatch(
            str(token)[1:].strip().removeprefix("{").removesuffix("}").strip()):
        raise _Indexed(token)
    if kind == "ONES":
        return _tok("NUMBER", "1", token)
    if kind == "POSTFIX":
        return _tok("POSTFIX", _postfix_value(str(token)), token)
    if kind == "HOP":
        return _tok("HOP", HOPS[str(token)], token)
    if kind == "MULOP":
        return _tok("MULOP", "/" if token == "/" else "*", token)
    if kind == "COLON":
        return _tok("COLON", ":", token)
    if kind in ("BAR_OPEN", "BAR_CLOSE"):
        return _bar(token)
    if kind in ("LPAR", "RPAR"):
        return _tok(kind, "(" if kind == "LPAR" else ")", token)
    if kind in ("FUNC_CALL", "FUNC_BARE"):
        return _tok(kind, _function_name(str(token)), token)
    return token


def _function_name(raw: str) -> str:
    if "rows" in raw:
        return "softmax_rows"
    word = re.sub(r"^(mathrm|operatorname|text|textrm|rm|mathit)\s*", "",
                  raw.lstrip("\\").replace("*", "")).strip(" {}")
    return FUNCTION_WORDS.get(word, word)


def _rewrite_group(kids, document):
    return _paren(kids[1], kids[0], kids[2])


def _rewrite_over(kids, document):
    return _paren(_fraction(kids[1], kids[3], kids[2]), kids[0], kids[4])


def _rewrite_frac(kids, document):
    return _fraction(kids[1], kids[2], kids[0])


def _rewrite_frac_digits(kids, document):
    token = kids[0]
    digits = re.findall(r"[0-9]", str(token))
    return Tree("number", [_tok("NUMBER", f"{digits[0]}/{digits[1]}", token)])


def _rewrite_call(kids, document):
    return Tree("call", [_tok("FUNC", str(kids[0]), kids[0]), *kids[1:]])


def _rewrite_bare_call(kids, document):
    """``\\log\\det X``, ``\\det X Y``: the function takes the product written after it."""
    args = kids[1:]
    arg = args[0] if len(args) == 1 else Tree("product", args)
    return _call(str(kids[0]), [arg], kids[0], _last(arg))


def _rewrite_sqrt(kids, document):
    return _call("sqrt", [kids[2]], kids[0], kids[3])


def _rewrite_exp_e(kids, document):
    arg = kids[1]
    inner = arg.children[1] if arg.data == "paren" else arg
    return _call("exp", [inner], kids[0], _last(arg))


def _rewrite_det(kids, document):
    return _call("det", [kids[1]], kids[0], kids[2])


def _rewrite_angle(kids, document):
    """``\\langle a, b\\rangle`` is ``a : b``, bracketed as the angle brackets bracket it."""
    frob = Tree("frob", [kids[1], _tok("COLON", ":", kids[2]), kids[3]])
    return _paren(frob, kids[0], kids[4])


def _rewrite_postfix(kids, document):
    """``\\|X\\|^2_F``: a subscript written after the square still names the norm."""
    subs = [k for k in kids[1:] if isinstance(k, Token) and k.type == "NORM_SUB"]
    kids = [k for k in kids if not (isinstance(k, Token) and k.type == "NORM_SUB")]
    if subs and not _is(kids[0], "norm"):
        raise document.fail(f"a subscript {str(subs[0]).strip()} here is not supported (indices "
                            "are not read: write it with matrices)", subs[0].start_pos)
    if subs and "F" in str(subs[0]):
        norm = kids[0]
        kids[0] = Tree("norm", [norm.children[0], norm.children[1],
                                _tok("BAR_CLOSE", "||_F", norm.children[2])])
    return kids[0] if len(kids) == 1 else Tree("postfix", kids)


_REWRITES = {"postfix": _rewrite_postfix, "group": _rewrite_group, "over": _rewrite_over,
             "frac": _rewrite_frac,
             "frac_digits": _rewrite_frac_digits, "call": _rewrite_call,
             "bare_call": _rewrite_bare_call, "sqrt": _rewrite_sqrt, "exp_e": _rewrite_exp_e,
             "det": _rewrite_det, "angle": _rewrite_angle}


# ---------------------------------------------------------------- formulas → statements


def _is(tree, *kinds) -> bool:
    return isinstance(tree, Tree) and tree.data in kinds


def _has_differential(tree) -> bool:
    """``dW\\,x``, ``\\partial E``, ``\\frac{\\partial E}{\\partial W}`` inside an expression."""
    if not isinstance(tree, Tree):
        return False
    for node in tree.iter_subtrees():
        if node.data in ("partial", "derivative", "applied"):
            return True
    tokens = list(tree.scan_values(lambda v: isinstance(v, Token)))
    for left, right in itertools.pairwise(tokens):      # d juxtaposed with what follows it
        if left.type == "NAME" and str(left) == "d" and right.type in ("NAME", "LPAR") \
                and left.end_pos <= right.start_pos:
            return True
    return False


@dataclass
class _Request:
    objective: object     # a name (str) or an expression tree
    wrt: list             # NAME tokens
    line: int
    column: int
    name: object = None   # the objective's NAME token, when it is a name


class _Assembly:
    """Formulas → decl/defn/wrt trees for ``parse._Reader``, plus requests, claims, forms."""

    def __init__(self, document: _Document, formulas: list):
        self.document = document
        self.formulas = formulas
        self.declarations: list = []       # decl trees
        self.definitions: list = []        # [name token, rhs tree, alternatives]
        self.natural_wrt: list = []        # from f(X) = …
        self.signatures: dict = {}         # f -> [X] from f(X) = …, for a later \nabla f
        self.requests: list = []
        self.claims: list = []
        self.lone: list = []               # (tree, formula) of lone expressions
        self.differentials: list = []      # (line, column) of formulas with differentials
        self.prose_wrt: list = []          # NAME tokens of "with respect to $X$"
        self.hessian_names: list = []      # NAME tokens of \frac{\partial^2 E}{\partial W\,\partial b}
        self.jacobians: list = []          # (F token, X token) of Jacobian requests

    def warn(self, formula: _Formula, sentence: str, kind: str = "warning") -> None:
        self.document.warn(formula.line, formula.column, sentence, kind)

    def chain(self, wrt) -> Chain:
        for formula in self.formulas:
            self.classify(formula)
        self.mentions()
        statements = self.statements()
        reader = _LatexReader(self.document.text, self.document.source)
        reader.skipped = self.document.warnings
        written = [t for t in self.document.chain_statements if t.data == "wrt"]
        reader.derivative_requests = () if written else tuple(
            (r.name, r.wrt[0]) for r in self.requests if r.name is not None and r.wrt)
        chain = reader.read(statements, wrt)
        claims = self.read_claims(statements, wrt, chain)
        return dataclasses.replace(chain, warnings=tuple(self.document.warnings) + chain.warnings,
                                   claims=claims)

    def read_claims(self, statements: list, wrt, chain: Chain) -> tuple:
        """Each claimed gradient as an expression over the chain's names, read by a second
        reading with the claims as hidden definitions before the objective (so a claim that
        cannot be read never stops the derivation), else None and the reason, warned."""
        known = {i.symbol.name for i in chain.inputs} | {d.symbol.name for d in chain.definitions}
        wrt_names = {w.name for w in chain.wrt}
        out: dict[int, None] = {}
        readable: list[int] = []
        for k, (name, wrt_token, tree, formula) in enumerate(self.claims):
            strange = sorted({str(t) for t in tree.scan_values(
                lambda v: isinstance(v, Token) and v.type == "NAME")} - known - {"I"})
            reason = (f"it uses {', '.join(strange)}, not a variable of the chain" if strange
                      else f"{wrt_token} is not differentiated" if str(wrt_token) not in wrt_names
                      else None)
            if reason:
                self.warn(formula, f"claim ∂{name}/∂{wrt_token} = … not checked: {reason}")
                out[k] = None
            else:
                readable.append(k)
        exprs = {k: self.claim_expression(statements, wrt, k, chain) for k in readable}
        return tuple((name, str(wrt_token), exprs.get(k), formula.line, formula.column)
                     for k, (name, wrt_token, _, formula) in enumerate(self.claims))

    def claim_expression(self, statements: list, wrt, k: int, chain: Chain):
        """One claim read as a hidden definition after the objective (it may use it: ``E X⁻ᵀ``),
        in a reading of its own; None (warned) if it cannot be read or would change the
        chain's sizes."""
        name, wrt_token, tree, formula = self.claims[k]
        hidden = Tree("defn", [_tok("NAME", f"claim\u2033{k}", _first(tree)), tree])
        last = max(i for i, s in enumerate(statements) if s.data == "defn") + 1
        reader = _LatexReader(self.document.text, self.document.source)
        reader.skipped = []
        what = f"claim ∂{name}/∂{wrt_token} = …"
        try:
            reread = reader.read(statements[:last] + [hidden] + statements[last:], wrt)
        except DeriveError as error:
            if error.message.startswith(_DERIVATIVE_INSIDE):   # ∂E/∂W = ∂E/∂x ∂x/∂W
                self.warn(formula, f"the right side of {what} is written with derivatives (the "
                                   "chain rule), so there is no expression to compare; the "
                                   "derivation by differentials answers it", kind="note")
                return None
            self.warn(formula, f"{what} does not agree with derive's reading of the chain: "
                               f"{error.line}:{error.column}: {error.message}")
            return None
        shapes = {i.symbol.name: i.symbol.shape for i in reread.inputs}
        changed = [i.symbol.name for i in chain.inputs if shapes.get(i.symbol.name) != i.symbol.shape]
        if changed or len(chain.inputs) != len(reread.inputs):
            self.warn(formula, f"{what} does not agree with derive's reading of the chain: it "
                               f"is well formed only if {', '.join(changed) or 'the inputs'} had other sizes")
            return None
        claimed = reread.claims[0][1]
        symbol = next(w for w in chain.wrt if w.name == str(wrt_token))
        if isinstance(claimed, Zero) or (isinstance(claimed, Number) and claimed.value == 0):
            # 0: the zero of W's shape, as derive prints it
            return Zero(symbol.shape)
        if tuple(claimed.shape) != tuple(symbol.shape):      # not a gradient of W: an error
            raise self.document.fail(f"the claimed ∂{name}/∂{wrt_token} is "
                                     f"{show_shape(claimed.shape)}, but {wrt_token} is "
                                     f"{show_shape(symbol.shape)}: a gradient has the shape of "
                                     "its variable", _start_pos(_first(tree)))
        return claimed

    def mentions(self) -> None:
        """One sentence each for the formulas skipped in bulk: mentions and differentials."""
        bulk = ((self.document.mentions, "read {} (at {}) as mentions: a lone name says nothing"),
                (self.differentials, "skipped {} (at {}): differentials and adjoints, which "
                                     "derive writes itself"))
        for places, sentence in bulk:
            if places:
                shown = ", ".join(f"{line}:{column}" for line, column in places[:8])
                shown += ", …" if len(places) > 8 else ""
                count = "1 formula" if len(places) == 1 else f"{len(places)} formulas"
                first_line, first_column = places[0]
                self.document.warn(first_line, first_column, sentence.format(count, shown), kind="note")

    # ------------------------------------------------ classification

    def classify(self, formula: _Formula) -> None:
        sides, relations = formula.sides, [str(r) for r in formula.relations]
        implied = next((i for i, r in enumerate(relations) if r not in EQUALS + MEMBERSHIP
                        and not r.startswith(EQUALS)), None)
        if implied is not None:
            consequence = sides[implied + 1:]
            sides, relations = sides[:implied + 1], relations[:implied]
            if not all(_has_differential(s) for s in consequence if s is not None):
                self.warn(formula, f"skipped what follows {formula.relations[implied]}: "
                                   "derive reads definitions, not consequences")
        if sides[0] is None:
            self.warn(formula, "skipped a row that continues a formula derive did not read")
            return
        if not relations:
            return self.lone_side(sides[0], formula)
        if any(r in MEMBERSHIP for r in relations):
            return self.declaration(sides, relations, formula)
        head = sides[0]
        if _is(head, "derivative", "applied"):
            return self.request(head, sides[1:], formula)
        if _slash_derivative(head):
            return self.slash_request(head, sides[1:], formula)
        optimum = next((side for side in sides[1:] if _is(side, "applied")
                        and _OPTIMUM.match(str(side.children[0]))), None)
        if optimum is not None:                 # \hat w = \arg\min_w f: a request for ∇_w f
            return self.request(optimum, [], formula)
        if any(_has_differential(s) for s in sides):
            self.differentials.append((formula.line, formula.column))
            return
        name, arguments = _defined_name(head)
        if name is not None and "_bar" in str(name) and \
                any(str(d[0]) == str(name).replace("_bar", "", 1) for d in self.definitions):
            self.differentials.append((formula.line, formula.column))   # derive's adjoint z̄
            return
        if name is None:
            self.warn(formula, "skipped a formula that is not a definition: its left side is "
                               "not a name")
            return
        self.natural_wrt.extend(arguments)
        if arguments:
            self.signatures.setdefault(str(name), list(arguments))
        self.define(name, sides[1], sides[2:], formula)

    def lone_side(self, side, formula) -> None:
        if _is(side, "derivative", "applied"):
            return self.request(side, [], formula)
        if _slash_derivative(side):
            return self.slash_request(side, [], formula)
        if _has_differential(side):
            self.differentials.append((formula.line, formula.column))
        elif _is(side, "name") and self.says_wrt(side):
            self.prose_wrt.append(side.children[0])          # "with respect to $X$"
        elif _is(side, "name", "number", "reals", "tuple"):
            self.document.mentions.append((formula.line, formula.column))
        else:
            self.lone.append((side, formula))

    def says_wrt(self, side: Tree) -> bool:
        """Does the prose just before this ``$X$`` say "with respect to" (or w.r.t.), or
        continue such a list ("with respect to $W$ and $b$")?"""
        start = _start_pos(_first(side))
        before = self.document.text[max(0, start - 40):start].rstrip(" $(\\[")
        if self.prose_wrt:
            between = self.document.text[self.prose_wrt[-1].end_pos:start]
            if re.fullmatch(r"[\s$,]*(and|,)?[\s$(\\]*", between):
                return True
        return _WRT_BEFORE.search(before) is not None

    def define(self, name: Token, rhs, more: list, formula) -> None:
        for existing in self.definitions:
            if str(existing[0]) == str(name):       # written again: a further form
                existing[2].extend((side, formula) for side in [rhs, *more])
                return
        self.definitions.append([name, rhs, [(side, formula) for side in more]])

    def declaration(self, sides, relations, formula) -> None:
        if len(sides) != 2 or relations[0] not in MEMBERSHIP or not _is(sides[1], "reals"):
            raise self.document.fail("a declaration reads `X \\in \\mathbb{R}^{n\\times m}`",
                                     _start_pos(_first(sides[-1])))
        names = sides[0].children if _is(sides[0], "tuple") else [sides[0]]
        size = _size_tree(sides[1].children[0], self.document)
        for node in names:
            if not _is(node, "name"):
                raise self.document.fail("only names can be declared", _start_pos(_first(node)))
            token = node.children[0]
            self.declarations.append(Tree("decl", [token, _tok("COLON", ":", token), size]))

    def request(self, head: Tree, rest: list, formula) -> None:
        """``∂E/∂W`` (``= G`` makes it a claim), ``∂/∂X f``, ``\\nabla_X f``."""
        token = cast(Token, head.children[0])     # DERIV_FRAC or DERIV_OP, in latex.lark
        vectorised = second = False
        if head.data == "derivative":
            top, bottom = _derivative_parts(str(token))
            if _SECOND.match(top):
                return self.hessian_request(token, top, bottom, rest, formula)
            (top, top_vec), (bottom, bottom_vec) = _unvec(top), _unvec(bottom)
            vectorised = top_vec or bottom_vec
            objective = self.sub_expression(top, token)
        else:
            raw, second = _nabla_order(str(token))
            bottom = _operator_variable(raw)
            objective = head.children[1]
        name, arguments = _applied_name(objective)
        if bottom.strip():
            variable = self.sub_expression(bottom, token)
            if not _is(variable, "name"):
                raise self.document.fail("differentiate with respect to a variable: "
                                         "\\frac{\\partial E}{\\partial W}", _start_pos(token))
            arguments = [variable.children[0]]
        elif not arguments and str(name) in self.signatures:   # g(x) = … then \nabla g
            arguments = self.signatures[str(name)]
        elif not arguments:              # \nabla f without the variable
            raise self.document.fail("write the variable: \\nabla_X f or \\nabla f(X)",
                                     _start_pos(token))
        if vectorised and name is not None:          # ∂vec(Y)/∂vec(X): a Jacobian
            return self.jacobian(name, arguments[0], rest, formula)
        name_token = name
        objective = str(name) if name is not None else objective
        wrt_token = arguments[0]
        if second:                                   # \nabla^2_X f: the Hessian
            self.warn(formula, "\\nabla^2 is read as the Hessian (in physics it is often the "
                               "Laplacian, the Hessian's trace)", kind="note")
            return self.hessian_of(objective, arguments, rest, formula)
        self.requests.append(_Request(objective, arguments, formula.line, formula.column,
                                      name_token))
        if rest:
            name = objective if isinstance(objective, str) else "the objective"
            self.claims.append((name, wrt_token, rest[0], formula))

    def hessian_request(self, token: Token, top: str, bottom: str, rest: list, formula) -> None:
        """``\\frac{\\partial^2 E}{\\partial W^2}`` or ``…{\\partial W\\,\\partial b}``: the
        Hessian of E with respect to W (and b), a ``hessian`` statement; a right side is not
        compared (derive derives the Hessian itself), and a note says so."""
        objective = self.sub_expression(top[cast(re.Match, _SECOND.match(top)).end():], token)
        name, _ = _applied_name(objective)
        variables = []
        for piece in re.split(r"\\partial(?![A-Za-z])", bottom):
            piece = _SQUARED.sub("", piece)
            if not piece.strip(" \t\n\\,;!"):
                continue
            variable = self.sub_expression(piece, token)
            if not _is(variable, "name"):
                raise self.document.fail("a Hessian is with respect to variables: "
                                         "\\frac{\\partial^2 E}{\\partial W\\,\\partial b}",
                                         _start_pos(token))
            variables.append(variable.children[0])
        self.hessian_of(str(name) if name is not None else objective, variables, rest, formula)

    def hessian_of(self, objective, variables: list, rest: list, formula) -> None:
        """A request for the Hessian of ``objective`` (a name or an expression) with respect
        to ``variables``, however it was written."""
        self.requests.append(_Request(objective, variables, formula.line, formula.column))
        self.hessian_names.extend(variables)
        if rest:
            self.warn(formula, "the right side of a Hessian is not compared: derive derives the "
                               "Hessian itself", kind="note")

    def hessian_statements(self) -> list:
        """One ``hessian`` statement: the names of every Hessian asked, in prose lines
        (``hessian W, b``) or formulas, each once."""
        written = [t for s in self.document.chain_statements if s.data == "hessian"
                   for t in s.children]
        tokens: list = []
        for token in written + self.hessian_names:
            tokens += [token] * all(str(t) != str(token) for t in tokens)
        return [Tree("hessian", tokens)] if tokens else []


    def jacobian(self, f_token, x_token, rest: list, formula) -> None:
        r"""``\frac{\partial\,\mathrm{vec}(Y)}{\partial\,\mathrm{vec}(X)}``, or ∂F/∂X with X
        defined: the request ``jacobian F wrt X``; a right side is derive's to derive."""
        self.jacobians.append((f_token, x_token))
        if rest:
            self.warn(formula, f"the right side of ∂{f_token}/∂{x_token} = … is not compared: "
                               f"derive derives the Jacobian (jacobian {f_token} wrt {x_token})",
                      kind="note")

    def split_jacobians(self) -> None:
        """Requests ∂F/∂X whose X is a defined variable are Jacobians (X held independent),
        not gradients: a gradient is with respect to an input."""
        defined = {str(d[0]) for d in self.definitions}
        for request in list(self.requests):
            if request.name is None or not request.wrt or str(request.wrt[0]) not in defined:
                continue
            self.requests.remove(request)
            claimed = [c for c in self.claims if c[0] == request.objective and c[1] is request.wrt[0]]
            for claim in claimed:
                self.claims.remove(claim)
            self.jacobian(request.name, request.wrt[0], [claimed[0][2]] if claimed else [],
                          claimed[0][3] if claimed else None)

    def slash_request(self, side: Tree, rest: list, formula) -> None:
        """``\\partial E / \\partial W`` written inline: the request ∂E/∂W."""
        objective, variable = _slash_derivative(side)
        self.requests.append(_Request(str(objective), [variable], formula.line, formula.column))
        if rest:
            self.claims.append((str(objective), variable, rest[0], formula))

    def sub_expression(self, text: str, at: Token):
        """A piece of a ``\\frac{\\partial …}{\\partial …}``, parsed where it was written."""
        start = self.document.text.find(text, at.start_pos, at.end_pos) \
            if text else _start_pos(at)
        try:
            tree = _parse_formula(text)
        except UnexpectedInput as error:
            raise self.document.fail(f"cannot read {text.strip()!r} in the derivative: "
                                     + _unreadable_message(text, getattr(error, "pos_in_stream", 0)
                                                           or 0, error),
                                     max(start, _start_pos(at))) from None
        self.document.positions.shift(tree, max(start, _start_pos(at)))
        side = tree.children[0]
        if len(tree.children) != 1 or not isinstance(side, Tree):
            raise self.document.fail(f"cannot read {text.strip()!r} in the derivative", _start_pos(at))
        return _normalise(side, self.document)

    # ------------------------------------------------ statements

    def statements(self) -> list:
        """decl, defn and wrt trees in the order ``parse._Reader`` wants, the objective last;
        further forms go just before the objective, where every name they use is defined."""
        decls = self.merged_declarations()
        self.split_jacobians()
        definitions = self.with_objective()
        statements = list(decls) + [Tree("defn", [name, rhs]) for name, rhs, _ in definitions[:-1]]
        self.alternatives: list = []
        for name, _rhs, more in definitions:
            for k, (side, _formula) in enumerate(more, 2):
                hidden = _tok("NAME", f"{name}\u2032{k}", _first(side))
                statements.append(Tree("defn", [hidden, side]))
        statements.append(Tree("defn", definitions[-1][:2]) if definitions else [])
        statements.extend(self.wrt_statements())
        statements.extend(self.hessian_statements())
        in_order = sorted(self.jacobians, key=lambda fx: (fx[0].line, fx[0].column))
        statements.extend(Tree("jacobian", [f, x]) for f, x in in_order)
        return [s for s in statements if s]

    def merged_declarations(self) -> list:
        """Chain-syntax lines win over LaTeX declarations of the same name; a declared name
        that is also defined keeps its definition."""
        defined = {str(d[0]) for d in self.definitions}
        out, seen = [], set()
        for tree in [t for t in self.document.chain_statements if t.data == "decl"] + self.declarations:
            name = str(tree.children[0])
            if name in seen or name in defined:
                continue
            seen.add(name)
            out.append(tree)
        return out

    def with_objective(self) -> list:
        """The definitions with the requested objective last."""
        definitions = list(self.definitions)
        objectives = [r.objective for r in self.requests]
        if not objectives and not definitions and self.lone:
            side, formula = self.lone[-1]
            for _other, skipped in self.lone[:-1]:
                self.warn(skipped, "skipped an expression: the last one is the objective")
            objectives = [side]
            self.requests.append(_Request(side, [], formula.line, formula.column))
        elif self.lone:
            for _side, formula in self.lone:
                self.warn(formula, "skipped an expression that is neither a definition nor a "
                                   "request")
        if not objectives:
            return self.reordered(definitions, _sink(definitions)) if definitions else definitions
        objective = objectives[-1]
        named = [o if isinstance(o, str) else None for o in objectives]
        if len({n for n in named if n is not None}) > 1:
            request = self.requests[-1]
            raise DeriveError(f"the requests differentiate {', '.join(sorted(set(filter(None, named))))}:"
                              " derive differentiates one objective per chain", self.document.source,
                              request.line, request.column)
        if not isinstance(objective, str):
            token = _first(objective)
            fresh = self.fresh_name()
            definitions.append([_tok("NAME", fresh, token), objective, []])
            return definitions
        index = next((i for i, d in enumerate(definitions) if str(d[0]) == objective), None)
        if index is None:
            request = self.requests[-1]
            raise DeriveError(f"{objective} is differentiated but never defined: write its "
                              f"definition, {objective} = …", self.document.source,
                              request.line, request.column)
        return self.reordered(definitions, index)

    def reordered(self, definitions: list, index: int) -> list:
        """The objective moved last; a definition written after it stays unless it uses it."""
        objective = definitions[index]
        kept, dropped = [], {str(objective[0])}
        for later in definitions[index + 1:]:
            used = {str(t) for t in later[1].scan_values(lambda v: isinstance(v, Token))}
            if used & dropped:
                dropped.add(str(later[0]))
                self.document.warn(later[0].line, later[0].column,
                                   f"{later[0]} is defined after the objective {objective[0]} "
                                   "and uses it: ignored")
            else:
                kept.append(later)
        return definitions[:index] + kept + [objective]

    def fresh_name(self) -> str:
        used = {str(d[0]) for d in self.definitions} | set(self.document.declared) | {
            str(t) for side, _ in self.lone for t in side.scan_values(lambda v: isinstance(v, Token))}
        for token in self.tokens():
            used.add(str(token))
        return next(n for n in FRESH_OBJECTIVES if n not in used)

    def tokens(self):
        for formula in self.formulas:
            for side in formula.sides:
                if isinstance(side, Tree):
                    yield from side.scan_values(lambda v: isinstance(v, Token) and v.type == "NAME")

    def wrt_statements(self) -> list:
        written = [t for t in self.document.chain_statements if t.data == "wrt"]
        if written:
            return written
        requested = [token for r in self.requests for token in r.wrt] or \
            (self.prose_wrt if not self.jacobians else [])     # "the Jacobian … with respect to"
        if requested:
            return [Tree("wrt", requested)]
        if self.natural_wrt:
            return [Tree("wrt", self.natural_wrt)]
        return []


def _defined_name(head) -> tuple:
    """(name token, argument tokens) of ``y`` or ``f(X)``, ``f(X, Y)``; (None, []) otherwise."""
    name, arguments = _applied_name(head)
    if name is not None:
        return name, arguments
    if _is(head, "call") and all(_is(a, "name") for a in head.children[2:-1]):
        return head.children[0], [a.children[0] for a in head.children[2:-1]]
    return None, []


def _slash_derivative(tree):
    """(E, W) name tokens of ``\\partial E / \\partial W`` (``dE/dW``), else None."""
    if not isinstance(tree, Tree):
        return None
    tokens = list(tree.scan_values(lambda v: isinstance(v, Token)))
    kinds = [t.type for t in tokens]
    if kinds == ["PARTIAL", "NAME", "MULOP", "PARTIAL", "NAME"] and tokens[2] == "/":
        return tokens[1], tokens[4]
    return None


def _applied_name(tree) -> tuple:
    """(name, argument tokens) of an objective written ``f`` or ``f(X)``, else (None, [])."""
    if _is(tree, "name"):
        return tree.children[0], []
    if _is(tree, "product") and len(tree.children) == 2 and _is(tree.children[0], "name"):
        inside = tree.children[1]
        names = ([inside.children[1]] if _is(inside, "paren")
                 else [c for c in inside.children if isinstance(c, Tree)]
                 if _is(inside, "arguments") else [])
        if names and all(_is(n, "name") for n in names):
            return tree.children[0].children[0], [n.children[0] for n in names]
    return None, []


def _sink(definitions: list) -> int:
    """The objective when nothing names it: the last definition no other one uses (a question
    often defines its notation, ``where Y = A − xxᵀ``, after the objective)."""
    used = {str(t) for _, rhs, more in definitions
            for tree in [rhs] + [side for side, _ in more]
            for t in tree.scan_values(lambda v: isinstance(v, Token) and v.type == "NAME")}
    unused = [i for i, d in enumerate(definitions) if str(d[0]) not in used]
    return unused[-1] if unused else len(definitions) - 1


_SECOND = re.compile(r"\s*\^\s*(?:2|\{\s*2\s*\})")            # \partial^2 E
_SQUARED = re.compile(r"\^\s*(?:2|\{\s*2\s*\})\s*$")           # \partial W^2


_VEC = re.compile(r"\s*(?:\\[,;!]\s*)?(?:\\mathrm|\\operatorname|\\text)?\s*\{?\s*vec(?![A-Za-z])"
                  r"\s*\}?\s*(?:\\[,;!]\s*)?(?:\((.*)\)|(.*))\s*", re.DOTALL)


def _unvec(raw: str) -> tuple:
    r"""``\mathrm{vec}(X)`` (or ``\operatorname{vec} X``, ``vec\,X``) → (``X``, True);
    anything else → (itself, False)."""
    match = _VEC.fullmatch(raw)
    if match is None:
        return raw, False
    inner = match.group(1) if match.group(1) is not None else match.group(2)
    return inner, bool(inner.strip())


def _derivative_parts(raw: str) -> tuple:
    """``\\frac{\\partial E}{\\partial W}`` → (``E``, ``W``) as written."""
    match = re.fullmatch(r"\\[dt]?frac\s*\{\s*(?:\\partial(?![A-Za-z])|\\mathrm\s*\{\s*d\s*\}|d)"
                         r"(.*)\}\s*\{\s*(?:\\partial(?![A-Za-z])|\\mathrm\s*\{\s*d\s*\}|d)(.*)\}",
                         raw, re.DOTALL)
    match = cast(re.Match, match)     # raw is a DERIV_FRAC token, which latex.lark reads so
    return match.group(1), match.group(2)


_NABLA_SQUARED = re.compile(r"^(\\nabla)\s*\^\s*(?:2|\{\s*2\s*\})|\s*\^\s*(?:2|\{\s*2\s*\})$")


def _nabla_order(raw: str) -> tuple:
    """``\\nabla^2_X`` or ``\\nabla_X^2`` → (``\\nabla_X``, True): the square read off a
    nabla (a Hessian asked); any other operator → (itself, False)."""
    if not raw.startswith("\\nabla"):
        return raw, False
    plain = _NABLA_SQUARED.sub(lambda m: m.group(1) or "", raw)
    return plain, plain != raw


def _operator_variable(raw: str) -> str:
    """The variable of ``\\frac{\\partial}{\\partial X}``, ``\\nabla_X`` or ``\\min_X``, as written."""
    if not re.match(r"\\[dt]?frac", raw):           # \nabla_X, \min_X, \arg\min_{X}
        body = raw.partition("_")[2].strip()             # "" for \nabla f(x)
        return body[1:-1] if body.startswith("{") else body
    # a DERIV_OP token (latex.lark) that starts with \frac ends like this
    match = re.fullmatch(r".*\}\s*\{\s*(?:\\partial(?![A-Za-z])|\\mathrm\s*\{\s*d\s*\}|d)(.*)\}",
                         raw, re.DOTALL)
    return cast(re.Match, match).group(1)


def _size_name(text: str) -> str:
    """``n``, ``5``, ``d_{in}``, ``d_\\text{out}`` → ``n``, ``5``, ``d_in``, ``d_out``."""
    base, accents, _, sub = _name_parts(text.strip())
    return base + ("_" + sub if sub else "") if not accents else text.strip()


def _size_tree(token: Token, document: _Document) -> Tree:
    """``\\mathbb{R}^{n\\times m}`` → the chain grammar's size tree."""
    raw = str(token)
    match = re.search(r"\^\s*(\{((?:[^{}]|\{[^{}]*\})*)\}|([0-9A-Za-z]))", raw)
    if match is None:
        return Tree("scalar_size", [])
    body = match.group(2) if match.group(2) is not None else match.group(3)
    dims = [_size_name(d) for d in re.split(r"\\times|×|\\cross|,|(?<=\w)\s*x\s*(?=\w)", body)]
    if not all(re.fullmatch(r"[0-9]+|[A-Za-z](_[A-Za-z0-9]+)?", d) for d in dims) or len(dims) > 2:
        raise document.fail(f"cannot read the size {body.strip()!r}: write \\mathbb{{R}}^{{n\\times m}}",
                            _start_pos(token) + match.start(2 if match.group(2) is not None else 3))
    kids: list[Token | Tree] = [_tok("NUMBER" if d.isdigit() else "NAME", d, token) for d in dims]
    return Tree("vector_size" if len(kids) == 1 else "matrix_size", kids)


_DERIVATIVE_INSIDE = "a derivative is a request of its own line"
_NOT_IN_EXPRESSIONS = {
    "reals": "a set such as \\mathbb{R}^n belongs in a declaration, X \\in \\mathbb{R}^{n\\times m}",
    "tuple": "a list a, b is not an expression",
    "arguments": "a list (a, b) is not an expression (a function of several arguments?)",
    "partial": "a differential is not read in an expression (derive writes differentials itself)",
    "derivative": _DERIVATIVE_INSIDE + ", not part of an expression",
    "applied": _DERIVATIVE_INSIDE + ", not part of an expression",
}


_OPTIMUM = re.compile(r"\\(arg|min|max|operatorname|mathrm)")
_HIDDEN = re.compile("[\u2032\u2033]")   # J′2: a further form of J; claim″0: a claimed gradient


class _LatexReader(_Reader):
    """``parse._Reader`` fed statement trees instead of text; further forms of a definition
    ride along as hidden definitions just before it and come back as ``Chain.alternatives``."""

    skipped: list[Notice]          # set by whoever makes the reader, before read()

    def read(self, statements: list, wrt) -> Chain:
        if not any(s.data == "defn" for s in statements):
            raise DeriveError("no definition found in the LaTeX: write the objective as "
                              "$E = …$ (or a request such as $\\nabla_X \\mathrm{tr}(AX)$)"
                              + "".join(f"\n  note: line {w.line}: {w}" for w in self.skipped[:5]),
                              self.source, 1, 1)
        chain = self.chain(wrt, statements)
        kept = tuple(d for d in chain.definitions if not _HIDDEN.search(d.symbol.name))
        alternatives = tuple((d.symbol.name.split("\u2032")[0], d.expr, d.line, d.column)
                             for d in chain.definitions if "\u2032" in d.symbol.name)
        return dataclasses.replace(chain, definitions=kept, alternatives=alternatives,
                                   claims=tuple(self.claimed))

    derivative_requests: tuple = ()    # (F token, X token) of each ∂F/∂X written, by _Assembly

    def requests_as_jacobians(self, wrt_names: tuple, overridden: bool) -> tuple:
        """``\\frac{\\partial s}{\\partial x}`` of an objective that is surely not a scalar asks
        for a Jacobian, not a gradient: the requests become ``jacobian s wrt x``."""
        if overridden or not self.derivative_requests or self.jacobian_tokens and not wrt_names:
            return wrt_names
        rows, cols = self.drafts[self.objective_index()].shape
        objective = str(self.definitions[self.objective_index()][0])
        sure = [self.sizes.value(i) for i in (rows, cols)]
        if not any(v is not None and v != 1 for v in sure):
            return wrt_names
        asked = [(f, x) for f, x in self.derivative_requests if str(f) == objective]
        if {str(x) for _, x in asked} != set(wrt_names):
            return wrt_names
        self.jacobian_tokens.extend((f, [x]) for f, x in asked)
        return ()

    def objective_index(self) -> int:
        """The last definition that is not a claim (claims ride after the objective)."""
        return max(k for k, (name, _) in enumerate(self.definitions) if "\u2033" not in str(name))

    def finish(self, wrt_names: tuple, overridden: bool) -> Chain:
        """The chain without the claims after the objective, then the claims built over it."""
        claimed = [k for k, (name, _) in enumerate(self.definitions) if "\u2033" in str(name)]
        claims = [(self.definitions[k][0], self.drafts[k]) for k in claimed]
        for k in reversed(claimed):
            del self.definitions[k], self.drafts[k]
        chain = super().finish(wrt_names, overridden)
        self.claimed = [(str(name), self.build(draft)) for name, draft in claims]
        self.collapsed(chain)
        return chain

    def collapsed(self, chain: Chain) -> None:
        """An undeclared vector or matrix that its use made 1×1 (``x - \\mu`` with the scalar
        ``\\mu``): read as it unified, but said, with the declaration that would change it."""
        greek = [i.symbol.name for i in chain.inputs
                 if not i.declared and _convention(i.symbol.name) == "scalar"]
        for item in chain.inputs:
            kind = _convention(item.symbol.name)
            rows, cols = item.symbol.shape
            if not item.declared and kind == "matrix" and cols == 1 and rows != 1 and greek:
                self.skipped.append(Notice(
                    f"{item.symbol.name} was read as a vector: a matrix by the naming convention, "
                    f"left one column by a product with a Greek letter, which the convention "
                    f"makes a scalar ({', '.join(greek)}); declare the sizes if one is a vector, e.g. "
                    f"$\\{greek[0]} \\in \\mathbb{{R}}^k$", item.line, item.column))
                continue
            if not item.declared and kind != "scalar" and item.symbol.shape == (1, 1):
                self.skipped.append(Notice(
                    f"{item.symbol.name} was read as "
                    f"a scalar (an undeclared {kind} that meets a scalar, such as a Greek letter): "
                    f"declare its size if it is not, e.g. $\\mu \\in \\mathbb{{R}}^n$",
                    item.line, item.column))

    def expr(self, node: Tree):
        """Nodes only a formula's top level may hold, met inside an expression: an error there."""
        if node.data in _NOT_IN_EXPRESSIONS:
            raise self.fail(_NOT_IN_EXPRESSIONS[node.data], node)
        return super().expr(node)

    def function(self, name: str, operands: list, token, node):
        """Where sizes decide what LaTeX leaves open: ``\\operatorname{diag}(x)`` of a vector is
        the diagonal matrix ``Diag(x)`` (``diag(X)`` of a square matrix stays its diagonal)."""
        operand = operands[0]
        if name == "diag" and len(operands) == 1 and self.sizes.value(operand.shape[1]) == 1 \
                and self.sizes.value(operand.shape[0]) != 1:
            name = "Diag"
        return super().function(name, operands, token, node)
