"""derive.draws: the check's random numbers, deterministic per seed, right in distribution
(closed forms: the normal's moments and CDF by math.erf), inside their bounds, and without
numpy.random for small draws."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from derive.draws import SMALL, Draws

ROOT = Path(__file__).resolve().parent.parent


def _sequence(rng) -> list:
    """A mixed run of draws, small and large, as a check makes them."""
    return [rng.normal(size=(5, 4)), rng.integers(-2 ** 62, 2 ** 62, size=(7, 1), dtype=np.int64),
            rng.normal(size=(SMALL + 1, 1)), rng.integers(0, 2 ** 61 - 1, size=(3, 3)),
            np.array([rng.integers(-9, 10) for _ in range(5)]), rng.normal(size=(1, 3))]


def test_equal_seeds_give_equal_draws_in_the_same_order():
    for seed in (0, 7, (3, 61), [3, 1]):
        first, second = _sequence(Draws(seed)), _sequence(Draws(seed))
        assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert Draws(5).normal(size=(3, 1)).tolist() == Draws((5,)).normal(size=(3, 1)).tolist()


def test_distinct_seeds_give_distinct_draws():
    seeds = [0, 1, 2, 12, (1, 2), (0, 61), (0, 1), (61, 0)]
    small = {tuple(Draws(s).normal(size=(4, 1)).ravel()) for s in seeds}
    large = {tuple(Draws(s).normal(size=(SMALL + 1, 1)).ravel()[:4]) for s in seeds}
    ints = {tuple(Draws(s).integers(0, 2 ** 61 - 1, size=(4, 1)).ravel()) for s in seeds}
    assert len(small) == len(large) == len(ints) == len(seeds)


def test_successive_draws_differ():
    rng = Draws(0)
    a, b = rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    assert not np.array_equal(a, b)
    c, d = rng.normal(size=(SMALL + 5, 1)), rng.normal(size=(SMALL + 5, 1))
    assert not np.array_equal(c, d)


def test_shapes_and_types_are_numpys():
    rng = Draws(3)
    for size in [(1, 1), (3, 1), (1, 3), (5, 4), (SMALL + 1, 1), (2, SMALL)]:
        x = rng.normal(size=size)
        assert x.shape == size and x.dtype == np.float64 and np.all(np.isfinite(x))
        k = rng.integers(-5, 5, size=size, dtype=np.int64)
        assert k.shape == size and k.dtype == np.int64
    assert rng.normal(size=7).shape == (7,)
    assert isinstance(rng.integers(-9, 10), int)


@pytest.mark.parametrize("rows", [1, 3, 64, SMALL, 4 * SMALL])
def test_normal_draws_have_the_normal_moments_and_distribution(rows):
    """Mean 0, variance 1, third moment 0, fourth 3 (within 5 standard errors), and the
    empirical CDF within a Kolmogorov–Smirnov bound of Φ(z) = (1 + erf(z/√2))/2."""
    rng = Draws(11)
    x = np.concatenate([rng.normal(size=(rows, 1)).ravel() for _ in range(max(1, 40_000 // rows))])
    n = len(x)
    for k, moment, variance in ((1, 0.0, 1.0), (2, 1.0, 2.0), (3, 0.0, 15.0), (4, 3.0, 96.0)):
        assert abs(np.mean(x ** k) - moment) < 5 * math.sqrt(variance / n), k
    z = np.sort(x)
    cdf = np.array([(1 + math.erf(v / math.sqrt(2))) / 2 for v in z])
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n)                  # the 0.1 % critical value


def test_integers_stay_within_their_bounds_and_cover_them():
    rng = Draws(2)
    for low, high in [(-2 ** 62, 2 ** 62), (0, 2 ** 61 - 1), (-2 ** 63, 2 ** 63), (-9, 10),
                      (1, 5), (7, 8), (2 ** 63 - 3, 2 ** 63)]:
        for size in [(600, 1), (SMALL + 100, 1)]:
            k = rng.integers(low, high, size=size, dtype=np.int64)
            assert int(k.min()) >= low and int(k.max()) < high, (low, high)
            span = high - low
            if span <= 20:                   # every value drawn, each about equally often
                counts = np.bincount((k.ravel() - low).astype(np.int64), minlength=span)
                assert len(counts) == span and counts.min() > 0
                assert counts.max() - counts.min() < 8 * math.sqrt(size[0] / span) + 1
            else:                            # both ends of a wide range are reached
                quarter = span // 4
                assert int(k.min()) < low + quarter and int(k.max()) >= high - quarter
    scalars = [rng.integers(-9, 10) for _ in range(2000)]
    assert min(scalars) == -9 and max(scalars) == 9


def test_the_fast_draw_words_are_odd_and_use_every_bit():
    """``_fast_draw``'s multipliers ``2k + 1`` for k on [−2⁶², 2⁶²): odd int64 values whose
    top bits vary (a multiplier stuck at small values would make the hash degenerate)."""
    k = Draws(0).integers(-2 ** 62, 2 ** 62, size=(2000, 1), dtype=np.int64)
    a = k * 2 + 1
    assert np.all(a % 2 == 1)
    bits = ((a.view(np.uint64)[:, 0, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1))
    assert np.all(bits.mean(axis=0)[1:] > 0.4) and np.all(bits.mean(axis=0)[1:] < 0.6)


def test_bad_seeds_and_bounds_are_refused():
    for seed in (-1, (1, -2), (), 1.5, "0"):
        with pytest.raises(ValueError):
            Draws(seed)
    rng = Draws(0)
    for low, high in [(3, 3), (4, 2), (-2 ** 63 - 1, 0), (0, 2 ** 63 + 1)]:
        with pytest.raises(ValueError):
            rng.integers(low, high, size=(2, 1))
    with pytest.raises(TypeError):
        rng.integers(0, 4, size=(2, 1), dtype=np.int32)


def test_small_draws_leave_numpy_random_unimported_and_large_ones_load_it():
    probe = ("import sys\nfrom derive.draws import SMALL, Draws\nrng = Draws(0)\n"
             "rng.normal(size=(SMALL, 1)); rng.integers(-2**62, 2**62, size=(SMALL, 1))\n"
             "before = 'numpy.random' in sys.modules\nrng.normal(size=(SMALL + 1, 1))\n"
             "print(before, 'numpy.random' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True"]
