"""A long fuzz run: chains through every output format, verdicts judged by the oracle.

    python tests/fuzz_run.py --count 20000 --jobs 2 --record

Three kinds of case, in turn: a random chain built as trees (``random_chains.py``); the
same kind of chain written out as chain text with awkward names (``np_``, ``lambda_``,
``x___``, ``z_z_z_z``, Greek ``ο ς Α``) and read by the parser; an example chain with one
to four random edits. Each goes derive → check → every format (Markdown in each flavor,
LaTeX, the standalone article, JSON, the NumPy module run against the oracle, HTML; a
PDF every ``--pdf-every`` cases). A case fails on a traceback (any exception but a
located ``DeriveError``), a hang (``--case-seconds``), or a wrong verdict: derive's check
passing a gradient the oracle (``tests/oracle.py``, central differences of its own) calls
wrong, or failing one it calls right. ``--record`` writes the table to
benchmarks/RESULTS.md. Exit status 1 when any case failed.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402

from derive import api, document, render  # noqa: E402
from derive.check import check  # noqa: E402
from derive.errors import DeriveError  # noqa: E402
from derive.expr import ShapeError, Unspecified, walk  # noqa: E402
from derive.numpy_code import callable_name  # noqa: E402
from derive.printer import text as text_of  # noqa: E402
from derive.sweep import build  # noqa: E402
from oracle import could_not_compare, draw, gradients, judge, sizes_of, stand_in  # noqa: E402
from random_chains import Generator  # noqa: E402

AWKWARD = ["np", "np_", "float", "lambda_", "W_1", "S_2_", "x___", "z_z_z_z", "Sigma",
           "given", "inputs", "id", "objective", "gradient", "ο", "ς", "Α", "Β", "Ρ", "Χ",
           "print", "True_", "match", "type", "f_prime2"]
EXAMPLES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.chain"))]
KINDS = ("trees", "text", "mutant")


class Hung(BaseException):
    """The alarm: a BaseException so that no ``except Exception`` inside derive swallows it."""


def chain_text(chain, rng: random.Random) -> str:
    """The chain as chain syntax, its names replaced by awkward ones (so the parser, the
    printers and the NumPy module meet them)."""
    lines = []
    for item in chain.inputs:
        rows, cols = item.symbol.shape
        size = "scalar" if (rows, cols) == (1, 1) else str(rows) if cols == 1 else f"{rows}x{cols}"
        lines.append(f"{item.symbol.name} : {size}")
    lines += [f"{d.symbol.name} = {text_of(d.expr)}" for d in chain.definitions]
    lines.append("wrt " + ", ".join(w.name for w in chain.wrt))
    text = "\n".join(lines)
    names = [i.symbol.name for i in chain.inputs] + [d.symbol.name for d in chain.definitions]
    chosen = rng.sample(AWKWARD, k=min(len(AWKWARD), rng.randrange(1, 6)))
    for old, new in zip(rng.sample(names, k=len(chosen)), chosen):
        text = re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new, text)
    return text


def mutant(rng: random.Random) -> str:
    """An example chain with one to four random edits (characters, tokens or lines)."""
    text = rng.choice(EXAMPLES)
    for _ in range(rng.randrange(1, 5)):
        tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?|\s+|.", text)
        if not tokens:
            break
        i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
        what = rng.randrange(5)
        if what == 0:
            del tokens[i]
        elif what == 1:
            tokens.insert(i, tokens[j])
        elif what == 2:
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif what == 3:
            tokens.insert(i, rng.choice(["'", "ᵀ", "^{-1}", "∘", " ", "2", "(", ")", "+", "-",
                                         "x", "W", "tr(", "exp(", ";", "\n", "Α", "ο"]))
        else:
            lines = "".join(tokens).split("\n")
            k = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[k])
            tokens = ["\n".join(lines)]
        text = "".join(tokens)
    return text


def derivation_of(kind: str, seed: int):
    """The case's derivation (checked), or the string ``input error``."""
    rng = random.Random(seed)
    if kind == "trees":
        derivation = build(Generator(seed).chain())
        return dataclasses.replace(derivation, check=check(derivation, seed=seed))
    text = chain_text(Generator(seed).chain(), rng) if kind == "text" else mutant(rng)
    try:
        return api.derive(text, seed=seed)
    except DeriveError as error:
        if error.line is None and not error.message.startswith("--wrt"):
            raise AssertionError(f"an input error without a place: {error.message}") from None
        return "input error"


def every_format(derivation, pdf: bool) -> None:
    """Each output, with the one property of each that a reader relies on."""
    explain = bool(derivation.chain.definitions) and len(derivation.chain.definitions) % 2 == 0
    ok = derivation.check.ok
    for flavor in render.FLAVORS:
        assert ("checked numerically" in derivation.to_markdown(flavor, explain)) == ok
    assert "\\begin{align*}" in derivation.to_latex(explain)
    assert json.loads(derivation.to_json())["check"]["ok"] is ok
    tex = document.standalone(derivation, explain=explain)
    assert "\\documentclass" in tex
    assert "<html" in document.html([derivation], explain=explain)
    numpy_module(derivation)
    if pdf:
        from derive.pdf import compile_pdf
        assert compile_pdf(tex).startswith(b"%PDF")


def numpy_module(derivation) -> None:
    """The generated module's gradient equals the displayed one, both evaluated apart from
    derive (the module by Python, the display by the oracle's evaluator)."""
    namespace: dict = {}
    exec(compile(derivation.to_numpy(), "<derive numpy>", "exec"), namespace)   # derive's own output
    chain = derivation.chain
    sizes = sizes_of(chain)
    point = draw(chain, sizes, np.random.default_rng(1))
    listed = json.loads(derivation.to_json())["numpy"]
    if "gradient" not in listed:      # a chain of Jacobians only: tests/test_jacobian.py
        return
    parameters = listed["gradient"]
    functions = {callable_name(n.name, k): stand_in(n.name, k) for d in chain.definitions
                 for n in walk(d.expr) if isinstance(n, Unspecified) for k in range(3)}
    functions = {k: f for k, f in functions.items() if k in parameters}
    assert set(parameters) == set(point) | set(functions), (parameters, list(point))
    with np.errstate(all="ignore"):
        try:
            got = namespace["gradient"](**functions, **point)
            want = gradients(derivation, point, sizes)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            return
    for name, value in want.items():
        value = np.asarray(value)
        if np.all(np.isfinite(value)) and np.all(np.isfinite(got[name])):
            assert np.allclose(np.reshape(got[name], value.shape), value, rtol=1e-7, atol=1e-9), name


def run_case(number: int, seed: int, pdf_every: int, case_seconds: float) -> tuple:
    """(kind, outcome, oracle verdict, failure text or None, seconds) of case ``number``."""
    kind = KINDS[number % len(KINDS)]
    started = time.perf_counter()

    def alarm(signum, frame):
        raise Hung(f"case {number} ran longer than {case_seconds} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, case_seconds)
    outcome, verdict, failure = "?", "-", None
    try:
        try:
            derivation = derivation_of(kind, seed + number)
        except ShapeError:
            return kind, "ill-shaped draw", "-", None, time.perf_counter() - started
        if derivation == "input error":
            outcome = "input error"
        else:
            outcome = "verified" if derivation.check.ok else "check failed"
            verdict = judge(derivation, seed + number)
            if derivation.check.ok and verdict == "wrong":
                failure = "wrong verdict: the check passed a gradient the oracle calls wrong"
            elif not derivation.check.ok and verdict == "right" \
                    and not could_not_compare(derivation.check):
                failure = "false alarm: the check failed a gradient the oracle calls right"
            elif kind != "mutant" and verdict != "right":
                failure = f"a valid random chain that the oracle calls {verdict}"
            every_format(derivation, pdf_every > 0 and number % pdf_every == 0)
    except Hung as hung:
        outcome, failure = "hang", str(hung)
    except Exception:            # the point of the run: any other exception is a finding
        outcome, failure = "traceback", traceback.format_exc(limit=8)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return kind, outcome, verdict, failure, time.perf_counter() - started


def _worker(arguments):
    return arguments[0], run_case(*arguments)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--pdf-every", type=int, default=500, help="0: no PDF")
    parser.add_argument("--case-seconds", type=float, default=60.0)
    parser.add_argument("--record", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    os.nice(10)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tasks = [(k, args.seed, args.pdf_every, args.case_seconds) for k in range(args.count)]
    started = time.perf_counter()
    results = {}
    def note(number, result):
        """Keep a result; say a failure at once; every 500 cases, the table so far."""
        results[number] = result
        if result[3]:
            print(f"case {number} ({result[0]}): {result[3]}", file=sys.stderr, flush=True)
        if len(results) % 500 == 0 and len(results) < args.count:
            print(f"{len(results)}/{args.count}", file=sys.stderr, flush=True)
            if args.record:
                _record(summary(results, args, time.perf_counter() - started), argv)

    if args.jobs > 1:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            for number, result in pool.imap_unordered(_worker, tasks, chunksize=10):
                note(number, result)
    else:
        for task in tasks:
            note(task[0], run_case(*task))
    table = summary(results, args, time.perf_counter() - started)
    print(table)
    if args.record:
        _record(table, argv)
    return 1 if any(r[3] for r in results.values()) else 0


def _record(table: str, argv) -> None:
    from results import write_section
    write_section("fuzz", "python tests/fuzz_run.py " + " ".join(argv or sys.argv[1:]), table)


def summary(results: dict, args, seconds: float) -> str:
    """The table: outcomes and oracle verdicts per kind, then every failure."""
    counts = collections.Counter((r[0], r[1], r[2]) for r in results.values())
    pdfs = sum(1 for n, r in results.items() if args.pdf_every and n % args.pdf_every == 0
               and r[1] in ("verified", "check failed"))
    so_far = "" if len(results) == args.count else f" (of {args.count}, so far)"
    lines = [f"{len(results)} cases{so_far}, seed {args.seed}, {seconds:.0f} s wall, {args.jobs} jobs, "
             f"{pdfs} PDFs; slowest case {max((r[4] for r in results.values()), default=0):.1f} s",
             "", f"{'kind':8} {'outcome':16} {'oracle':13} {'cases':>6}"]
    for (kind, outcome, verdict), n in sorted(counts.items()):
        lines.append(f"{kind:8} {outcome:16} {verdict:13} {n:6}")
    failures = [(n, r) for n, r in sorted(results.items()) if r[3]]
    tracebacks = sum(1 for _, r in failures if r[1] == "traceback")
    hangs = sum(1 for _, r in failures if r[1] == "hang")
    wrong = sum(1 for _, r in failures if r[1] not in ("traceback", "hang"))
    lines += ["", f"tracebacks {tracebacks}, hangs {hangs}, wrong verdicts {wrong}"]
    for number, result in failures[:20]:
        lines.append(f"case {number} ({result[0]}): {result[3].strip().splitlines()[-1]}")
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        sys.exit(main())
