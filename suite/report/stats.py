"""Statistics of the ranking tables: confidence intervals over seeds and shared ranks.

A row's seeds are a small sample (3 runs), so a table states how sure its order is:

* the **95% confidence interval** of a row's mean is ``mean ± t(0.975, n - 1) · s / √n``
  (Student's t, ``s`` the sample standard deviation with ``ddof=1``; none for one run);
* two rows are **told apart** when Welch's unequal-variances t-test (Welch, Biometrika 1947)
  rejects equal means, two-sided, at ``ALPHA = 0.05``; a row's **rank** is the range from
  1 + the number of rows told apart above it to the number of rows not told apart below it
  (``"1-2"`` when the first two are within seed noise, ``"1"`` and ``"2"`` when not). No correction
  for multiple comparisons is made, and every caption says so.

The t distribution is computed here (regularized incomplete beta function by Lentz's continued
fraction, Numerical Recipes 3rd ed. §6.4), so ``report`` needs no scipy; the tests check it
against ``scipy.stats.t``. Torch-free.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "RANK_TEST",
    "confidence_half_width",
    "shared_ranks",
    "t_quantile",
    "t_sf_two_sided",
    "welch_p_value",
]

ALPHA = 0.05
"""Significance level of the rank test (two-sided)."""

CONFIDENCE = 0.95
"""Level of the confidence interval shown per row."""

RANK_TEST = (
    "ranks shared where Welch's two-sided t-test gives p >= 0.05 "
    "(no correction for multiple comparisons)"
)
"""How ranks are shared, as every caption states it."""


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_sf_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (``df`` > 0, may be fractional).

    Returns:
        The two-sided tail probability, in [0, 1].
    """
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom, for p in (0.5, 1).

    Found by bisection on :func:`t_sf_two_sided` to 1e-12 (e.g. ``t_quantile(0.975, 2)`` is
    4.3027).
    """
    tail = 2.0 * (1.0 - p)
    low, high = 0.0, 1.0
    while t_sf_two_sided(high, df) > tail:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_sf_two_sided(mid, df) > tail else (low, mid)
        if high - low < 1e-12:
            break
    return (low + high) / 2.0


def confidence_half_width(values: Sequence[float], level: float = CONFIDENCE) -> float | None:
    """Half the width of the ``level`` t-interval of the mean of ``values``.

    Returns:
        ``t((1 + level) / 2, n - 1) · s / √n`` (percentage points for top-1 values), or None for
        fewer than two values.
    """
    n = len(values)
    if n < 2:
        return None
    return t_quantile((1.0 + level) / 2.0, n - 1) * statistics.stdev(values) / math.sqrt(n)


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test for equal means of samples ``a`` and ``b``.

    Returns:
        The p-value; 0.0 or 1.0 when both samples have no spread (different or equal means);
        None when a sample has fewer than two values (no test can be made).
    """
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t_sf_two_sided(diff / math.sqrt(va + vb), df)


def shared_ranks(samples: Sequence[Sequence[float]], alpha: float = ALPHA) -> list[str]:
    """Ranks of samples ordered best first (highest mean first), shared within seed noise.

    Row ``i``'s rank runs from 1 + the rows above it that Welch's test tells apart from it
    (p < ``alpha``) to the number of rows minus those below it told apart; rows that cannot be
    tested (a single run) are told apart from none.

    Args:
        samples: Per row its per-seed values, rows sorted by mean, best first.

    Returns:
        One rank per row: ``"1"``, ``"2"``, or a range such as ``"1-2"``.
    """
    n = len(samples)
    apart = [
        [i != j and (p := welch_p_value(samples[i], samples[j])) is not None and p < alpha
         for j in range(n)]
        for i in range(n)
    ]  # fmt: skip
    ranks = []
    for i in range(n):
        low = 1 + sum(apart[i][j] for j in range(i))
        high = n - sum(apart[i][j] for j in range(i + 1, n))
        ranks.append(str(low) if low == high else f"{low}-{high}")
    return ranks
