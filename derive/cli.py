"""The ``derive`` command: a thin click shell over the Python API (``derive.api``)."""
from __future__ import annotations

import errno
import io
import math
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .errors import EXIT_CHECK_FAILED, DeriveError

EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".json": "json",
              ".py": "numpy", ".html": "html", ".pdf": "pdf"}
FORMATS = ("markdown", "latex", "json", "numpy", "html", "pdf")
DOCUMENTS = ("html", "pdf")          # always whole documents (as is latex with --standalone)
NOTES_FORMATS = ("latex", "pdf", "html")
FLAVORS = ("mse", "katex", "github")
EXIT_INTERRUPTED = 130
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")   # all but \t and \n


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences that would steer the terminal:
    from a file name, a title, a name) and lone surrogates shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", text)


def _say(text: str, nl: bool = True) -> None:
    """A message on stderr, made printable."""
    click.echo(printable(text), err=True, nl=nl)


def _print(text: str, nl: bool = True) -> None:
    """Output on stdout, flushed now so a full disk (``> /dev/full``) is an error message
    here, not a traceback at exit; a closed pipe (``| head``) is left to click."""
    if sys.stdout is None:                                     # closed: >&-
        raise DeriveError("cannot write standard output: it is closed (give -o FILE)")
    try:
        click.echo(text, nl=nl)
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        _drop_stdout()
        raise DeriveError(f"cannot write standard output: {exc.strerror or exc}") from None


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the unwritten buffer cannot fail again at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _interrupted():
    _say("derive: interrupted")
    sys.exit(EXIT_INTERRUPTED)


@contextmanager
def _edge():
    """Where user errors become ``file:line:col`` messages and exit codes, never tracebacks."""
    try:
        yield
    except DeriveError as err:
        _say(err.format())
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        _interrupted()


class _Command(click.Group):
    """The ``derive`` group: Ctrl-C is exit 130 at every stage (click's own handling makes
    an early one "Aborted!" and exit 1), and click's messages are made printable too."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            shown = io.StringIO()
            err.show(file=shown)
            _say(shown.getvalue(), nl=False)
            sys.exit(err.exit_code)
        except click.Abort:            # end of input at a prompt (derive has none)
            _say("Aborted!")
            sys.exit(1)
        except KeyboardInterrupt:
            _interrupted()
        sys.exit(code if isinstance(code, int) else 0)    # click.Exit's code (--help: 0)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            _interrupted()

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()


def _source(file, expr) -> tuple:
    """(text, source name) from exactly one of FILE, ``-`` (stdin) and ``-e TEXT``."""
    if (file is None) == (expr is None):
        raise click.UsageError("give exactly one of FILE (or - for stdin) and -e TEXT")
    if expr is not None:
        return expr, "<-e>"
    if file == "-":
        try:
            from .limits import read_bounded
            stdin = click.get_binary_stream("stdin")
            return read_bounded(stdin, "standard input").decode("utf-8"), "<stdin>"
        except UnicodeDecodeError:
            raise DeriveError("cannot read standard input: not UTF-8 text") from None
        except (RuntimeError, OSError, ValueError, AttributeError):    # closed: <&-
            raise DeriveError("cannot read standard input: it is closed (give FILE or "
                              "-e TEXT)") from None
    from .api import display_name, read_text
    return read_text(file), display_name(file)


def _language(language, file):
    """``-f``, else LaTeX for a ``.tex`` file, else None (the text decides)."""
    if language is None and file not in (None, "-") and str(file).lower().endswith(".tex"):
        return "latex"
    return language


def _wrt(value):
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


def _format(to, output, flavor) -> str:
    """The output format: ``-t``, else ``-o``'s extension, else Markdown."""
    if to is None and output is not None:
        suffix = Path(output).suffix.lower()
        if suffix not in EXTENSIONS:
            raise DeriveError(f"cannot tell the format from {output!r}: use -t with one of "
                              + ", ".join(FORMATS))
        to = EXTENSIONS[suffix]
    to = (to or "markdown").lower()
    if to not in FORMATS:
        raise DeriveError(f"unknown format {to!r}: choose one of " + ", ".join(FORMATS))
    if flavor not in FLAVORS:
        raise DeriveError(f"unknown Markdown flavor {flavor!r}: choose one of "
                          + ", ".join(FLAVORS))
    return to


def _check_document_options(fmt, output, standalone, keep_tex, katex_url) -> None:
    """Refuse what cannot work before any derivation runs: a PDF to stdout, no TeX (exit 4)."""
    if standalone and fmt not in ("latex", "pdf", "html"):
        raise DeriveError("--standalone applies to LaTeX output (-t latex)")
    if keep_tex and fmt != "pdf":
        raise DeriveError("--keep-tex applies to PDF output (-o FILE.pdf)")
    if katex_url and fmt != "html":
        raise DeriveError("--katex-url applies to HTML output (-o FILE.html)")
    if katex_url:
        from .document import katex_assets
        katex_assets(katex_url, _page_dir(output))      # refuses a folder without KaTeX
    if fmt == "pdf":
        from .output import is_stream
        if output in (None, "-") or is_stream(output):
            raise DeriveError("refusing to write a PDF to standard output or a terminal: "
                              "give -o FILE.pdf")
        from .pdf import engine
        engine()


def _page_dir(output) -> Path:
    """The folder a page lands in: a local KaTeX copy is linked relative to it."""
    return Path(output).parent if output not in (None, "-") else Path.cwd()


def _document(derivations, fmt, *, notes=False, katex_url=None, explain=False, **options) -> str:
    """A whole document: an HTML page, else the LaTeX article or notes (which a PDF compiles)."""
    from . import document
    output = options.pop("output", None)
    if fmt == "html":
        return document.html(derivations, notes=notes, katex_url=katex_url, explain=explain,
                             page_dir=_page_dir(output), **options)
    if notes:
        return document.notes(derivations, explain=explain, **options)
    return document.standalone(derivations[0], explain=explain)


def _emit(rendered: str, output, fmt, keep_tex=False) -> None:
    """To stdout or, atomically, to ``output``; for PDF, ``rendered`` is the LaTeX to compile."""
    from .output import write_atomically
    if fmt == "pdf":
        from .pdf import write_pdf
        write_pdf(rendered, output, keep_tex=keep_tex)
    elif output is None:
        _print(rendered, nl=False)
    else:
        write_atomically(output, rendered)


def _report_failure(derivation) -> None:
    """A failed check: the derivation with failing lines marked, then what failed, on stderr."""
    from . import render
    _say(render.to_verdict(derivation), nl=False)
    for sentence in render.failure_sentences(derivation):
        _say(sentence)


def _warn(derivation) -> None:
    """Every warning on stderr as ``file:line:col: warning: …``, whatever the output."""
    from .api import warnings_of
    name = derivation.chain.source.name if derivation.chain.source else "derive"
    for warning in warnings_of(derivation):
        _say(warning.format(name) if hasattr(warning, "format") else
             f"derive: warning: {warning}")


strict_option = click.option("--strict", is_flag=True,
                             help="Treat warnings (an undeclared or unused name, …) as errors.")

input_options = [
    click.argument("file", required=False),
    click.option("-e", "--expr", "expr", metavar="TEXT",
                 help="The chain inline (';' separates statements)."),
    click.option("--wrt", metavar="A,B", help="Variables to differentiate with respect to."),
    click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Seed of the random point of the numeric check (0 or more)."),
    click.option("-f", "--from", "language", type=click.Choice(["chain", "latex"]),
                 help="Input language (default: latex for a .tex file or a text with $ or a "
                      "backslash, else chain)."),
]


def _finite(ctx, param, value):
    """``--max-seconds nan`` (or inf) would never stop anything: refused."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds (0: no limit)")
    return value


max_seconds_option = click.option(
    "--max-seconds", type=click.FloatRange(min=0), metavar="S", callback=_finite,
    help="Stop with exit 2 after S seconds (default 60, or DERIVE_MAX_SECONDS; 0: no limit).")


@contextmanager
def _limited(max_seconds):
    """The run under limits.py's limits, ``--max-seconds`` over DERIVE_MAX_SECONDS."""
    from .limits import Limits, applied
    with applied(Limits.from_environment(max_seconds=max_seconds)):
        yield


def with_input(command):
    for option in reversed(input_options):
        command = option(command)
    return strict_option(max_seconds_option(command))


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="derive")
def main():
    """Turn a declared chain of matrix definitions into a verified derivation by differentials."""


@main.command()
@with_input
@click.option("-t", "--to", "to", metavar="FORMAT",
              help="markdown, latex, json, numpy, html or pdf (default: from -o's extension, "
                   "else markdown).")
@click.option("--flavor", default="mse", show_default=True,
              help="Markdown flavor: mse (math.stackexchange), katex or github.")
@click.option("-o", "--output", metavar="OUT", help="Write here (atomically) instead of stdout.")
@click.option("--expand", is_flag=True, help="Expand the gradient (the seed's (S−S²)(sxᵀ − yxᵀ)).")
@click.option("--no-check", is_flag=True, help="Skip the numeric check (the output says so).")
@click.option("--symmetric-gradient", is_flag=True,
              help="For inputs declared symmetric/spd: sym(G) = (G + Gᵀ)/2 instead of the "
                   "unstructured gradient G.")
@click.option("--standalone", is_flag=True,
              help="With -t latex: a complete article (what -o FILE.pdf compiles).")
@click.option("--keep-tex", is_flag=True, help="With PDF output: keep the .tex next to it.")
@click.option("--katex-url", metavar="URL",
              help="With HTML output: load KaTeX from this dist/ folder or URL, not the CDN.")
@click.option("--explain", is_flag=True, help="Name the rule(s) used on every line.")
@click.option("--template", metavar="FILE",
              help="Render with this Jinja2 template (sandboxed) instead of a built-in one.")
def render(file, expr, wrt, seed, language, max_seconds, strict, to, flavor, output, expand,
           no_check,
           symmetric_gradient, standalone, explain, template, keep_tex, katex_url):
    """Render the derivation of FILE (or - for stdin, or -e TEXT)."""
    from . import api
    from . import render as renderer
    with _edge(), _limited(max_seconds):
        if template is not None and to is not None:
            raise click.UsageError("give -t or --template, not both")
        fmt = _format(to, None if template else output, flavor)
        _check_document_options(fmt, output, standalone, keep_tex, katex_url)
        text, name = _source(file, expr)
        derivation = api.derive(text, wrt=_wrt(wrt), source_name=name, check=not no_check,
                                seed=seed, expand=expand, symmetric_gradient=symmetric_gradient,
                                strict=strict, language=_language(language, file))
        _warn(derivation)
        if derivation.check is not None and not derivation.check.ok:
            _report_failure(derivation)
            sys.exit(EXIT_CHECK_FAILED)
        if template is not None:
            rendered = renderer.to_template(derivation, template, explain)
        elif fmt in DOCUMENTS or standalone:
            rendered = _document([derivation], fmt, katex_url=katex_url, explain=explain,
                                 output=output)
        else:
            rendered = renderer.render(derivation, fmt, flavor, explain)
        _emit(rendered, output, fmt, keep_tex)


@main.command()
@with_input
@click.option("--symmetric-gradient", is_flag=True,
              help="For inputs declared symmetric/spd: sym(G) = (G + Gᵀ)/2 instead of the "
                   "unstructured gradient G.")
def check(file, expr, wrt, seed, language, max_seconds, strict, symmetric_gradient):
    """Check every line of the derivation numerically; exit 0 if all hold, 3 if not."""
    from . import api
    from . import render as renderer
    with _edge(), _limited(max_seconds):
        text, name = _source(file, expr)
        derivation = api.derive(text, wrt=_wrt(wrt), source_name=name, seed=seed,
                                symmetric_gradient=symmetric_gradient, strict=strict,
                                language=_language(language, file))
        _warn(derivation)
        _print(printable(renderer.to_verdict(derivation)), nl=False)
        if not derivation.check.ok:
            for sentence in renderer.failure_sentences(derivation):
                _say(sentence)
            sys.exit(EXIT_CHECK_FAILED)


def _notes_format(to, output) -> str:
    """latex, pdf or html: ``-t``, else ``-o``'s extension."""
    fmt = (to or EXTENSIONS.get(Path(output).suffix.lower(), "")).lower()
    if fmt not in NOTES_FORMATS:
        raise DeriveError(f"notes are written as .tex, .pdf or .html, not {output!r} "
                          "(or use -t latex|pdf|html)")
    return fmt


def _derive_all(files, seed, strict=False) -> list:
    """Every chain derived and checked before anything is written; failures name their file."""
    from . import api
    derivations, failed, code = [], [], EXIT_CHECK_FAILED
    for path in files:
        try:
            derivation = api.derive_file(path, seed=seed, strict=strict)
        except DeriveError as err:
            _say(err.format())
            failed.append(path)
            code = min(code, err.exit_code)
            continue
        _warn(derivation)
        if derivation.check is not None and not derivation.check.ok:
            _report_failure(derivation)
            failed.append(path)
        derivations.append(derivation)
    if failed:
        raise DeriveError(f"notes not written: {', '.join(failed)} failed", exit_code=code)
    return derivations


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="notes.pdf, notes.tex or notes.html (written atomically).")
@click.option("-t", "--to", "to", metavar="FORMAT", help="latex, pdf or html (default: from -o).")
@click.option("--title", help="The title of the notes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random point of the numeric checks (0 or more).")
@click.option("--explain", is_flag=True, help="Name the rule(s) used on every line.")
@click.option("--keep-tex", is_flag=True, help="With PDF output: keep the .tex next to it.")
@click.option("--katex-url", metavar="URL",
              help="With HTML output: load KaTeX from this dist/ folder or URL, not the CDN.")
@max_seconds_option
@strict_option
def notes(files, output, to, title, seed, explain, keep_tex, katex_url, max_seconds, strict):
    """Lecture notes: one document, a section per chain FILE, each derived and checked."""
    with _edge(), _limited(max_seconds):
        fmt = _notes_format(to, output)
        _check_document_options(fmt, output, False, keep_tex, katex_url)
        derivations = _derive_all(files, seed, strict)
        from .api import display_name
        headings = [d.chain.title or Path(display_name(f)).name
                    for d, f in zip(derivations, files)]
        rendered = _document(derivations, fmt, notes=True, headings=headings, title=title,
                             katex_url=katex_url, explain=explain, output=output)
        _emit(rendered, output, fmt, keep_tex)
