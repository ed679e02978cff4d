"""Moments of the truncated normal (trunc_normal's weights) from the bulk far into the tails."""

import math

import mpmath
import pytest
from initscope.engine.theory.meanfield import TRUNC_STD1, truncated_normal_moments


def reference(a: float, b: float) -> tuple[float, float]:
    """Mean and variance of N(0, 1) on [a, b] at 50 digits: the density relative to its value at the
    end nearest 0, integrated with breakpoints where it falls by e, e^10, e^40 (so no tail underflows)."""
    mpmath.mp.dps = 50
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    if a < 0 < b:
        pieces = [(a, 0), (0, b)]
    else:
        pieces = [(a, b)]
    m = [mpmath.mpf(0)] * 3
    anchor = min(abs(a), abs(b)) if not a < 0 < b else mpmath.mpf(0)
    for lo, hi in pieces:
        edge = max(abs(lo), abs(hi)) if lo < 0 else min(lo, hi) if hi > 0 else -hi
        scale = 1 / max(abs(edge), 1)
        marks = sorted({lo, hi, *[x for k in (1, 10, 40) for x in (edge + k * scale, -edge - k * scale)
                                    if lo < x < hi]})
        for k in range(3):
            m[k] += mpmath.quad(lambda z, k=k: z**k * mpmath.exp(-(z * z - anchor * anchor) / 2), marks)
    mean = m[1] / m[0]
    return float(mean), float(m[2] / m[0] - mean * mean)


@pytest.mark.parametrize("a, b", [(-2, 2), (-1, 2), (0, 1), (-3, 0), (8, 9), (5, math.inf), (-1, 40),
                                  (50, 60), (-60, -50), (30, 30.001), (1e3, 1e3 + 1), (0.5, 0.5 + 1e-9)])
def test_moments_match_a_50_digit_integral(a, b):
    mean, var = truncated_normal_moments(1.0, a, b)
    ref_mean, ref_var = reference(a, b)
    assert mean == pytest.approx(ref_mean, rel=1e-12, abs=1e-15)
    assert var == pytest.approx(ref_var, rel=1e-10)


def test_far_tail_follows_the_asymptotic_series():
    # one-sided tail beyond alpha (Mills-ratio expansion): mean = alpha + 1/alpha - 2/alpha^3 + 10/alpha^5,
    # var = 1/alpha^2 - 6/alpha^4 + 50/alpha^6, each up to its next term (74/alpha^7 and 518/alpha^8).
    # The textbook pdf/Z form divides 0 by 0 here: Z underflows past alpha ~ 38.
    for alpha in (50.0, 1e3, 1e6):
        mean, var = truncated_normal_moments(1.0, alpha, 2 * alpha)
        assert mean == pytest.approx(alpha + 1 / alpha - 2 / alpha**3 + 10 / alpha**5,
                                     abs=2 * 74 / alpha**7 + 4 * alpha * 2.2e-16)
        assert var == pytest.approx(1 / alpha**2 - 6 / alpha**4 + 50 / alpha**6, rel=2 * 518 / alpha**6 + 1e-10)


def test_std_scales_the_moments_without_overflow():
    assert math.sqrt(truncated_normal_moments(1.0, -2.0, 2.0)[1]) == pytest.approx(TRUNC_STD1, rel=1e-12)
    # a huge std: [-2, 2] is a sliver of its centre, so the weights are uniform there: var (b - a)^2/12
    assert truncated_normal_moments(1e308, -2.0, 2.0) == pytest.approx((0.0, 16 / 12), rel=1e-12)
    mean, var = truncated_normal_moments(3.0, 150.0, 180.0)  # alpha = 50 in units of std
    assert mean == pytest.approx(3 * 50.01998403190564, rel=1e-12)
