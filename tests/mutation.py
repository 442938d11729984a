"""The mutation run: break derive on purpose, one row at a time, and require the suite to fail.

    python tests/mutation.py                 # every row (about 20 minutes on a quiet machine)
    python tests/mutation.py --sample 3      # a few rows, drawn by --seed (CI)
    python tests/mutation.py --only logdet   # rows whose name contains a word
    python tests/mutation.py --record        # the table into benchmarks/RESULTS.md

Each row of ``MUTANTS`` is ``(name, file, old text, new text, why, tests)``: the old text
must occur exactly once in the file (a row whose text has gone is reported as stale, and
fails the run, so the table follows the code). The edit is applied to a copy of the
source tree, and the row's tests run there (with a conftest of the copy's own, so the
copy is imported, never an installed derive); the mutant is killed when they fail.
Every rule row of every table (the differentials, the elementwise functions, the moves
of ``:``, the diagonal rewrites) and the check's paths have a row, and so do the named
mutants of issue 11. Exit status 1 when a mutant survived or a row is stale.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RULES = ("tests/test_examples.py", "tests/test_mutants_killed.py", "tests/test_rules.py",
         "tests/test_functions.py", "tests/test_corrupted_rule.py")
CHECK = ("tests/test_mutants_killed.py", "tests/test_check.py", "tests/test_corrupted_rule.py",
         "tests/test_symmetric_gradient.py", "tests/test_examples.py")
NUMPY = ("tests/test_numpy_code.py", "tests/test_examples.py")

# (name, file, old, new, why, tests)
MUTANTS = [
    # ---- the differentials (derive/rules.py), one row per node type
    ("d sum", "derive/rules.py", "lambda e, d, ans: Add(tuple(d(t) for t in e.terms))",
     "lambda e, d, ans: Add(tuple(d(t) for t in e.terms[:-1]) + (Zero(e.shape),))",
     "the last term's differential dropped", RULES),
    ("d product", "derive/rules.py", "    for k in range(len(e.factors)):",
     "    for k in range(len(e.factors) - 1):", "Leibniz without the last factor's term", RULES),
    ("d transpose", "derive/rules.py", "lambda e, d, ans: Transpose(d(e.arg))),",
     "lambda e, d, ans: d(e.arg)),", "d(Aᵀ) = dA", RULES),
    ("d inverse", "derive/rules.py", "lambda e, d, ans: neg(Mul((ans, d(e.arg), ans)))),",
     "lambda e, d, ans: Mul((ans, d(e.arg), ans))),", "the sign of d(X⁻¹) lost", RULES),
    ("d scalar power", "derive/rules.py", "return Mul((Number(k), Power(x, k - 1), dx))",
     "return Mul((Number(k - 1), Power(x, k - 1), dx))", "k − 1 for k in d(xᵏ)", RULES),
    ("d matrix power", "derive/rules.py", "dx, Power(x, k - 1 - j))) for j in range(k)))",
     "dx, Power(x, k - 1 - j))) for j in range(k - 1)))", "a term of d(Xᵏ) dropped", RULES),
    ("d hadamard", "derive/rules.py",
     "return Add((Hadamard(d(e.left), e.right), Hadamard(e.left, d(e.right))))",
     "return Add((Hadamard(d(e.left), e.right), Hadamard(e.right, d(e.right))))",
     "A∘dB written B∘dB", RULES),
    ("d quotient", "derive/rules.py",
     "                neg(HadamardDivide(Hadamard(ans, d(e.right)), e.right))))",
     "                HadamardDivide(Hadamard(ans, d(e.right)), e.right)))",
     "the sign of the quotient rule's second term", RULES),
    ("d frobenius", "derive/rules.py",
     "return Add((Frobenius(d(e.left), e.right), Frobenius(e.left, d(e.right))))",
     "return Add((Frobenius(d(e.left), e.right), Frobenius(e.right, d(e.right))))",
     "A:dB written B:dB", RULES),
    ("d trace", "derive/rules.py", "lambda e, d, ans: Trace(d(e.arg))),",
     "lambda e, d, ans: Mul((Number(2), Trace(d(e.arg))))),", "d tr = 2 tr d", RULES),
    ("d det", "derive/rules.py",
     "lambda e, d, ans: Mul((ans, Frobenius(_inverse_transpose(e.arg), d(e.arg))))),",
     "lambda e, d, ans: Frobenius(_inverse_transpose(e.arg), d(e.arg))),",
     "det X dropped from d det X", RULES),
    ("d logdet", "derive/rules.py",
     "lambda e, d, ans: Frobenius(_inverse_transpose(e.arg), d(e.arg))),\n    Apply",
     "lambda e, d, ans: Frobenius(Inverse(e.arg), d(e.arg))),\n    Apply",
     "X⁻¹ for X⁻ᵀ: right only for symmetric X", RULES),
    ("d unspecified", "derive/rules.py", "Unspecified(e.name, e.arg, e.order + 1), d(e.arg)",
     "Unspecified(e.name, e.arg, e.order), d(e.arg)", "f for f′", RULES),
    ("d Diag", "derive/rules.py", "lambda e, d, ans: Diag(d(e.arg))),",
     "lambda e, d, ans: Mul((Number(2), Diag(d(e.arg))))),", "a factor 2", RULES),
    ("d diag", "derive/rules.py", "lambda e, d, ans: DiagPart(d(e.arg))),",
     "lambda e, d, ans: Mul((Number(2), DiagPart(d(e.arg))))),", "a factor 2", RULES),
    ("d norm", "derive/rules.py", "Frobenius(Mul((Power(ans, -1), e.arg)), d(e.arg))),",
     "Frobenius(Mul((Power(ans, -2), e.arg)), d(e.arg))),", "A/‖A‖² for A/‖A‖", RULES),
    ("d element power", "derive/rules.py",
     "return Mul((Number(k), Hadamard(base, d(e.arg)))) if k != 1 else d(e.arg)",
     "return Mul((Number(k + 1), Hadamard(base, d(e.arg)))) if k != 1 else d(e.arg)",
     "k + 1 for k", RULES),
    ("d kron", "derive/rules.py", "+ ((Kron(e.left, db),) if not isinstance(db, Zero) else ())",
     "+ ((Kron(e.left, da),) if not isinstance(db, Zero) else ())", "A⊗dA for A⊗dB", RULES),
    # ---- the moves of ':' (derive/frobenius.py), one row per rule
    ("move sum", "derive/frobenius.py", "return [(g, t, (SUM,)) for t in e.terms if",
     "return [(g, t, (SUM,)) for t in e.terms[:1] if", "only the first term moved", RULES),
    ("move left factor", "derive/frobenius.py",
     "left = [Transpose(_product_of(before))] if before else []",
     "left = [_product_of(before)] if before else []", "A:BC = BA:C", RULES),
    ("move right factor", "derive/frobenius.py",
     "right = [Transpose(_product_of(after))] if after else []",
     "right = [_product_of(after)] if after else []", "A:BC = AC:B", RULES),
    ("move transpose", "derive/frobenius.py", "[(Transpose(g), e.arg, (TRANSPOSE,))]",
     "[(g, e.arg, (TRANSPOSE,))]", "A:Bᵀ = A:B", RULES),
    ("move hadamard", "derive/frobenius.py", "return [(Hadamard(g, e.left), e.right, (HADAMARD,))]",
     "return [(Hadamard(g, e.right), e.right, (HADAMARD,))]", "A:(B∘C) = (A∘C):C", RULES),
    ("move hadamard divide", "derive/frobenius.py",
     "return [(HadamardDivide(g, e.right), e.left, (HADAMARD_DIVIDE,))]",
     "return [(Hadamard(g, e.right), e.left, (HADAMARD_DIVIDE,))]", "A:(B⊘C) = (A∘C):B", RULES),
    ("move nested", "derive/frobenius.py", "return [(Mul((g, e.left)), e.right, (NESTED,))]",
     "return [(Mul((g, e.right)), e.right, (NESTED,))]", "α:(A:B) = αB:B", RULES),
    ("move trace", "derive/frobenius.py", "[(Mul((g, Identity(e.arg.shape[0]))), e.arg, (TRACE,))]",
     "[(Mul((Add((g, g)), Identity(e.arg.shape[0]))), e.arg, (TRACE,))]", "α:tr(A) = 2αI:A", RULES),
    ("move Diag", "derive/frobenius.py", "[(DiagPart(g), e.arg, (DIAG,))]",
     "[(DiagPart(Add((g, g))), e.arg, (DIAG,))]", "a factor 2", RULES),
    ("move diag", "derive/frobenius.py", "[(Diag(g), e.arg, (DIAG_PART,))]",
     "[(Diag(Add((g, g))), e.arg, (DIAG_PART,))]", "a factor 2", RULES),
    ("move vec", "derive/frobenius.py",
     "else Unvec(g, rows, cols)", "else Transpose(Unvec(g, cols, rows))",
     "unvec in row-major order", RULES),
    ("move kron left", "derive/frobenius.py",
     "moves.append((KronBlockFrobenius(g, e.right), e.left, (KRON_LEFT,)))",
     "moves.append((KronBlockFrobenius(Add((g, g)), e.right), e.left, (KRON_LEFT,)))",
     "a factor 2", RULES),
    ("move kron right", "derive/frobenius.py",
     "moves.append((KronBlockSum(g, e.left), e.right, (KRON_RIGHT,)))",
     "moves.append((KronBlockSum(Add((g, g)), e.left), e.right, (KRON_RIGHT,)))",
     "a factor 2", RULES),
    # ---- the diagonal rewrites (derive/diagonal.py)
    ("a∘b as Diag", "derive/diagonal.py", "return Mul((Diag(e.left), e.right)), HADAMARD_AS_DIAG",
     "return Mul((Number(2), Diag(e.left), e.right)), HADAMARD_AS_DIAG", "a factor 2", RULES),
    ("Diag of sum", "derive/diagonal.py", "return Add(tuple(Diag(t) for t in a.terms)), DIAG_OF_SUM",
     "return Add(tuple(Diag(t) for t in a.terms[:1])), DIAG_OF_SUM", "a term dropped", RULES),
    ("Diag of multiple", "derive/diagonal.py",
     "return Mul((a.factors[0], Diag(a.factors[1]))), DIAG_OF_MULTIPLE",
     "return Diag(a.factors[1]), DIAG_OF_MULTIPLE", "the coefficient dropped", RULES),
    ("Diag of hadamard", "derive/diagonal.py",
     "return Mul((Diag(a.left), Diag(a.right))), DIAG_OF_HADAMARD",
     "return Mul((Diag(a.left), Diag(a.left))), DIAG_OF_HADAMARD", "Diag(a)² for Diag(a)Diag(b)",
     RULES),
    ("Diag of ones", "derive/diagonal.py", "return Identity(a.rows), DIAG_OF_ONES",
     "return Mul((Number(2), Identity(a.rows))), DIAG_OF_ONES", "Diag(1) = 2I", RULES),
    # ---- issue 11's named mutants: the check's paths and the NumPy module
    ("symmetric directions", "derive/check.py",
     'symmetric = bool(derivation.options.get("symmetric_gradient")) and structured',
     "symmetric = structured",
     "symmetric directions for every symmetric/spd input hide a transposed gradient", CHECK),
    ("tolerance 50x", "derive/check.py", "TOLERANCE = 1e-8 ", "TOLERANCE = 5e-7 ",
     "the check's tolerance loosened 50×", CHECK),
    ("check always passes", "derive/derivation.py", "return all(v.ok for v in self.verdicts)",
     "return True", "a check that always passes", CHECK),
    ("symmetric product", "derive/expr.py", "    return reversed_transposed == matrices",
     "    return True", "a product of two symmetric matrices treated as symmetric",
     RULES + ("tests/test_symmetric_gradient.py",)),
    ("unvec order", "derive/numpy_code.py",
     "return f\"np.reshape({self.doprint(expr.arg)}, {self._shape(expr.shape)}, order='F')\"",
     "return f\"np.reshape({self.doprint(expr.arg)}, {self._shape(expr.shape)}, order='C')\"",
     "a wrong unvec order in the NumPy module", NUMPY),
    ("numpy transpose", "derive/numpy_code.py", 'return f"{self._atom(expr.arg)}.T"',
     'return f"{self._atom(expr.arg)}"', "the NumPy module drops a transpose", NUMPY),
]


def _elementwise_rows() -> list:
    """One row per elementwise function: its differential scaled by 2 (functions.py),
    skipped where the differential is 0 (sign, step: doubling 0 changes nothing)."""
    text = (ROOT / "derive/functions.py").read_text(encoding="utf-8")
    rows = []
    for match in re.finditer(r"^( +lambda u, y, du: )(.*),$", text, re.M):
        body = match.group(2)
        if body.startswith("Zero("):
            continue
        rows.append((f"d {_function_before(text, match.start())}", "derive/functions.py",
                     match.group(0), f"{match.group(1)}scale(2, {body}),",
                     "the table's differential doubled", RULES))
    return rows


def _function_before(text: str, position: int) -> str:
    """The name of the table row a differential belongs to: the last quoted word before it."""
    words = re.findall(r'"([a-z0-9]+)"', text[:position])
    return words[-1] if words else "?"


def all_mutants() -> list:
    return MUTANTS + _elementwise_rows()


def _copy_tree(folder: Path) -> None:
    """The repository's source, tests, templates and examples, without caches or VCS."""
    ignore = shutil.ignore_patterns(".git", "node_modules", "__pycache__", ".hypothesis",
                                    "output", "*.pdf", ".pytest_cache", "build", "*.egg-info")
    for name in ("derive", "templates", "tests", "examples", "pyproject.toml", "README.md"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, folder / name)
    # the copy's own conftest: its derive first on sys.path, never an installed one
    (folder / "tests" / "conftest.py").write_text(
        "import sys\nfrom pathlib import Path\n"
        "sys.path.insert(0, str(Path(__file__).resolve().parent.parent))\n", encoding="utf-8")


def run_mutant(row, timeout: float) -> tuple:
    """``(status, seconds)``: killed, survived, stale (the old text is gone) or timeout."""
    name, file, old, new, why, tests = row
    source = (ROOT / file).read_text(encoding="utf-8")
    if source.count(old) != 1:
        return "stale", 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="derive-mutant-") as folder:
        copy = Path(folder)
        _copy_tree(copy)
        (copy / file).write_text(source.replace(old, new), encoding="utf-8")
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "XDG_CACHE_HOME": str(copy / ".cache"),
               "PYTHONPATH": str(copy), "HYPOTHESIS_PROFILE": "ci"}
        env.pop("CI", None)      # a skipped renderer test is no kill either way
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                   *tests], cwd=copy, env=env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - started
    status = "killed" if done.returncode != 0 else "survived"
    return status, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="run this many rows, drawn by --seed")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", default="", help="rows whose name contains this")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--record", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    rows = [r for r in all_mutants() if args.only in r[0]]
    if args.sample:
        seed = args.seed if args.seed is not None else int(time.strftime("%Y%m%d"))
        rows = random.Random(seed).sample(rows, k=min(args.sample, len(rows)))
    lines = [f"{'mutant':22} {'file':22} {'status':9} {'s':>5}  why"]
    counts: dict = {}
    for done, row in enumerate(rows, 1):
        status, seconds = run_mutant(row, args.timeout)
        counts[status] = counts.get(status, 0) + 1
        lines.append(f"{row[0]:22} {row[1][7:]:22} {status:9} {seconds:5.0f}  {row[4]}")
        print(lines[-1], flush=True)
        if args.record:            # after every row, so a run cut short still says what it saw
            _record(lines, counts, done, len(rows), argv)
    print(_total(counts, len(rows), len(rows)))
    return 0 if set(counts) <= {"killed"} else 1


def _total(counts: dict, done: int, count: int) -> str:
    so_far = "" if done == count else f" ({done} of {count} run so far)"
    return f"{done} mutants{so_far}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _record(lines: list, counts: dict, done: int, count: int, argv) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results import write_section
    write_section("mutation", "python tests/mutation.py " + " ".join(argv or sys.argv[1:]),
                  "\n".join(lines + ["", _total(counts, done, count)]))


if __name__ == "__main__":
    sys.exit(main())
