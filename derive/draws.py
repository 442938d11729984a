"""A seed → the check's random numbers, without ``numpy.random`` for small draws.

``import numpy.random`` costs about 8 ms, a tenth of what derive adds to a cold start
beyond ``import sympy, numpy``, while the check of a small chain draws a few dozen
arrays of a few entries.  ``Draws`` gives the part of ``numpy.random.Generator`` that
derive uses (``normal(size=…)``, ``integers(low, high, size=…, dtype=…)``): small draws
come from the standard library's Mersenne Twister (already imported by SymPy), turned
into arrays in a few vectorised steps; larger ones from ``numpy.random.default_rng``,
imported on the first such draw.  Both streams follow from the seed alone, so a check
is reproducible; a ``numpy.random.Generator`` can stand in wherever a ``Draws`` is taken.
"""
from __future__ import annotations

import math
import random

import numpy as np

# Draws of more entries than this come from NumPy.  Measured (2 cores, Python 3.11,
# NumPy 2.4): a normal draw of n entries costs ~14 µs + 45 ns·n here, 2 µs + 13 ns·n from
# a NumPy Generator; at 1024 entries the difference (65 µs) is 1/120 of NumPy's import,
# and the rank-one directions of the n = 2000 check benchmark stay NumPy's.
SMALL = 1024
_MASK64 = (1 << 64) - 1
_INT64 = (-(1 << 63), (1 << 63) - 1)


class Draws:
    """Random arrays from ``seed`` (an int ≥ 0, or a tuple or list of them, as NumPy's
    ``default_rng`` takes): equal seeds give equal draws, in the same order."""

    def __init__(self, seed=0):
        parts = tuple(seed) if isinstance(seed, (tuple, list)) else (seed,)
        if not parts or any(not isinstance(p, (int, np.integer)) or p < 0 for p in parts):
            raise ValueError(f"a seed is an integer ≥ 0 or a sequence of them, not {seed!r}")
        self.seed = [int(p) for p in parts]
        # a string seed is hashed (SHA-512) whole, so (1, 2) and (12,) differ
        self._small = random.Random(",".join(map(str, self.seed)))
        self._large = None

    def normal(self, *, size) -> np.ndarray:
        """Standard normal entries in an array of shape ``size``."""
        shape = _shape(size)
        n = math.prod(shape)
        if n > SMALL:
            return self._numpy().normal(size=shape)
        return self._normal(n).reshape(shape)

    def integers(self, low: int, high: int, size=None, dtype=np.int64):
        """Integers uniform on ``[low, high)``: an int64 array of shape ``size``, or one
        int when ``size`` is None."""
        low, high = int(low), int(high)
        if low >= high or low < _INT64[0] or high - 1 > _INT64[1]:
            raise ValueError(f"integers: need int64 bounds low < high, not [{low}, {high})")
        if np.dtype(dtype) != np.int64:
            raise TypeError(f"integers: only int64 draws are made here, not {dtype}")
        if size is None:
            return self._small.randrange(low, high)
        shape = _shape(size)
        n = math.prod(shape)
        if n > SMALL:
            return self._numpy().integers(low, high, size=shape, dtype=np.int64)
        return self._integers(low, high, n).reshape(shape)

    def _numpy(self):
        if self._large is None:
            self._large = np.random.default_rng(self.seed)
        return self._large

    def _words(self, n: int) -> np.ndarray:
        """``n`` uniform 64-bit words, in one call to the generator."""
        bits = self._small.getrandbits(64 * n) if n else 0
        return np.frombuffer(bits.to_bytes(8 * n, "little"), dtype="<u8")

    def _normal(self, n: int) -> np.ndarray:
        """Box–Muller on 53-bit uniforms: each pair of words gives two normal entries."""
        half = (n + 1) // 2
        u = (self._words(2 * half) >> np.uint64(11)) * 2.0 ** -53        # in [0, 1)
        radius = np.sqrt(-2.0 * np.log1p(-u[:half]))                     # 1 − u in (0, 1]
        angle = (2.0 * math.pi) * u[half:]
        return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]

    def _integers(self, low: int, high: int, n: int) -> np.ndarray:
        """Rejection sampling on the fewest bits that cover the span (at least half the
        words are kept), then ``low`` added modulo 2⁶⁴: spans up to the whole int64 range."""
        span = high - low
        bits = (span - 1).bit_length()
        mask = np.uint64((1 << bits) - 1)
        kept: list[np.ndarray] = []
        missing = n
        while missing:
            words = self._words(missing) & mask
            if span != 1 << bits:
                words = words[words < np.uint64(span)]
            kept.append(words)
            missing -= len(words)
        found = np.concatenate([np.empty(0, np.uint64), *kept])
        return (found + np.uint64(low & _MASK64)).view(np.int64)


def _shape(size) -> tuple:
    return tuple(int(s) for s in size) if isinstance(size, (tuple, list)) else (int(size),)
