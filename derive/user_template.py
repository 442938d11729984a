"""A user's Jinja2 template (``--template FILE``) rendered in Jinja2's sandbox.

The template gets the context the built-in templates get (``render.page``) and their
filters; it may include or extend the built-in templates by name.  Its errors are
user errors, cited by the template's path and line.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from .errors import DeriveError, Source
from .templates_path import template_dir

RUNTIME_ERRORS = (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError)
MAX_REPEAT = 1_000_000     # items a template may make with ``*`` (``'a' * 10**13`` is refused)
MAX_POWER = 1_000          # exponent of ``**``


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with ``*`` and ``**`` kept from building values that would exhaust
    memory or time (the sandbox bounds ``range`` but not these)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponent {right} is larger than {MAX_POWER}")
        if operator == "*":
            for items, count in ((left, right), (right, left)):
                if isinstance(items, (str, list, tuple)) and isinstance(count, int) \
                        and len(items) * count > MAX_REPEAT:
                    raise SecurityError(f"a repetition longer than {MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)


def render_user_template(path, context: dict, filters: dict) -> str:
    """``path`` rendered with ``context``; a failing template raises ``DeriveError``."""
    path = Path(path)
    text = _read(path)
    env = _sandbox(path.parent, filters)
    try:
        return env.from_string(text).render(context)
    except jinja2.TemplateSyntaxError as err:
        raise DeriveError(f"template error: {err.message}", Source(text, str(path)),
                          err.lineno) from None
    except RUNTIME_ERRORS as err:
        raise DeriveError(f"template error: {err}", Source(text, str(path)),
                          _template_line(err)) from None


def _sandbox(folder: Path, filters: dict) -> SandboxedEnvironment:
    """Includes resolve next to the user's template first, then among the built-in ones."""
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(folder)),
                                  jinja2.FileSystemLoader(str(template_dir()))])
    env = _Sandbox(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                   trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(filters)
    return env


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DeriveError(f"cannot read template {path}: not UTF-8 text") from None
    except OSError as exc:
        raise DeriveError(f"cannot read template {path}: {exc.strerror or exc}") from None


def _template_line(err: BaseException) -> int | None:
    """The template line of the innermost frame Jinja mapped back to the template."""
    line, tb = None, err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
