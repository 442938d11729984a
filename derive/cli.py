"""The ``derive`` command: click declarations, standard streams and the error edge over
the Python API (``derive.api.render``, ``derive.api.notes``), which does the work."""
from __future__ import annotations

import errno
import io
import math
import os
import sys
from contextlib import contextmanager

import click

from . import __version__, formats
from .errors import EXIT_CHECK_FAILED, EXIT_CLAIM_WRONG, DeriveError, shown_printable

EXIT_INTERRUPTED = 130
_CONTROL = "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"   # all but \t and \n


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences that would steer the terminal:
    from a file name, a title, a name) and lone surrogates shown as U+FFFD."""
    return shown_printable(text, _CONTROL, "\t\n")


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


def _is_terminal(stream) -> bool:
    """A terminal, or no stream at all (closed: ``<&-``), where nothing is piped in."""
    try:
        return stream is None or stream.isatty()
    except (ValueError, AttributeError):        # a closed file
        return True


class _Command(click.Group):
    """The ``derive`` group: ``derive FILE`` (or ``-``, or render's options first) is
    ``derive render FILE`` and a bare ``derive`` with input piped in renders it, as pandoc
    does; Ctrl-C is exit 130 at every stage (click's own handling makes an early one
    "Aborted!" and exit 1), and click's messages are made printable too."""

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

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, self._with_default(ctx, list(args)))

    def _with_default(self, ctx, args) -> list:
        """``render`` put in front where no command is named."""
        if not args:
            piped = not ctx.resilient_parsing and not _is_terminal(sys.stdin)
            return ["render"] if piped else args
        first = args[0]
        if first in self.commands or first in ("-h", "--help", "--version"):
            return args
        if first.startswith("-") or os.path.exists(first) or "." in first or "/" in first:
            return ["render", *args]       # a file (or a path that will say it is missing)
        return args

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


class _Choice(click.Choice):
    """Fixed values, listed by ``--help`` and shell completion; short aliases accepted
    (``-t md``) and a wrong value named in the API's own sentence."""

    def __init__(self, names, what: str, spellings=None):
        super().__init__(spellings or names, case_sensitive=False)
        self.names, self.what = tuple(names), what

    def convert(self, value, param, ctx):
        try:
            return formats.chosen(value, self.names, self.what)
        except DeriveError as err:
            self.fail(err.message, param, ctx)


def _source(file, expr) -> tuple:
    """``(path, text, source name)`` from one of FILE, ``-`` or no FILE with standard
    input piped in (read here), and ``-e TEXT``."""
    if file is not None and expr is not None:
        raise click.UsageError("give exactly one of FILE (or - for stdin) and -e TEXT")
    if expr is not None:
        return None, expr, "<-e>"
    if file not in (None, "-"):
        return file, None, None
    if file is None and _is_terminal(sys.stdin):
        raise click.UsageError("give exactly one of FILE (or - for stdin) and -e TEXT")
    text = _stdin()
    if file is None and not text:
        raise click.UsageError("give exactly one of FILE (or - for stdin) and -e TEXT "
                               "(standard input is empty)")
    return None, text, "<stdin>"


def _stdin() -> str:
    from .limits import read_bounded
    try:
        stdin = click.get_binary_stream("stdin")
        return read_bounded(stdin, "standard input").decode("utf-8")
    except UnicodeDecodeError:
        raise DeriveError("cannot read standard input: not UTF-8 text") from None
    except (RuntimeError, OSError, ValueError, AttributeError):    # closed: <&-
        raise DeriveError("cannot read standard input: it is closed (give FILE or "
                          "-e TEXT)") from None


def _wrt(value):
    """``--wrt W1,W2`` as names; given but naming nothing (``--wrt ""``, ``--wrt ,``) is an
    error, not the chain's own ``wrt`` silently used instead."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("names no variable (give --wrt W, or leave it out to use the "
                                 "chain's wrt line)", param_hint="'--wrt'")
    return names


class _Progress:
    """``[3/40] b.chain`` redrawn on standard error's last line, on a terminal only; a
    warning clears it first, so the two never share a line."""

    def __init__(self):
        self.on = sys.stderr is not None and _is_terminal(sys.stderr)
        self.shown = False

    def __call__(self, done: int, total: int, name, failed: int) -> None:
        if not self.on:
            return
        self.clear()
        if name is not None:
            failures = f", {failed} failed" if failed else ""
            click.echo(f"[{done + 1}/{total}{failures}] {printable(name)}", err=True, nl=False)
            sys.stderr.flush()
            self.shown = True

    def say(self, text: str) -> None:
        self.clear()
        _say(text)

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)
            self.shown = False


strict_option = click.option("--strict", is_flag=True,
                             help="Treat warnings (an undeclared or unused name, …) as errors.")

input_options = [
    click.argument("file", required=False),
    click.option("-e", "--expr", "expr", metavar="TEXT",
                 help="The chain typed inline (';' separates statements)."),
    click.option("--wrt", metavar="A,B", help="Differentiate with respect to these variables "
                                              "(default: the chain's wrt line)."),
    click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Seed of the random point the numeric check uses (0 or more)."),
    click.option("-f", "--from", "language", type=_Choice(formats.LANGUAGES, "input language"),
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


claim_option = click.option(
    "--claim", "claims", multiple=True, metavar="'W = EXPR'",
    help="Is this gradient right? EXPR, in the chain syntax over the chain's names, is "
         "compared with ∂E/∂W (repeatable).")


def with_input(command):
    for option in reversed(input_options):
        command = option(command)
    return claim_option(strict_option(max_seconds_option(command)))


def _shown(result, output) -> None:
    """The API's result on standard output, unless it went to a file."""
    if output == "-":
        _print(result, nl=False)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="derive",
                      message="%(prog)s %(version)s")
def main():
    """Turn a chain of matrix definitions into a derivation by differentials, checked
    numerically. `derive FILE` is `derive render FILE`; with no FILE, the chain is read
    from standard input."""


@main.command()
@with_input
@click.option("-t", "--to", "to",
              type=_Choice(formats.FORMATS, "format", formats.spellings()),
              help="Output format; md, tex and py are short for markdown, latex and numpy "
                   "(default: from -o's extension, else markdown).")
@click.option("--flavor", type=_Choice(formats.FLAVORS, "Markdown flavor"), default="mse",
              show_default=True,
              help="Where the Markdown goes: mse (math.stackexchange), katex (Jupyter, VS "
                   "Code) or github.")
@click.option("-o", "--output", metavar="OUT",
              help="Write to this file (atomically; - is standard output, the default).")
@click.option("--expand", is_flag=True,
              help="Multiply the gradient out: (S−S²)(s xᵀ − y xᵀ) instead of (S−S²)(s − y)xᵀ.")
@click.option("--no-check", is_flag=True, help="Skip the numeric check (the output says so).")
@click.option("--symmetric-gradient", is_flag=True,
              help="For inputs declared symmetric/spd: sym(G) = (G + Gᵀ)/2 instead of the "
                   "unstructured gradient G.")
@click.option("-s", "--standalone", is_flag=True,
              help="With -t latex: a complete article (what -o FILE.pdf compiles).")
@click.option("--keep-tex", is_flag=True, help="With PDF output: keep the .tex next to it.")
@click.option("--katex-url", metavar="URL",
              help="With HTML output: load KaTeX from this dist/ folder or URL, not the copy "
                   "inside the page.")
@click.option("--explain", is_flag=True, help="Name the rule(s) used on every line.")
@click.option("--jacobians", is_flag=True,
              help="Show each definition's local Jacobian and that their product is the "
                   "gradient (the chain rule made visible), checked.")
@click.option("--template", metavar="FILE",
              help="Render with your own Jinja2 template (sandboxed) instead of a built-in one.")
def render(file, expr, wrt, seed, language, max_seconds, strict, claims, to, flavor, output,
           expand, no_check, symmetric_gradient, standalone, explain, jacobians, template, keep_tex,
           katex_url):
    """Render the derivation of FILE (- or none: standard input; or -e TEXT)."""
    from . import api
    with _edge():
        path, text, name = _source(file, expr)
        output = output or "-"
        result = api.render(path, text=text, source_name=name, to=to, output=output,
                            flavor=flavor, template=template, standalone=standalone,
                            explain=explain, keep_tex=keep_tex, katex_url=katex_url,
                            wrt=_wrt(wrt), seed=seed, check=not no_check, expand=expand,
                            symmetric_gradient=symmetric_gradient, strict=strict,
                            language=language, max_seconds=max_seconds, warn=_say,
                            claims=claims, jacobians=jacobians)
        _shown(result, output)


@main.command()
@with_input
@click.option("--symmetric-gradient", is_flag=True,
              help="For inputs declared symmetric/spd: sym(G) = (G + Gᵀ)/2 instead of the "
                   "unstructured gradient G.")
@click.option("--jacobians", is_flag=True,
              help="Check each definition's local Jacobian and their product too.")
def check(file, expr, wrt, seed, language, max_seconds, strict, claims, symmetric_gradient,
          jacobians):
    """Check every line of the derivation numerically; exit 0 if all hold, 3 if not, and 1
    if derive's lines hold but a claim does not."""
    from . import api
    from .verdict import failure_sentences, to_verdict
    with _edge(), _limited(max_seconds):
        path, text, name = _source(file, expr)
        options = dict(wrt=_wrt(wrt), seed=seed, symmetric_gradient=symmetric_gradient,
                       strict=strict, language=language, claims=claims, jacobians=jacobians)
        derivation = (api.derive_file(path, **options) if path is not None else
                      api.derive(text, source_name=name, **options))
        api.report_warnings(derivation, _say)
        _print(printable(to_verdict(derivation)), nl=False)
        if not derivation.check.ok:
            for sentence in failure_sentences(derivation):
                _say(sentence)
            sys.exit(EXIT_CHECK_FAILED)
        if any(verdict.holds is False for verdict in derivation.claims):
            sys.exit(EXIT_CLAIM_WRONG)


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="notes.pdf, notes.tex or notes.html (written atomically; - is standard "
                   "output, for LaTeX and HTML).")
@click.option("-t", "--to", "to",
              type=_Choice(formats.NOTES_FORMATS, "notes format",
                           formats.spellings(formats.NOTES_FORMATS)),
              help="Output format (default: from -o's extension).")
@click.option("--title", help="The title of the notes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random point the numeric checks use (0 or more).")
@click.option("--explain", is_flag=True, help="Name the rule(s) used on every line.")
@click.option("--keep-tex", is_flag=True, help="With PDF output: keep the .tex next to it.")
@click.option("--katex-url", metavar="URL",
              help="With HTML output: load KaTeX from this dist/ folder or URL, not the copy "
                   "inside the page.")
@click.option("--max-seconds", type=click.FloatRange(min=0), metavar="S", callback=_finite,
              help="Stop a chain that takes longer than S seconds (default 60, or "
                   "DERIVE_MAX_SECONDS; 0: no limit).")
@strict_option
def notes(files, output, to, title, seed, explain, keep_tex, katex_url, max_seconds, strict):
    """Lecture notes: one document, a section per chain FILE, each derived and checked;
    on a terminal, progress per chain; if any fails, one summary and nothing written."""
    from . import api
    progress = _Progress()
    with _edge():
        try:
            result = api.notes(files, output, to=to, title=title, seed=seed, explain=explain,
                               keep_tex=keep_tex, katex_url=katex_url, strict=strict,
                               max_seconds=max_seconds, warn=progress.say, progress=progress)
        finally:
            progress.clear()
        _shown(result, output)
