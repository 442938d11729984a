"""The ``derive`` command: a thin click shell over the Python API (``derive.api``)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .errors import EXIT_CHECK_FAILED, DeriveError

EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".json": "json",
              ".py": "numpy", ".html": "html", ".pdf": "pdf"}
FORMATS = ("markdown", "latex", "json", "numpy")
LATER = {"html": "-t html", "pdf": "-t pdf", "katex": "--flavor katex",
         "github": "--flavor github"}
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
        return click.get_text_stream("stdin").read(), "<stdin>"
    from .api import read_text
    return read_text(file), file


def _wrt(value):
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


def _not_yet(what: str) -> DeriveError:
    return DeriveError(f"not supported yet: {what} (planned for a later release)")


def _format(to, output, flavor) -> str:
    """The output format: ``-t``, else ``-o``'s extension, else Markdown."""
    if to is None and output is not None:
        suffix = Path(output).suffix.lower()
        if suffix not in EXTENSIONS:
            raise DeriveError(f"cannot tell the format from {output!r}: use -t with one of "
                              + ", ".join(FORMATS))
        to = EXTENSIONS[suffix]
    to = (to or "markdown").lower()
    if to in LATER:
        raise _not_yet(LATER[to])
    if to not in FORMATS:
        raise DeriveError(f"unknown format {to!r}: choose one of " + ", ".join(FORMATS))
    if flavor in LATER:
        raise _not_yet(LATER[flavor])
    if flavor != "mse":
        raise DeriveError(f"unknown Markdown flavor {flavor!r}: choose mse")
    return to


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
]


def with_input(command):
    for option in reversed(input_options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="derive")
def main():
    """Turn a declared chain of matrix definitions into a verified derivation by differentials."""


@main.command()
@with_input
@click.option("-t", "--to", "to", metavar="FORMAT",
              help="markdown, latex, json or numpy (default: from -o's extension, else markdown).")
@click.option("--flavor", default="mse", show_default=True, help="Markdown flavor.")
@click.option("-o", "--output", metavar="OUT", help="Write here (atomically) instead of stdout.")
@click.option("--expand", is_flag=True, help="Expand the gradient (the seed's (S−S²)(sxᵀ − yxᵀ)).")
@click.option("--no-check", is_flag=True, help="Skip the numeric check (the output says so).")
@click.option("--standalone", is_flag=True, hidden=True)
@click.option("--explain", is_flag=True, hidden=True)
def render(file, expr, wrt, seed, to, flavor, output, expand, no_check, standalone, explain):
    """Render the derivation of FILE (or - for stdin, or -e TEXT)."""
    from . import api
    from . import render as renderer
    from .output import write_atomically
    with _edge():
        if standalone or explain:
            raise _not_yet("--standalone" if standalone else "--explain")
        fmt = _format(to, output, flavor)
        text, name = _source(file, expr)
        derivation = api.derive(text, wrt=_wrt(wrt), source_name=name, check=not no_check,
                                seed=seed, expand=expand)
        if derivation.check is not None and not derivation.check.ok:
            _report_failure(derivation)
            sys.exit(EXIT_CHECK_FAILED)
        rendered = renderer.render(derivation, fmt, flavor)
        if output is None:
            click.echo(rendered, nl=False)
        else:
            write_atomically(output, rendered)


@main.command()
@with_input
def check(file, expr, wrt, seed):
    """Check every line of the derivation numerically; exit 0 if all hold, 3 if not."""
    from . import api
    from . import render as renderer
    with _edge():
        text, name = _source(file, expr)
        derivation = api.derive(text, wrt=_wrt(wrt), source_name=name, seed=seed)
        click.echo(renderer.to_verdict(derivation), nl=False)
        if not derivation.check.ok:
            for sentence in renderer.failure_sentences(derivation):
                click.echo(sentence, err=True)
            sys.exit(EXIT_CHECK_FAILED)
