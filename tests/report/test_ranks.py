"""report: 95% confidence intervals and shared ranks from Welch's t-test, in every format."""

from __future__ import annotations

import csv
import html
import io
import math

import pytest

from pruning_suite.record.submission import Submission
from pruning_suite.report.stats import (
    confidence_half_width,
    shared_ranks,
    t_quantile,
    t_sf_two_sided,
    welch_p_value,
)
from pruning_suite.report.tables import build_tables, render
from tests.conftest_submissions import make_submission

# Student's t quantiles and Welch p-values as scipy.stats computes them (scipy 1.17).
T975 = {1: 12.706204736174694, 2: 4.302652729749462, 4: 2.7764451051977934, 30: 2.0422724563012378}


def _row(method: str, top1s: tuple[float, ...]) -> list[Submission]:
    return [
        Submission.model_validate(make_submission(method=method, seed=seed, top1=top1))
        for seed, top1 in enumerate(top1s)
    ]


@pytest.mark.parametrize(("df", "quantile"), sorted(T975.items()))
def test_t_quantile_is_students(df, quantile) -> None:
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-8)


def test_two_sided_tail_and_welch_match_scipy() -> None:
    assert t_sf_two_sided(2.0, 5) == pytest.approx(0.10193947882985835, abs=1e-12)
    assert t_sf_two_sided(0.0, 3) == 1.0
    # scipy.stats.ttest_ind([90, 91, 92], [85, 86, 90], equal_var=False).pvalue
    assert welch_p_value([90, 91, 92], [85, 86, 90]) == pytest.approx(0.10636671602031073)


def test_welch_edge_cases() -> None:
    assert welch_p_value([1.0], [2.0, 3.0]) is None  # one run: no test
    assert welch_p_value([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert welch_p_value([2.0, 2.0], [3.0, 3.0]) == 0.0
    # one sample without spread: df = n_b - 1, t = 1 / (1 / sqrt(3)) = sqrt(3)
    assert welch_p_value([2.0, 2.0, 2.0], [0.0, 1.0, 2.0]) == pytest.approx(
        t_sf_two_sided(math.sqrt(3), 2)
    )


def test_confidence_interval_of_three_seeds() -> None:
    assert confidence_half_width([90.0, 91.0, 92.0]) == pytest.approx(T975[2] / math.sqrt(3))
    assert confidence_half_width([90.0]) is None


def test_a_difference_within_seed_noise_shares_a_rank() -> None:
    # 2.5 pp (9 of 360 images) apart with a sample std of 2.5: Welch p = 0.29, not told apart
    (table,) = build_tables(_row("l1norm", (87.5, 90.0, 92.5)) + _row("random", (85.0, 87.5, 90.0)))
    assert [(r.method, r.rank) for r in table.rows] == [("l1norm", "1-2"), ("random", "1-2")]


def test_a_difference_beyond_seed_noise_ranks_apart() -> None:
    # 12.5 pp apart with a sample std of 2.5 (5 and 1 scaled by 2.5): Welch p = 0.0036
    (table,) = build_tables(_row("l1norm", (87.5, 90.0, 92.5)) + _row("random", (75.0, 77.5, 80.0)))
    assert [(r.method, r.rank) for r in table.rows] == [("l1norm", "1"), ("random", "2")]
    assert welch_p_value((90.0, 91.0, 92.0), (85.0, 86.0, 87.0)) == pytest.approx(
        0.0036022326091040033
    )


def test_ranks_are_ranges_not_chains() -> None:
    # A~B and B~C within noise, A and C apart (diff 3, t = 3.67 > t(0.975, 4) = 2.78)
    samples = [(10.0, 11.0, 12.0), (8.5, 9.5, 10.5), (7.0, 8.0, 9.0)]
    assert shared_ranks(samples) == ["1-2", "1-3", "2-3"]
    assert shared_ranks([(1.0,), (0.5,)]) == ["1-2", "1-2"]  # single runs cannot be told apart


def test_every_format_shows_ranks_cis_and_names_the_test() -> None:
    tables = build_tables(_row("l1norm", (87.5, 90.0, 92.5)) + _row("random", (85.0, 87.5, 90.0)))
    for fmt in ("github", "latex", "html"):
        text = html.unescape(render(tables, fmt)) if fmt == "html" else render(tables, fmt)
        assert "Welch's two-sided t-test" in text and "alpha 0.05" in text, fmt
        assert "[83.79, 96.21]" in text, fmt  # 90 ± 4.3027 * 2.5 / sqrt(3)
        assert "95" in text and "CI" in text, fmt
    github = render(tables, "github")
    ranked = [line.split("|")[1].strip() for line in github.splitlines() if "v1.0" in line]
    assert ranked == ["1-2", "1-2"]
    assert r"1--2 & l1norm v1.0" in render(tables, "latex")
    rows = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    assert [(r["rank_welch_t_test_alpha_0.05"], r["top1_ci95_low"]) for r in rows] == [
        ("1-2", "83.79"),
        ("1-2", "81.29"),
    ]


def test_rows_listed_apart_get_no_rank() -> None:
    (table,) = build_tables(_row("l1norm", (87.5, 90.0, 92.5)) + _row("random", (95.0,)))
    assert [r.rank for r in table.rows] == ["1"]
    assert [(r.method, r.rank) for r in table.incomplete] == [("random", "")]
