"""The ``derive`` command: a thin click shell over the Python API (``derive.api``)."""
from __future__ import annotations

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


@contextmanager
def _edge():
    """Where user errors become ``file:line:col`` messages and exit codes, never tracebacks."""
    try:
        yield
    except DeriveError as err:
        click.echo(err.format(), err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("derive: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


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
    from .api import display_name, read_text
    return read_text(file), display_name(file)


def _language(language, file):
    """``-f``, else LaTeX for a ``.tex`` file, else None (the text decides)."""
    if language is None and file not in (None, "-") and str(file).lower().endswith(".tex"):
        return "latex"
    return language


def _warn(derivation) -> None:
    """What the LaTeX reader skipped, and what it found of the further forms, on stderr."""
    for sentence in derivation.chain.warnings:
        click.echo(f"derive: warning: {sentence}", err=True)
    for sentence in derivation.warnings:
        if " form of " in sentence or "the claim" in sentence:
            click.echo(f"derive: {sentence}", err=True)


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
    if fmt == "pdf":
        from .output import is_stream
        if output in (None, "-") or is_stream(output):
            raise DeriveError("refusing to write a PDF to standard output or a terminal: "
                              "give -o FILE.pdf")
        from .pdf import engine
        engine()


def _document(derivations, fmt, *, notes=False, katex_url=None, explain=False, **options) -> str:
    """A whole document: an HTML page, else the LaTeX article or notes (which a PDF compiles)."""
    from . import document
    if fmt == "html":
        return document.html(derivations, notes=notes, katex_url=katex_url, explain=explain,
                             **options)
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
        click.echo(rendered, nl=False)
    else:
        write_atomically(output, rendered)


def _report_failure(derivation) -> None:
    """A failed check: the derivation with failing lines marked, then what failed, on stderr."""
    from . import render
    click.echo(render.to_verdict(derivation), err=True, nl=False)
    for sentence in render.failure_sentences(derivation):
        click.echo(sentence, err=True)


input_options = [
    click.argument("file", required=False),
    click.option("-e", "--expr", "expr", metavar="TEXT",
                 help="The chain inline (';' separates statements)."),
    click.option("--wrt", metavar="A,B", help="Variables to differentiate with respect to."),
    click.option("--seed", type=int, default=0, show_default=True,
                 help="Seed of the random point of the numeric check."),
    click.option("-f", "--from", "language", type=click.Choice(["chain", "latex"]),
                 help="Input language (default: latex for a .tex file or a text with $ or a "
                      "backslash, else chain)."),
]
max_seconds_option = click.option(
    "--max-seconds", type=click.FloatRange(min=0), metavar="S",
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
    return max_seconds_option(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
def render(file, expr, wrt, seed, language, max_seconds, to, flavor, output, expand, no_check,
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
                                language=_language(language, file))
        _warn(derivation)
        if derivation.check is not None and not derivation.check.ok:
            _report_failure(derivation)
            sys.exit(EXIT_CHECK_FAILED)
        if template is not None:
            rendered = renderer.to_template(derivation, template, explain)
        elif fmt in DOCUMENTS or standalone:
            rendered = _document([derivation], fmt, katex_url=katex_url, explain=explain)
        else:
            rendered = renderer.render(derivation, fmt, flavor, explain)
        _emit(rendered, output, fmt, keep_tex)


@main.command()
@with_input
@click.option("--symmetric-gradient", is_flag=True,
              help="For inputs declared symmetric/spd: sym(G) = (G + Gᵀ)/2 instead of the "
                   "unstructured gradient G.")
def check(file, expr, wrt, seed, language, max_seconds, symmetric_gradient):
    """Check every line of the derivation numerically; exit 0 if all hold, 3 if not."""
    from . import api
    from . import render as renderer
    with _edge(), _limited(max_seconds):
        text, name = _source(file, expr)
        derivation = api.derive(text, wrt=_wrt(wrt), source_name=name, seed=seed,
                                symmetric_gradient=symmetric_gradient,
                                language=_language(language, file))
        _warn(derivation)
        click.echo(renderer.to_verdict(derivation), nl=False)
        if not derivation.check.ok:
            for sentence in renderer.failure_sentences(derivation):
                click.echo(sentence, err=True)
            sys.exit(EXIT_CHECK_FAILED)


def _notes_format(to, output) -> str:
    """latex, pdf or html: ``-t``, else ``-o``'s extension."""
    fmt = (to or EXTENSIONS.get(Path(output).suffix.lower(), "")).lower()
    if fmt not in NOTES_FORMATS:
        raise DeriveError(f"notes are written as .tex, .pdf or .html, not {output!r} "
                          "(or use -t latex|pdf|html)")
    return fmt


def _derive_all(files, seed) -> list:
    """Every chain derived and checked before anything is written; failures name their file."""
    from . import api
    derivations, failed, code = [], [], EXIT_CHECK_FAILED
    for path in files:
        try:
            derivation = api.derive_file(path, seed=seed)
        except DeriveError as err:
            click.echo(err.format(), err=True)
            failed.append(path)
            code = min(code, err.exit_code)
            continue
        if not derivation.check.ok:
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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random point of the numeric checks.")
@click.option("--explain", is_flag=True, help="Name the rule(s) used on every line.")
@click.option("--keep-tex", is_flag=True, help="With PDF output: keep the .tex next to it.")
@click.option("--katex-url", metavar="URL",
              help="With HTML output: load KaTeX from this dist/ folder or URL, not the CDN.")
@max_seconds_option
def notes(files, output, to, title, seed, explain, keep_tex, katex_url, max_seconds):
    """Lecture notes: one document, a section per chain FILE, each derived and checked."""
    with _edge(), _limited(max_seconds):
        fmt = _notes_format(to, output)
        _check_document_options(fmt, output, False, keep_tex, katex_url)
        derivations = _derive_all(files, seed)
        from .api import display_name
        headings = [d.chain.title or Path(display_name(f)).name
                    for d, f in zip(derivations, files)]
        rendered = _document(derivations, fmt, notes=True, headings=headings, title=title,
                             katex_url=katex_url, explain=explain)
        _emit(rendered, output, fmt, keep_tex)
