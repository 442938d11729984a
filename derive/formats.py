"""The output formats and Markdown flavors, their short names and the extensions that imply
them: the one list the API, the command line (its choices and completion) and render read."""
from __future__ import annotations

from pathlib import Path

from .errors import DeriveError

FORMATS = ("markdown", "latex", "json", "numpy", "html", "pdf")
SNIPPETS = ("markdown", "latex", "json", "numpy")   # what render.render writes
DOCUMENTS = ("html", "pdf")                          # always whole documents
NOTES_FORMATS = ("latex", "pdf", "html")
ALIASES = {"md": "markdown", "tex": "latex", "py": "numpy"}
FLAVORS = ("mse", "katex", "github")
LANGUAGES = ("chain", "latex")
EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".json": "json",
              ".py": "numpy", ".html": "html", ".pdf": "pdf"}


def spellings(formats=FORMATS) -> tuple:
    """The names ``-t`` accepts for ``formats``: each name, then its short aliases."""
    return tuple(formats) + tuple(a for a, name in ALIASES.items() if name in formats)


def chosen(value: str, choices, what: str) -> str:
    """``value`` (any case, an alias allowed) as one of ``choices``, else one sentence."""
    name = ALIASES.get(value.lower(), value.lower())
    if name not in choices:
        raise DeriveError(f"unknown {what} {value!r}: choose one of " + ", ".join(choices))
    return name


def infer(to: str | None, output, choices=FORMATS) -> str:
    """The format: ``to``, else the extension of the file ``output``, else Markdown."""
    if to is not None:
        return chosen(to, choices, "format")
    if output in (None, "-"):
        return "markdown"
    suffix = Path(output).suffix.lower()
    if suffix not in EXTENSIONS:
        raise DeriveError(f"cannot tell the format from {str(output)!r}: use -t with one of "
                          + ", ".join(choices))
    return EXTENSIONS[suffix]


def infer_notes(to: str | None, output) -> str:
    """latex, pdf or html: ``to``, else the extension of ``output``."""
    if to is not None:
        return chosen(to, NOTES_FORMATS, "notes format")
    fmt = EXTENSIONS.get(Path(output).suffix.lower(), "") if output not in (None, "-") else ""
    if fmt not in NOTES_FORMATS:
        raise DeriveError(f"notes are written as .tex, .pdf or .html, not {str(output)!r} "
                          "(or use -t latex|pdf|html)")
    return fmt
