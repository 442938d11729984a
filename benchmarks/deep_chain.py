"""Synthetic deep chains: L tanh layers and a squared-error loss, every weight as wrt.

    python benchmarks/deep_chain.py 8 > deep8.chain
"""
from __future__ import annotations

import sys


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


if __name__ == "__main__":
    print(deep_chain(int(sys.argv[1]) if len(sys.argv) > 1 else 4), end="")
