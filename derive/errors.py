"""One exception type for everything a user can get wrong, with a location."""
from __future__ import annotations

import re
from .record import record

EXIT_CLAIM_WRONG = 1
EXIT_INPUT = 2
EXIT_CHECK_FAILED = 3
EXIT_NO_TEX = 4
EXIT_TEX_FAILED = 5

WINDOW = 100      # characters of a long line shown around the column
_UNPRINTABLE = "[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]"     # all but \t


def first_unprintable(text: str, pattern: str, layout: str) -> re.Match | None:
    """The first match in ``text`` of ``pattern``, a class of control characters and lone
    surrogates, all unprintable to ``str.isprintable`` (categories Cc and Cs).  A text
    that is printable but for the ``layout`` characters the class leaves out (tabs, line
    breaks) holds none, so the pattern is compiled (and cached by re) only for a text that
    may: its surrogate range costs most of a millisecond, a cold start's every run."""
    if text.translate(dict.fromkeys(map(ord, layout))).isprintable():
        return None
    return re.search(pattern, text)


def shown_printable(text: str, pattern: str = _UNPRINTABLE, layout: str = "\t") -> str:
    """``text`` with every match of ``pattern`` (as ``first_unprintable``) shown as U+FFFD."""
    if first_unprintable(text, pattern, layout) is None:
        return text
    return re.sub(pattern, "\ufffd", text)


@record
class Source:
    """Chain text and the name errors cite: a path, ``<-e>`` or ``<stdin>``."""

    text: str
    name: str = "<-e>"

    def line(self, number: int) -> str:
        lines = self.text.split("\n")
        return lines[number - 1] if 0 < number <= len(lines) else ""


class DeriveError(Exception):
    """A user error: a sentence, where it happened, and the exit code it earns."""

    def __init__(self, message: str, source: Source | None = None,
                 line: int | None = None, column: int | None = None,
                 exit_code: int = EXIT_INPUT):
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.exit_code = exit_code

    def located(self, source: Source, line: int, column: int = 1) -> "DeriveError":
        """This error placed at ``line:column`` unless it already has a place."""
        if self.line is not None:
            return self
        return DeriveError(self.message, source, line, column, self.exit_code)

    def format(self) -> str:
        """``file:line:col: message``, then the line and a caret under the column."""
        if self.source is None or self.line is None:
            return f"derive: {self.message}"
        column = self.column or 1
        text, caret = _excerpt(self.source.line(self.line), column)
        return f"{self.source.name}:{self.line}:{column}: {self.message}\n  {text}\n  {caret}"

    def __str__(self) -> str:
        return self.format()


class Notice(str):
    """A warning (derive may have read something other than what was meant) or a note
    (a convention the output states); a ``str`` of its sentence, so templates and JSON
    show it as text, carrying the line and column it is about (0: the whole chain)."""

    kind: str
    line: int
    column: int

    def __new__(cls, message: str, line: int = 0, column: int = 0, kind: str = "warning"):
        notice = super().__new__(cls, message)
        notice.kind, notice.line, notice.column = kind, line, column
        return notice

    def __getnewargs__(self):
        return str(self), self.line, self.column, self.kind

    # shadows str.format on purpose: a Notice is a str only so that templates and JSON show
    # it as text; derive calls notice.format(source_name), never str.format on a Notice
    def format(self, source_name: str) -> str:  # type: ignore[override]
        """``file:line:col: warning: …`` (``derive: warning: …`` without a place)."""
        where = f"{source_name}:{self.line}:{self.column or 1}" if self.line else "derive"
        return f"{where}: {self.kind}: {shown_printable(str(self))}"


def note(message: str, line: int = 0, column: int = 0) -> Notice:
    return Notice(message, line, column, kind="note")


def _excerpt(text: str, column: int) -> tuple:
    """The line as shown (a window around ``column`` if it is long, control characters
    and lone surrogates as U+FFFD, which cannot steer a terminal or fail to encode) and a
    caret under the column (tabs kept in its indent, so it lines up)."""
    text, index = shown_printable(text.rstrip("\r")), column - 1
    if len(text) > WINDOW:
        start = max(0, min(index - WINDOW // 2, len(text) - WINDOW))
        head, tail = "…" if start else "", "…" if start + WINDOW < len(text) else ""
        text, index = head + text[start:start + WINDOW] + tail, index - start + len(head)
    indent = "".join("\t" if c == "\t" else " " for c in text[:index])
    return text, indent + " " * (index - len(indent)) + "^"
