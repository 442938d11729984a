"""derive's benchmarks, one table each: ``python benchmarks/run.py [--quick] [--only 1,3]``.

1. a cold ``derive check`` process against ``python -c "import sympy, numpy"``;
2. L-layer tanh networks through ``derive render --to json --no-check``;
3. the same networks through SymPy's matrix ``diff``;
4. the numeric check's cost against one evaluation of the objective (single-threaded BLAS);
5. the example gallery, derive against SymPy, each result checked numerically;
6. hard but correct chains for the check: no false alarm, every corrupted rule caught.

The machines are noisy: the compared runs are interleaved and every time is a median.
SymPy runs in a subprocess with a time limit, so a hang is reported as a timeout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import cast
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import recorded  # noqa: E402  (a sibling script, not a package)
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from deep_chain import deep_chain  # noqa: E402

LAYERS = (1, 2, 4, 8, 16, 32, 64, 128)
WIDTH = 4
FIT_FROM = 16
SIZES = (10, 100, 1000)
AGREE = 1e-8          # relative error below which a gradient counts as right


# ---------------------------------------------------------------- output


def table(title: str, headers, rows, notes=()) -> None:
    """Plain text, columns aligned: numbers to the right, text to the left."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_looks_numeric(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(row, widths, numeric)).rstrip()

    print(f"\n{title}\n")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    for note in notes:
        print(note)
    sys.stdout.flush()


def _looks_numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("×", "").replace("-", "", 1).strip().isdigit()


def seconds(t: float) -> str:
    return f"{t:.3f}" if t < 10 else f"{t:.1f}"


def ms(t: float) -> str:
    return f"{1000 * t:.2f}" if t < 0.01 else f"{1000 * t:.1f}"


def machine() -> None:
    import sympy
    cpu = "unknown"
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = _git("rev-parse", "--short", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print("derive benchmarks —", time.strftime("%Y-%m-%d %H:%M"))
    print(f"CPU      {cpu}, {os.cpu_count()} cores ({usable} usable)")
    print(f"System   {platform.system()} {platform.release()}, load average {load}")
    print(f"Python   {platform.python_version()}, numpy {np.__version__}, sympy {sympy.__version__}")
    print(f"derive   {commit}")


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def derive_command() -> list:
    """The console script next to this interpreter (no pyenv shim in the timing), else
    ``python -m derive`` (the source folder, when derive is not installed)."""
    script = Path(sys.executable).with_name("derive")
    if script.exists():
        return [str(script)]
    found = shutil.which("derive")
    return [found] if found else [sys.executable, "-m", "derive"]


def wall(command, **kwargs):
    """Wall and CPU (user + system) time of one subprocess, and its result; a failure
    stops the benchmark. CPU time is less disturbed by other processes on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, cwd=ROOT, **kwargs)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} exited {done.returncode}:\n"
                         f"{done.stderr.decode(errors='replace')}")
    return elapsed, cpu, done


# ---------------------------------------------------------------- 1. cold CLI


def bench_cold_cli(repeats: int) -> None:
    """``derive check`` beside a bare ``import sympy, numpy``, on equal terms: bytecode may be
    written and read (a private ``PYTHONPYCACHEPREFIX``, as an install compiles it), the
    parse tables come from a private, warm cache, and one untimed run of each goes first."""
    derive_run = derive_command() + ["check", "examples/backprop.chain"]
    imports = [sys.executable, "-c", "import sympy, numpy"]
    runs = {"derive": derive_run, "imports": imports}
    with tempfile.TemporaryDirectory(prefix="derive-cold-") as scratch:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPYCACHEPREFIX=f"{scratch}/pyc", XDG_CACHE_HOME=f"{scratch}/cache")
        for command in runs.values():
            wall(command, env=env)
        times, cpus = _interleaved(runs, repeats, env)
    rows = []
    for key, label in (("derive", "derive check examples/backprop.chain"),
                       ("imports", 'python -c "import sympy, numpy"')):
        rows.append([label, seconds(statistics.median(times[key])), seconds(min(times[key])),
                     seconds(max(times[key])), seconds(statistics.median(cpus[key]))])
    ratio = statistics.median(times["derive"]) / statistics.median(times["imports"])
    cpu_ratio = statistics.median(cpus["derive"]) / statistics.median(cpus["imports"])
    table(f"1. Cold CLI: median of {repeats} interleaved runs each",
          ["command", "wall s", "min s", "max s", "CPU s"], rows,
          [f"ratio of wall medians {ratio:.2f} (target ≤ 1.2: "
           f"{'met' if ratio <= 1.2 else 'missed'}); ratio of CPU medians {cpu_ratio:.2f}"])


def _interleaved(runs: dict, repeats: int, env: dict) -> tuple:
    """Wall and CPU times of each command, run in turn ``repeats`` times."""
    times: dict = {key: [] for key in runs}
    cpus: dict = {key: [] for key in runs}
    for _ in range(repeats):
        for key, command in runs.items():
            elapsed, cpu, _ = wall(command, env=env)
            times[key].append(elapsed)
            cpus[key].append(cpu)
    return times, cpus


# ---------------------------------------------------------------- 2./3. deep chains


def bench_deep(repeats: int, sympy_limit: float, run_sympy: bool, layers=LAYERS) -> None:
    folder = Path(tempfile.mkdtemp(prefix="derive-bench-"))
    files = {}
    for L in layers:
        files[L] = folder / f"deep{L}.chain"
        files[L].write_text(deep_chain(L, WIDTH), encoding="utf-8")
    times = {L: [] for L in layers}
    cpus = {L: [] for L in layers}
    inside = {L: [] for L in layers}
    output = {}
    for round_ in range(repeats + 1):   # interleaved: one run of every L per round
        for L in layers:
            elapsed, cpu, done = wall(derive_command() + ["render", str(files[L]), "--to",
                                                          "json", "--no-check"])
            results, status = run_worker(["render", str(files[L])], 600)
            if not results:
                raise SystemExit(f"derive on {files[L]}: {status}")
            if round_ == 0:             # warm-up round: disk caches, not derive
                continue
            times[L].append(elapsed)
            cpus[L].append(cpu)
            inside[L].append(results[0]["time"])
            output[L] = done.stdout
    shutil.rmtree(folder, ignore_errors=True)
    median = {L: statistics.median(times[L]) for L in layers}
    work = {L: statistics.median(inside[L]) for L in layers}
    above = {L: max(median[L] - median[layers[0]], 0.0) for L in layers}
    cpu = {L: statistics.median(cpus[L]) for L in layers}
    cpu_above = {L: max(cpu[L] - cpu[layers[0]], 0.0) for L in layers}
    rows = []
    for L in layers:
        data = json.loads(output[L])
        lines = (len(data["definitions"]) + len(data["steps"] or data["substitutions"])
                 + len(data["gradients"]))
        rows.append([L, 2 * L, seconds(median[L]), seconds(above[L]), seconds(cpu_above[L]),
                     seconds(work[L]), lines, len(output[L])])
    notes = [_exponent("wall time − floor", above, layers),
             _exponent("CPU time − floor", cpu_above, layers),
             _exponent("in-process time", work, layers)]
    if 64 in above:
        notes.append(f"L = 64: {above[64]:.2f} s above the floor (target < 2 s: "
                     f"{'met' if above[64] < 2 else 'missed'})")
    notes.append("floor = the L = 1 time (wall or CPU); in-process = derive_file(path, check=False)"
                 ".to_json() in a fresh process after a warm-up on another chain")
    notes.append("lines = the JSON's definitions + steps (or substitutions) + gradients; "
                 "a step displays up to 3 formula lines")
    table(f"2. L-layer tanh networks (width {WIDTH}), wrt every W_l and b_l: "
          f"`derive render FILE --to json --no-check`, median of {repeats} interleaved runs",
          ["L", "wrt", "wall s", "wall − floor", "CPU − floor", "in-process s", "lines",
           "JSON bytes"],
          rows, notes)
    if run_sympy:
        bench_sympy_deep(layers, sympy_limit, work)


def _exponent(what: str, times: dict, layers) -> str:
    """The least-squares slope of log(time) against log(L) from L = FIT_FROM on."""
    fit = [L for L in layers if L >= FIT_FROM and times[L] > 0]
    if len(fit) < 2:
        return f"exponent of {what}: too few positive times from L = {FIT_FROM} to fit"
    slope = np.polyfit(np.log(fit), np.log([times[L] for L in fit]), 1)[0]
    return (f"exponent of {what} against L (least squares on log–log, L = {fit[0]}…{fit[-1]}): "
            f"{slope:.2f} (target ≤ 1.1: {'met' if slope <= 1.1 else 'missed'})")


def worker_render(path: str) -> None:
    """derive's own work on one chain file, after a warm-up on another chain, so lazy
    imports and one-time set-up (grammar, templates) are not counted."""
    from derive.api import derive_file
    derive_file(ROOT / "examples" / "two_layer.chain", check=False).to_json()
    start = time.perf_counter()
    derive_file(path, check=False).to_json()
    print(json.dumps({"time": time.perf_counter() - start}), flush=True)


def bench_sympy_deep(layers, limit: float, derive_work: dict) -> None:
    rows, timed_out = [], None
    for L in layers:
        if timed_out is not None:
            rows.append([L, seconds(derive_work[L]), "-", "-", f"not run (timeout at L = {timed_out})"])
            continue
        results, status = run_worker(["deep", str(L)], limit)
        if status == "timeout":
            timed_out = L
        total = sum(r["time"] for r in results)
        right = [r["name"] for r in results if r["status"] == "ok"]
        shown = f"> {limit:g}" if status == "timeout" else seconds(total) if results else "-"
        rows.append([L, seconds(derive_work[L]), shown,
                     f"{len(right)}/{2 * L}", _summary(results, status, 2 * L, limit)])
    table(f"3. The same chains through SymPy's matrix calculus: E.diff(W_l), E.diff(b_l) on "
          f"the composed MatrixSymbol expression ((W h + b).applyfunc(tanh)), limit {limit:g} s per L",
          ["L", "derive s", "SymPy s", "right", "SymPy's results"], rows,
          ["right = gradients equal (rel. error < 1e-8) to numpy backprop at a random point; "
           "both times in process, imports excluded (derive s from table 2: all 2L gradients, "
           "SymPy s: all its diff calls)"])


def _summary(results, status, expected, limit) -> str:
    """``ok: W4, b4; ValueError (index is larger than expression shape): W1…b3``."""
    groups = {}
    for r in results:
        groups.setdefault(r["status"], []).append(r["name"])
    parts = [f"{kind}: {_names(names)}" for kind, names in groups.items()]
    if status == "timeout":
        parts.append(f"timeout after {limit:g} s ({len(results)} of {expected} done)")
    elif status != "done":
        parts.append(status)
    return "; ".join(parts)


def _names(names) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]} ({len(names)})"


def run_worker(args, limit: float):
    """Run ``run.py --worker …`` with a time limit; its JSON lines, and how it ended."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, cwd=ROOT)
        out, status = done.stdout, "done" if done.returncode == 0 else _crash(done)
    except subprocess.TimeoutExpired as expired:
        out, status = expired.stdout or "", "timeout"
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
    results = [json.loads(row) for row in out.splitlines() if row.startswith("{")]
    return results, status


def _crash(done) -> str:
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    return f"crashed (exit {done.returncode}: {last[:80]})"


# ---------------------------------------------------------------- 4. check cost


CHECK_SIZES = (10, 100, 1000, 2000)
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def seed_chain(n: int) -> str:
    return (f"W : {n}x{n}\nx : {n}\ny : {n}\nv = W x\ns = sigma(v)\nS = Diag(s)\n"
            f"E = 1/2 (s - y):(s - y)\nwrt W\n")


def bench_check_cost(repeats: int) -> None:
    """``t_check(n) − t_check(10)`` against ``t_forward(n)``, one NumPy evaluation of the
    objective, with single-threaded BLAS (a worker process: the thread count is read when
    NumPy loads)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "check-cost",
               str(repeats)]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800,
                          env={**os.environ, **SINGLE_THREAD, "PYTHONPATH": path})
    if done.returncode != 0:
        raise SystemExit(f"check-cost worker exited {done.returncode}:\n{done.stderr}")
    found = {r["n"]: r for r in (json.loads(x) for x in done.stdout.splitlines() if x.startswith("{"))}
    floor = found[CHECK_SIZES[0]]["check"]
    rows, ratio = [], {}
    for n in CHECK_SIZES:
        r = found[n]
        ratio[n] = (r["check"] - floor) / r["forward"]
        rows.append([n, ms(r["forward"]), ms(r["check"]), ms(r["check"] - floor),
                     f"{ratio[n]:.1f}", r["verdict"]])
    last = CHECK_SIZES[-1]
    table(f"4. Numeric check cost, the reference chain with W n×n: derive.check.check(derivation) "
          f"against one NumPy evaluation of the objective, single-threaded BLAS, median of "
          f"{repeats} interleaved",
          ["n", "forward ms", "check ms", "check − check(10) ms", "÷ forward", "verdict"], rows,
          [f"n = {last}: (t_check({last}) − t_check(10)) / t_forward({last}) = {ratio[last]:.1f} "
           f"(target ≤ 10: {'met' if ratio[last] <= 10 else 'missed'})",
           "forward = the objective written by hand in NumPy: 1/(1 + exp(−Wx)), then ½‖s − y‖²"])


def worker_check_cost(repeats: int) -> None:
    from derive.api import derive
    from derive.check import check
    rng = np.random.default_rng(1)
    cases = {}
    for n in CHECK_SIZES:
        derivation = derive(seed_chain(n), check=False)
        point = {"W": rng.normal(size=(n, n)) / np.sqrt(n), "x": rng.normal(size=(n, 1)),
                 "y": rng.normal(size=(n, 1))}
        check(derivation)                    # warm-up: first-call costs are not the check's
        cases[n] = (derivation, point, [], [])
    verdict = {}
    for _ in range(repeats):
        for n, (derivation, point, forwards, checks) in cases.items():
            start = time.perf_counter()
            _seed_objective(**point)
            forwards.append(time.perf_counter() - start)
            start = time.perf_counter()
            verdict[n] = check(derivation)
            checks.append(time.perf_counter() - start)
    for n, (_, _, forwards, checks) in cases.items():
        result = verdict[n]
        status = "verified" if result.ok and result.complete else \
            "FAILED" if not result.ok else "not all checked"
        print(json.dumps({"n": n, "forward": statistics.median(forwards),
                          "check": statistics.median(checks), "verdict": status}), flush=True)


def _seed_objective(W, x, y):
    s = 1 / (1 + np.exp(-(W @ x)))
    return 0.5 * float(np.sum((s - y) ** 2))


# ---------------------------------------------------------------- 6. hard correct chains


def _net(layers: int, width: int, f: str, tail: str = "") -> str:
    """h_k = f(W_k h_{k−1}), E = ½‖h_L − y‖² (+ tail), wrt every W_k."""
    lines = [f"x : {width}", f"y : {width}"] + [f"W{k} : {width}x{width}"
                                              for k in range(1, layers + 1)]
    previous = "x"
    for k in range(1, layers + 1):
        lines += [f"a{k} = W{k} {previous}", f"h{k} = {f}(a{k})"]
        previous = f"h{k}"
    lines += [f"E = 1/2 ({previous} - y):({previous} - y){tail}",
              "wrt " + ", ".join(f"W{k}" for k in range(1, layers + 1))]
    return "\n".join(lines) + "\n"


HARD = {
    "tanh, 12 layers × 100 (the issue's false alarm)": _net(12, 100, "tanh"),
    "sigmoid, 20 layers × 10": _net(20, 10, "sigma"),
    "relu, 8 layers × 50": _net(8, 50, "relu"),
    "abs, 6 layers × 30": _net(6, 30, "abs"),
    "softplus, 6 layers × 30": _net(6, 30, "softplus"),
    "wide tanh layer, 1000 × 1000": _net(1, 1000, "tanh"),
    "steep σ(30 Wx), 200 × 100": "W : 200x100\nx : 100\ny : 200\nv = 30 W x\ns = sigma(v)\n"
                                  "E = 1/2 (s - y):(s - y)\nwrt W\n",
    "steep tanh(50 Wx)": "W : 100x100\nx : 100\nh = tanh(50 W x)\nE = 1'h\nwrt W\n",
    "steep 1ᵀexp(8x)": "x : 50\nE = 1'exp(8 x)\nwrt x\n",
    "steep 1ᵀexp(40x): values e^±100": "x : 30\nE = 1'exp(40 x)\nwrt x\n",
    "σ(x − 40·1): values near 1e-18": "x : 4\ny : 4\ns = sigma(x - 40 * 1)\n"
                                       "E = 1/2 (s - y):(s - y)\nwrt x\n",
    "offset + 1e9": _net(3, 20, "sigma", " + 1000000000"),
    "offset + 1e15": _net(3, 20, "sigma", " + 1000000000000000"),
    "offset + 1e15, relu (no complex step)": _net(3, 20, "relu", " + 1000000000000000"),
    "log(xᵀx + 1e15)": "x : 5\nE = log(x:x + 1000000000000000)\nwrt x\n",
    "tanh(1e5 Wx): every entry saturated": "W : 100x100\nx : 100\nh = tanh(100000 W x)\n"
                                           "E = 1'h\nwrt W\n",
    "scale 1e12 xᵀAx": "x : 5\nA : 5x5\nE = 1000000000000 x'A x\nwrt x\n",
    "scale 1e-12 xᵀAx": "x : 5\nA : 5x5\nE = 1/1000000000000 x'A x\nwrt x\n",
    "aᵀX⁻¹b, 60 × 60": "X : 60x60\na : 60\nb : 60\nE = a' inv(X) b\nwrt X\n",
    "tr(X⁻¹), near-singular X = Z + 1e-4 I": "Z : 30x30\nX = Z + 1/10000 I\n"
                                              "E = tr(inv(Z X))\nwrt Z\n",
    "log det, 40 × 40 spd": "X : 40x40 spd\nE = logdet(X)\nwrt X\n",
    "tr(X⁶)": "X : 8x8\nE = tr(X^6)\nwrt X\n",
    "Kronecker": "A : 3x4\nB : 2x5\nC : 6x20\nE = C:kron(A, B)\nwrt A, B\n",
    "steep softmax(30 Wx) cross-entropy": "W : 10x10\nx : 10\ny : 10\np = softmax(30 W x)\n"
                                          "E = y'log(p)\nwrt W\n",
    "softmax cross-entropy": "W : 30x20\nx : 20\ny : 30\np = softmax(W x)\nE = y'log(p)\n"
                             "wrt W\n",
    "small term: 1e12·1ᵀx + 1ᵀexp(x)": "x : 5\nE = 1000000000000 * 1'x + 1'exp(x)\nwrt x\n",
    "small term inside: ‖1e8 x + tanh(x)‖²": "x : 20\nr = 100000000 x + tanh(x)\nE = r:r\nwrt x\n",
    "small term: log det X + 1e-9 tr(X⁻¹)": "X : 20x20 spd\n"
                                             "E = logdet(X) + 1/1000000000 tr(inv(X))\nwrt X\n",
}


def bench_hard_chains() -> None:
    """Correct chains that are hard to check: no line may fail (a false alarm); each chain's
    rules are then corrupted one at a time (twice the differential), and each corruption
    that changes what is shown must fail the check (caught), or at least leave a line not
    checked (seen) — never be verified (missed)."""
    sys.path.insert(0, str(ROOT))
    from derive.api import derive
    rows, alarms, totals = [], 0, Counter()
    for name, text in HARD.items():
        start = time.perf_counter()
        result = derive(text).check
        elapsed = time.perf_counter() - start
        verdicts = result.verdicts
        failed = len(result.failures)
        alarms += failed
        outcomes = _corruptions(text)
        totals.update(outcomes)
        rows.append([name, len(verdicts), sum(v.checked and v.ok for v in verdicts),
                     sum(v.exact for v in verdicts), len(result.unchecked), failed,
                     f"{result.worst:.1e}", *(outcomes[k] for k in OUTCOMES), seconds(elapsed)])
    tried = sum(totals[k] for k in OUTCOMES[:3])
    table("6. Hard but correct chains: `derive(text).check`, then each rule the chain uses "
          "corrupted in turn (its differential doubled)",
          ["chain", "lines", "checked", "exact", "not checked", "false alarms", "worst error",
           "caught", "seen", "missed", "no effect", "s"], rows,
          [f"false alarms: {alarms} (target 0: {'met' if alarms == 0 else 'missed'}); "
           f"corrupted rules caught: {totals['caught']}/{tried}, seen (a line not checked): "
           f"{totals['seen']}, missed (every line verified): {totals['missed']} (target 0: "
           f"{'met' if totals['missed'] == 0 else 'missed'}); no effect (the derivation shown "
           f"is the same, e.g. d(1ᵀ) = 2·0): {totals['no effect']}",
           "checked = confirmed numerically; exact = also in exact arithmetic modulo 2⁶¹ − 1; "
           "not checked = both sides vanish, underflow or are dominated by rounding"])


OUTCOMES = ("caught", "seen", "missed", "no effect")


def _corruptions(text: str) -> Counter:
    """Each differential rule the chain's definitions use, doubled (an elementwise
    function's ``f′(u)du + du``), counted by ``_outcome``."""
    from derive import expr as E
    from derive import functions, rules
    from derive.api import derive
    chain = derive(text, check=False).chain
    used = {type(n) for d in chain.definitions for n in E.walk(d.expr)}
    applied = {n.func for d in chain.definitions for n in E.walk(d.expr)
               if isinstance(n, E.Apply)}
    shown = _shown(text)
    found: Counter = Counter()
    constant = {E.Number, E.Identity, E.Ones, E.Zero, E.Commutation, E.Symbol}
    for kind in [k for k in rules.DIFFERENTIALS if k in used and k not in constant and k is not E.Apply]:
        text_rule, rule = rules.DIFFERENTIALS[kind]
        rules.DIFFERENTIALS[kind] = (text_rule, lambda e, d, ans, rule=rule:
                                     E.Mul((E.Number(2), rule(e, d, ans))))
        try:
            found[_outcome(text, shown)] += 1
        finally:
            rules.DIFFERENTIALS[kind] = (text_rule, rule)
    for name in sorted(applied):
        row = functions.ELEMENTWISE[name]
        functions.ELEMENTWISE[name] = dataclasses.replace(
            row, differential=lambda u, y, du, f=row.differential: E.Add((f(u, y, du), du)))
        try:
            found[_outcome(text, shown)] += 1
        finally:
            functions.ELEMENTWISE[name] = row
    return found


def _shown(text: str) -> str:
    """The derivation as JSON, unchecked: what a corruption must change to matter."""
    from derive.api import render
    return cast(str, render(text=text, to="json", check=False))


def _outcome(text: str, shown: str) -> str:
    """caught (the check fails), seen (a line not checked), missed (every line verified),
    or no effect (the corrupted rule changes nothing shown, as 2·d(1ᵀ) = 0)."""
    from derive.api import derive
    if _shown(text) == shown:
        return "no effect"
    result = derive(text).check
    return "caught" if not result.ok else "seen" if not result.complete else "missed"


# ---------------------------------------------------------------- 5. gallery


def _sigmoid(t):
    import sympy
    return 1 / (1 + sympy.exp(-t))


def _np_sigmoid(t):
    return 1 / (1 + np.exp(-t))


def gallery():
    """Each example by hand in SymPy's matrix language, and its closed-form gradient.

    ``sympy(M, s)``: the objective from MatrixSymbols ``M[name]`` and sympy ``s``;
    ``closed(v)``: the textbook gradient(s) from numpy values ``v``.
    """
    def sig(arg):      # σ elementwise: SymPy has no sigmoid of its own
        return arg.applyfunc(_sigmoid)

    return {
        "backprop": dict(
            sympy=lambda M, s: s.Rational(1, 2) * (sig(M["W"] * M["x"]) - M["y"]).T
            * (sig(M["W"] * M["x"]) - M["y"]),
            closed=lambda v: {"W": _backprop_W(v["W"], v["x"], v["y"])}),
        "inverse_bilinear": dict(
            sympy=lambda M, s: M["a"].T * M["X"].I * M["b"],
            closed=lambda v: {"X": -np.linalg.inv(v["X"]).T @ v["a"] @ v["b"].T
                              @ np.linalg.inv(v["X"]).T}),
        "least_squares": dict(
            sympy=lambda M, s: (M["A"] * M["x"] - M["b"]).T * (M["A"] * M["x"] - M["b"]),
            closed=lambda v: {"x": 2 * v["A"].T @ (v["A"] @ v["x"] - v["b"])}),
        "log_det": dict(
            sympy=lambda M, s: s.log(s.Determinant(M["X"])),
            closed=lambda v: {"X": np.linalg.inv(v["X"]).T}),
        "logistic_regression": dict(
            sympy=lambda M, s: -(M["y"].T * sig(M["X"] * M["w"]).applyfunc(s.log)
                                 + (s.OneMatrix(*M["y"].shape) - M["y"]).T
                                 * (s.OneMatrix(*M["y"].shape) - sig(M["X"] * M["w"]))
                                 .applyfunc(s.log)),
            closed=lambda v: {"w": v["X"].T @ (_np_sigmoid(v["X"] @ v["w"]) - v["y"])}),
        "quadratic_form": dict(
            sympy=lambda M, s: M["x"].T * M["A"] * M["x"],
            closed=lambda v: {"x": (v["A"] + v["A"].T) @ v["x"]}),
        "ridge": dict(
            sympy=lambda M, s: (M["X"] * M["w"] - M["y"]).T * (M["X"] * M["w"] - M["y"])
            + M["lambda"] * M["w"].T * M["w"],
            closed=lambda v: {"w": 2 * v["X"].T @ (v["X"] @ v["w"] - v["y"])
                              + 2 * v["lambda"] * v["w"]}),
        "tanh_layer": dict(
            sympy=lambda M, s: s.Rational(1, 2) * ((M["W"] * M["x"]).applyfunc(s.tanh) - M["y"]).T
            * ((M["W"] * M["x"]).applyfunc(s.tanh) - M["y"]),
            closed=lambda v: {"W": _tanh_W(v["W"], v["x"], v["y"])}),
        "trace_axb": dict(
            sympy=lambda M, s: s.Trace(M["A"] * M["X"] * M["B"]),
            closed=lambda v: {"X": v["A"].T @ v["B"].T}),
        "trace_cube": dict(
            sympy=lambda M, s: s.Trace(M["X"] ** 3),
            closed=lambda v: {"X": 3 * (v["X"] @ v["X"]).T}),
        "two_layer": dict(
            sympy=lambda M, s: s.Rational(1, 2)
            * (M["W2"] * sig(M["W1"] * M["x"]) - M["y"]).T
            * (M["W2"] * sig(M["W1"] * M["x"]) - M["y"]),
            closed=lambda v: _two_layer(v["W1"], v["W2"], v["x"], v["y"])),
    }


def _backprop_W(W, x, y):
    s = _np_sigmoid(W @ x)
    return ((s - s * s) * (s - y)) @ x.T


def _tanh_W(W, x, y):
    t = np.tanh(W @ x)
    return ((1 - t * t) * (t - y)) @ x.T


def _two_layer(W1, W2, x, y):
    h = _np_sigmoid(W1 @ x)
    d2 = W2 @ h - y
    d1 = (h - h * h) * (W2.T @ d2)
    return {"W1": d1 @ x.T, "W2": d2 @ h.T}


def gallery_point(name: str):
    """The example's inputs (name → shape, wrt) and one random point, the same in every process."""
    from derive.api import derive_file
    from derive.evaluate import concrete_shape
    derivation = derive_file(ROOT / "examples" / f"{name}.chain", check=False)
    rng = np.random.default_rng(7)
    shapes, point = {}, {}
    for item in derivation.chain.inputs:
        shape = concrete_shape(item.symbol.shape, {})
        shapes[item.symbol.name] = shape
        value = rng.normal(size=shape)
        if "positive" in item.symbol.props:
            value = np.abs(value) + 0.1
        elif shape[0] == shape[1] > 1:      # well conditioned, positive determinant
            value = np.eye(shape[0]) + 0.3 * value
        point[item.symbol.name] = value
    return shapes, [w.name for w in derivation.chain.wrt], point


def compare(got, want) -> tuple:
    """``ok``, ``wrong`` or ``0``, and the relative error (got reshaped to want's shape)."""
    got = np.asarray(got, dtype=float)
    if got.size != want.size:
        return f"wrong shape {got.shape}", math.inf
    got = got.reshape(want.shape)
    error = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))
    if error < AGREE:
        return "ok", error
    if not np.any(got) and np.any(want):
        return "0", error
    return "wrong", error


def bench_gallery(repeats: int, limit: float) -> None:
    import sympy
    from derive.api import derive
    from derive.numpy_code import to_numpy
    table_ = gallery()
    names = sorted(table_)          # the examples with a closed form and a SymPy spelling
    times = {name: [] for name in names}
    texts = {name: (ROOT / "examples" / f"{name}.chain").read_text(encoding="utf-8")
             for name in names}
    derivations = {name: derive(texts[name]) for name in names}      # warm-up
    for _ in range(repeats):
        for name in names:
            sympy.core.cache.clear_cache()
            start = time.perf_counter()
            derivations[name] = derive(texts[name])
            times[name].append(time.perf_counter() - start)
    rows = []
    for name in names:
        derivation = derivations[name]
        _, wrt, point = gallery_point(name)
        module = {}
        exec(compile(to_numpy(derivation), f"<{name}>", "exec"), module)
        gradient = module["gradient"](**point)
        want = table_[name]["closed"](point) if name in table_ else None
        if want is None:
            mine = "no closed form"
        else:
            mine = _verdicts({w: compare(gradient[w], want[w]) for w in wrt})
        checked = "check ok" if derivation.check.ok else "check FAILED"
        if name in table_:
            results, status = run_worker(["gallery", name, str(repeats)], limit)
            sym_time = ms(sum(r["time"] for r in results)) if status == "done" else "-"
            theirs = (_verdicts({r["name"]: (r["status"], r.get("error", 0.0))
                                 for r in results if r["name"] != "(build)"})
                      if status == "done" else status)
        else:
            sym_time, theirs = "-", "not expressible by hand here"
        rows.append([name, ms(statistics.median(times[name])), f"{mine}, {checked}",
                     sym_time, theirs])
    table(f"5. Example gallery: derive in process (parse + derive + check) against SymPy's "
          f"matrix diff (build + diff), medians of {repeats}, SymPy limit {limit:g} s",
          ["example", "derive ms", "derive's gradient", "SymPy ms", "SymPy's gradient"], rows,
          ["gradients compared with the closed form at a random point "
           f"(ok = relative error < {AGREE:g}); derive's via its generated NumPy module"])


def _verdicts(by_name: dict) -> str:
    """``ok`` when every gradient is right, else each name with its verdict."""
    if all(v[0] == "ok" for v in by_name.values()):
        worst = max(v[1] for v in by_name.values())
        return f"ok ({worst:.0e})"
    return ", ".join(f"{n}: {v[0]}" + (f" ({v[1]:.0e})" if v[0] == "wrong" and
                                         math.isfinite(v[1]) else "")
                     for n, v in by_name.items())


# ---------------------------------------------------------------- SymPy workers


def worker_deep(L: int) -> None:
    """One JSON line per weight: SymPy's diff of the L-layer objective, timed and checked."""
    import sympy as s
    h0, y = s.MatrixSymbol("h0", WIDTH, 1), s.MatrixSymbol("y", WIDTH, 1)
    Ws = [s.MatrixSymbol(f"W{l}", WIDTH, WIDTH) for l in range(1, L + 1)]
    bs = [s.MatrixSymbol(f"b{l}", WIDTH, 1) for l in range(1, L + 1)]
    h = h0
    for W, b in zip(Ws, bs):
        h = (W * h + b).applyfunc(s.tanh)
    objective = s.Rational(1, 2) * (h - y).T * (h - y)
    rng = np.random.default_rng(3)
    values = {m: rng.normal(size=m.shape) for m in [h0, y, *Ws, *bs]}
    want = _deep_backprop([values[W] for W in Ws], [values[b] for b in bs], values[h0], values[y])
    for variable in Ws + bs:
        _emit_diff(objective, variable, values, want[variable.name])


def _deep_backprop(Ws, bs, h0, y):
    hs = [h0]
    for W, b in zip(Ws, bs):
        hs.append(np.tanh(W @ hs[-1] + b))
    grads, delta = {}, hs[-1] - y
    for l in range(len(Ws), 0, -1):
        a_bar = delta * (1 - hs[l] ** 2)
        grads[f"W{l}"], grads[f"b{l}"] = a_bar @ hs[l - 1].T, a_bar
        delta = Ws[l - 1].T @ a_bar
    return grads


def _emit_diff(objective, variable, values, want, repeats: int = 1) -> None:
    """Time ``objective.diff(variable)`` (cache cleared), judge it numerically, print JSON."""
    import sympy as s
    times, result, error = [], None, None
    for _ in range(repeats):
        s.core.cache.clear_cache()
        start = time.perf_counter()
        try:
            result = objective.diff(variable)
        except Exception as exc:         # SymPy's failures are what this row reports
            error = f"{type(exc).__name__}: {exc}"[:90]
        times.append(time.perf_counter() - start)
    row = {"name": variable.name, "time": statistics.median(times)}
    if error is not None:
        row["status"] = f"error {error}"
    elif result.has(s.Derivative) or type(result).__name__ == "ArrayDerivative":
        row["status"] = "unevaluated"
    else:
        try:
            row["status"], row["error"] = compare(sympy_value(result, values), want)
        except Unsupported as exc:
            row["status"] = f"unverified ({exc})"
    print(json.dumps(row), flush=True)


def worker_gallery(name: str, repeats: int) -> None:
    import sympy as s
    shapes, wrt, point = gallery_point(name)
    M = {n: s.MatrixSymbol(n, *shape) for n, shape in shapes.items()}
    if shapes.get("lambda") == (1, 1):
        M["lambda"] = s.Symbol("lambda")
    values = {M[n]: v for n, v in point.items()}
    if "lambda" in shapes:
        values[M["lambda"]] = point["lambda"].reshape(())
    entry = gallery()[name]
    want = entry["closed"](point)
    build = []
    for _ in range(repeats):
        s.core.cache.clear_cache()
        start = time.perf_counter()
        objective = entry["sympy"](M, s)
        build.append(time.perf_counter() - start)
    for w in wrt:
        _emit_diff(objective, M[w], values, want[w], repeats)
    print(json.dumps({"name": "(build)", "time": statistics.median(build), "status": "ok"}),
          flush=True)


class Unsupported(Exception):
    """A node of SymPy's result that ``sympy_value`` cannot evaluate."""


def sympy_value(expr, values: dict):
    """The numeric value of a SymPy matrix or array expression (MatrixSymbol → ndarray).

    Written here because SymPy's own ``as_explicit`` fails on the mixed matrix/array
    results its ``diff`` returns; every node is one numpy line.
    """
    import sympy as s
    from sympy.tensor.array import expressions as ax

    def ev(e):
        if e in values:
            return np.asarray(values[e], dtype=float)
        if isinstance(e, s.Identity):
            return np.eye(int(e.rows))
        if isinstance(e, (s.ZeroMatrix, ax.ZeroArray)):
            return np.zeros(tuple(int(d) for d in e.shape))
        if isinstance(e, (s.OneMatrix, ax.OneArray)):
            return np.ones(tuple(int(d) for d in e.shape))
        if isinstance(e, s.Transpose):
            return ev(e.arg).T
        if isinstance(e, s.Inverse):
            return np.linalg.inv(ev(e.arg))
        if isinstance(e, s.MatPow):
            return np.linalg.matrix_power(ev(e.base), int(e.exp))
        if isinstance(e, s.MatMul):
            out = np.array(1.0)
            for arg in e.args:
                v = ev(arg)
                out = out * v if (out.ndim == 0 or v.ndim == 0) else out @ v
            return out
        if isinstance(e, (s.MatAdd, ax.ArrayAdd, s.Add)):
            return sum(_broadcast(ev(a)) for a in e.args)
        if isinstance(e, s.HadamardProduct):
            return np.prod([ev(a) for a in e.args], axis=0)
        if isinstance(e, s.Trace):
            return np.array(np.trace(ev(e.arg)))
        if isinstance(e, s.Determinant):
            return np.array(np.linalg.det(ev(e.arg)))
        if isinstance(e, s.DiagMatrix):
            return np.diag(ev(e.arg).ravel())
        if isinstance(e, (s.matrices.expressions.applyfunc.ElementwiseApplyFunction,
                          ax.ArrayElementwiseApplyFunc)):
            function = e.function
            arg = ev(e.expr)
            f = s.lambdify(function.variables, function.expr, "numpy")
            return np.asarray(f(arg), dtype=float) + np.zeros_like(arg)
        if isinstance(e, ax.PermuteDims):
            return np.transpose(ev(e.expr), e.permutation.array_form)
        if isinstance(e, ax.ArrayTensorProduct):
            out = np.array(1.0)
            for arg in e.args:
                out = np.multiply.outer(out, ev(arg))
            return out
        if isinstance(e, ax.ArrayContraction):
            return _einsum(ev(e.expr), e.contraction_indices, diagonal=False)
        if isinstance(e, ax.ArrayDiagonal):
            return _einsum(ev(e.expr), e.diagonal_indices, diagonal=True)
        if isinstance(e, s.Number):
            return np.array(float(e))
        if isinstance(e, s.Mul):
            return _product(e.args, ev)
        if isinstance(e, s.Pow):
            return _broadcast(ev(e.base)) ** float(e.exp)
        if isinstance(e, s.Function) and len(e.args) == 1:
            x = s.Dummy()
            f = s.lambdify(x, e.func(x), "numpy")
            return np.asarray(f(_broadcast(ev(e.args[0]))), dtype=float)
        raise Unsupported(type(e).__name__)

    return ev(expr)


def _broadcast(v):
    """A 1×1 matrix is a scalar."""
    return v.reshape(()) if v.shape == (1, 1) else v


def _product(args, ev):
    out = np.array(1.0)
    for arg in args:
        out = out * _broadcast(ev(arg))
    return out


def _einsum(array, groups, diagonal: bool):
    """SymPy's ArrayContraction (groups summed) or ArrayDiagonal (each group's diagonal
    index moved to the end), as one einsum."""
    letters = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    subscripts = letters[:array.ndim]
    grouped = set()
    for k, group in enumerate(groups):
        shared = letters[array.ndim + k]
        for axis in group:
            subscripts[axis] = shared
            grouped.add(axis)
    kept = [subscripts[i] for i in range(array.ndim) if i not in grouped]
    if diagonal:
        kept += [letters[array.ndim + k] for k in range(len(groups))]
    return np.einsum("".join(subscripts) + "->" + "".join(kept), array)


# ---------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions and a shorter SymPy limit (a minute or two)")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="benchmarks to run, e.g. 1,4")
    parser.add_argument("--sympy-limit", type=float, default=None,
                        help="seconds per SymPy case (default 20, quick 5)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; by default the output also replaces its section "
                             "of benchmarks/RESULTS.md")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        workers = {"deep": lambda: worker_deep(int(rest[0])),
                   "gallery": lambda: worker_gallery(rest[0], int(rest[1])),
                   "render": lambda: worker_render(rest[0]),
                   "check-cost": lambda: worker_check_cost(int(rest[0]))}
        workers[kind]()
        return
    only = {int(x) for x in args.only.split(",")}
    limit = args.sympy_limit or (5.0 if args.quick else 20.0)
    if args.no_write:
        run_all(args, only, limit)
        return
    with recorded("run" + ("-quick" if args.quick else ""), "python benchmarks/run.py"
                  + (" --quick" if args.quick else "")):
        run_all(args, only, limit)


def run_all(args, only: set, limit: float) -> None:
    machine()
    print(f"command  python benchmarks/run.py{' --quick' if args.quick else ''}")
    if 1 in only:
        bench_cold_cli(9 if args.quick else 15)
    if 2 in only or 3 in only:
        bench_deep(1 if args.quick else 5, limit, run_sympy=3 in only)
    if 4 in only:
        bench_check_cost(3 if args.quick else 11)
    if 5 in only:
        bench_gallery(3 if args.quick else 7, limit)
    if 6 in only:
        bench_hard_chains()


if __name__ == "__main__":
    main()
