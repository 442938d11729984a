"""Norm bars: which ``||`` (or ``‖``) opens a norm and which closes one.

The same two characters do both jobs, so no grammar can tell them apart by itself; a
person reads them by one rule, which this post-lexer applies between lark's lexer and
its parser: a bar closes the innermost open norm when it follows an operand
(``||x||``, ``y||^2``), and opens a norm otherwise — also right after an operand when no
norm is open, so ``2 ||x||^2``, ``1/2 ||x_2 - y||^2`` and ``lam ||W||_F^2`` read as
written and ``||x|| ||y||`` is a product of two norms.

One case stays open to doubt: inside a norm, a bar set apart from the operand before it
and glued to the one after it (``||a ||b|| c||``) may close the norm or open another
inside it. When both readings balance, the text is refused with both spelled out.
"""
from __future__ import annotations

from typing import cast

from lark import Token

from .record import record

# tokens after which a bar closes a norm, if one is open
OPERAND_END = {"NAME", "NUMBER", "HALF", "RPAR", "POSTFIX", "TRANSPOSE", "BAR_CLOSE", "RANGLE"}
_GLUED = set("([{⟨‖|\\") | {"_"}


class AmbiguousBars(Exception):
    """Bars that read two ways; ``token`` is the doubtful bar, ``readings`` both texts."""

    def __init__(self, token: Token, readings: tuple):
        super().__init__("ambiguous norm bars")
        self.token = token
        self.readings = readings


class StrayBar(Exception):
    """A bar carrying a subscript (``||_F``) where it would open a norm."""

    def __init__(self, token: Token):
        super().__init__("a subscripted bar cannot open a norm")
        self.token = token


@record
class _Bar:
    token: Token
    after: str        # "operand", "bar" (right after another bar) or "other"
    doubtful: bool    # set apart from the operand before it, glued to the one after


class NormBars:
    """A lark post-lexer turning each ``BAR`` token into ``BAR_OPEN`` or ``BAR_CLOSE``."""

    always_accept = ("BAR",)

    def __init__(self):
        self.text = ""

    def process(self, stream):
        depth, previous, bars = 0, None, []
        for token in stream:
            if token.type == "_SEP":
                self.check(bars)
                depth, bars = 0, []
            if token.type == "BAR":
                bar = _Bar(token, _after(previous), self.doubtful(token, previous))
                bars.append(bar)
                closes = _closes(depth, bar.after, previous)
                if not closes and _subscript(token):
                    raise StrayBar(token)
                depth += -1 if closes else 1
                token = Token.new_borrow_pos("BAR_CLOSE" if closes else "BAR_OPEN", str(token), token)
            previous = token
            yield token
        self.check(bars)

    def doubtful(self, token: Token, previous) -> bool:
        """Whitespace before the bar, an operand glued after it: ``a ||b``."""
        if previous is None or previous.type not in OPERAND_END:
            return False
        # the lexer sets both positions on every token it hands on
        start, end = cast(int, token.start_pos), cast(int, token.end_pos)
        before = self.text[start - 1:start]
        after = self.text[end:end + 1]
        return before.isspace() and bool(after) and (after.isalnum() or after in _GLUED)

    def check(self, bars: list) -> None:
        """Refuse a statement whose bars also balance with a doubtful bar opening."""
        for index, bar in enumerate(bars):
            if not bar.doubtful:
                continue
            plain, other = _reading(bars), _reading(bars, force_open=index)
            if plain is not None and other is not None and plain != other:
                raise AmbiguousBars(bar.token, (self.show(bars, plain), self.show(bars, other)))

    def show(self, bars: list, opens: list) -> str:
        """The statement's bars as ``norm(`` and ``)``, so the grouping is visible."""
        pieces, at = [], bars[0].token.start_pos
        for bar, is_open in zip(bars, opens):
            pieces.append(self.text[at:bar.token.start_pos])
            pieces.append(" norm(" if is_open else ") ")
            at = bar.token.end_pos
        shown = " ".join("".join(pieces).split())
        return shown.replace("norm( ", "norm(").replace(" )", ")")


def _after(previous) -> str:
    if previous is None:
        return "other"
    if previous.type in ("BAR_OPEN", "BAR_CLOSE"):
        return "bar"
    return "operand" if previous.type in OPERAND_END else "other"


def _closes(depth: int, after: str, previous) -> bool:
    if depth == 0:
        return False
    return after == "operand" or (after == "bar" and previous.type == "BAR_CLOSE")


def _subscript(token: Token) -> bool:
    return str(token) not in ("||", "‖")


def _reading(bars: list, force_open: int | None = None) -> list | None:
    """Which bars open under the rule (bar ``force_open`` opening regardless), or None
    when that reading does not balance or opens with a subscripted bar."""
    depth, opens, last_closed = 0, [], False
    for index, bar in enumerate(bars):
        after = bar.after
        if after == "bar":
            after = "operand" if last_closed else "other"
        closes = depth > 0 and after == "operand" and index != force_open
        if not closes and _subscript(bar.token):
            return None
        depth += -1 if closes else 1
        opens.append(not closes)
        last_closed = closes
    return opens if depth == 0 else None
