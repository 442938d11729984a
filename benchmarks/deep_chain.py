"""Synthetic deep chains, and how the size of their derivation grows with depth.

    python benchmarks/deep_chain.py          # the output-size table, also into RESULTS.md
    python benchmarks/deep_chain.py 8 > deep8.chain

``deep_chain`` (every weight as wrt) feeds ``run.py``'s timings; ``single_wrt_chain``
(one wrt, nothing reused) is the chain whose written-out adjoints repeat every layer
after them: its output must grow linearly with depth, not with its square.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

DEPTHS = (10, 25, 50, 100)


def deep_chain(layers: int, width: int = 4) -> str:
    """``a_l = W_l h_{l−1} + b_l``, ``h_l = tanh(a_l)``, ``E = ½ (h_L − y):(h_L − y)``."""
    lines = [f"# title: {layers}-layer tanh network", f"h0 : {width}", f"y : {width}"]
    for l in range(1, layers + 1):
        lines += [f"W{l} : {width}x{width}", f"b{l} : {width}"]
    for l in range(1, layers + 1):
        lines += [f"a{l} = W{l} h{l - 1} + b{l}", f"h{l} = tanh(a{l})"]
    lines.append(f"E = 1/2 (h{layers} - y):(h{layers} - y)")
    lines.append("wrt " + ", ".join(f"W{l}, b{l}" for l in range(1, layers + 1)))
    return "\n".join(lines) + "\n"


def single_wrt_chain(layers: int, wrt: str = "W1", width: int = 4) -> str:
    """``h_l = tanh(W_l h_{l−1})``, ``E = ½ (h_L − y):(h_L − y)``, one wrt (W1 or the input h0)."""
    layer = range(1, layers + 1)
    lines = [f"h0 : {width}", f"y : {width}"] + [f"W{k} : {width}x{width}" for k in layer]
    lines += [f"h{k} = tanh(W{k} h{k - 1})" for k in layer]
    lines += [f"E = 1/2 (h{layers} - y):(h{layers} - y)", f"wrt {wrt}"]
    return "\n".join(lines) + "\n"


def output_sizes() -> None:
    """One row per (wrt, depth): bytes of Markdown and LaTeX, what each layer added since
    the row before, and the check's verdict; then the growth exponent per wrt."""
    from derive.api import derive
    from run import table
    rows, notes = [], []
    for wrt in ("W1", "h0"):
        sizes: dict = {}
        for depth in DEPTHS:
            start = time.perf_counter()
            d = derive(single_wrt_chain(depth, wrt))
            markdown, latex = len(d.to_markdown().encode()), len(d.to_latex().encode())
            seconds = time.perf_counter() - start
            sizes[depth] = (markdown, latex)
            growth = ["-", "-"] if depth == DEPTHS[0] else \
                [f"{_per_layer(sizes, DEPTHS[DEPTHS.index(depth) - 1], depth, k):.0f}" for k in (0, 1)]
            shown = "named" if d.steps else "plain"
            rows.append([wrt, depth, markdown, growth[0], latex, growth[1], shown,
                         "ok" if d.check.ok else "FAILED", f"{seconds:.2f}"])
        first, last = (_per_layer(sizes, DEPTHS[i], DEPTHS[i + 1]) for i in (0, -2))
        notes.append(f"wrt {wrt}: bytes per layer, L = {DEPTHS[-2]}…{DEPTHS[-1]} against "
                     f"{DEPTHS[0]}…{DEPTHS[1]}: {last / first:.2f} (linear: 1; quadratic growth, "
                     f"every line repeating the adjoints before it, gives about "
                     f"{(DEPTHS[-1] + DEPTHS[-2]) / (DEPTHS[0] + DEPTHS[1]):.1f}; target ≤ 1.1: "
                     f"{'met' if last / first <= 1.1 else 'missed'})")
    notes.append("per layer = bytes added per layer since the row above; adjoints = how the "
                 "sweep is shown (plain substitutions or named adjoints); check = derive's own "
                 "numeric check of every line; s = derive + check + both renders, in process")
    table("Output size of h_l = tanh(W_l h_{l−1}), E = ½‖h_L − y‖², one wrt, width 4",
          ["wrt", "L", "Markdown B", "per layer", "LaTeX B", "per layer", "adjoints", "check",
           "s"], rows, notes)


def _per_layer(sizes: dict, shallow: int, deep: int, kind: int = 0) -> float:
    """Bytes (kind 0: Markdown, 1: LaTeX) each layer adds from depth ``shallow`` to ``deep``."""
    return (sizes[deep][kind] - sizes[shallow][kind]) / (deep - shallow)


def main(argv) -> None:
    if argv:
        print(deep_chain(int(argv[0])), end="")
        return
    from results import recorded
    with recorded("deep-chain", "python benchmarks/deep_chain.py"):
        output_sizes()


if __name__ == "__main__":
    main(sys.argv[1:])
