"""Figures (PNG + PDF) and the trainability table, drawn from plain numbers."""

from __future__ import annotations

import statistics

import pytest

from pruning_suite.errors import OutputError, PruningSuiteError
from pruning_suite.report.figures import (
    FigureError,
    accuracy_vs_epoch_figure,
    jsv_vs_epoch_figure,
    plot_accuracy_vs_epoch,
    plot_accuracy_vs_sparsity,
    plot_jsv_vs_epoch,
    ta_table,
)

pytest.importorskip("matplotlib")

ARMS = {
    "LR 0.01": [[(0, 60.0), (1, 70.0), (2, 80.0), (3, 85.0)], [(0, 62.0), (1, 71.0), (2, 79.0)]],
    "LR 0.001": [[(0, 50.0), (1, 55.0), (2, 58.0), (3, 60.0)]],
}
STAGES = {"LR 0.01": [(0, 0.01), (2, 0.001)], "LR 0.001": [(0, 0.001), (3, 0.0001)]}


def _assert_written(paths, stem):
    assert [p.name for p in paths] == [stem.name + ".png", stem.name + ".pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000


def test_accuracy_vs_epoch_writes_png_and_pdf(tmp_path):
    stem = tmp_path / "figs" / "fig3.lr"  # a dot in the stem is not a suffix to replace
    _assert_written(plot_accuracy_vs_epoch(ARMS, STAGES, stem), stem)
    _assert_written(plot_accuracy_vs_epoch(ARMS, None, tmp_path / "plain"), tmp_path / "plain")


def test_each_lr_schedule_gets_its_own_panel_with_its_stages_shaded():
    figure = accuracy_vs_epoch_figure(ARMS, STAGES, reference=88.5)
    panels = figure.axes
    assert [axes.get_title() for axes in panels] == [
        "LR schedule 0:0.01,2:0.001",
        "LR schedule 0:0.001,3:0.0001",
    ]
    for axes, starts in zip(panels, ([0, 2], [0, 3]), strict=True):
        spans = [patch.get_x() for patch in axes.patches]  # axvspan rectangles, by stage
        assert spans == starts
        assert axes.get_legend().texts[-1].get_text() == "dense base model 88.50"
    assert [t.get_text() for t in panels[0].get_legend().texts][:1] == ["LR 0.01 (n=2)"]
    assert panels[0].get_ylim() == panels[1].get_ylim()  # one y axis for all panels
    shared = {"LR 0.01": ARMS["LR 0.01"], "LR 0.1": ARMS["LR 0.001"]}
    same = {"LR 0.01": STAGES["LR 0.01"], "LR 0.1": STAGES["LR 0.01"]}
    assert len(accuracy_vs_epoch_figure(shared, same).axes) == 1


def test_stages_are_shaded_only_over_the_epochs_run():
    short = {"smoke": [[(0, 50.0), (1, 60.0)]]}  # 2 epochs of a 0:0.1,5:0.01,8:0.001 schedule
    figure = accuracy_vs_epoch_figure(short, {"smoke": [(0, 0.1), (5, 0.01), (8, 0.001)]})
    (axes,) = figure.axes
    assert [(p.get_x(), p.get_width()) for p in axes.patches] == [(0, 2)]
    assert [t.get_text() for t in axes.texts] == [" LR 0.1"]
    assert axes.get_xlim()[1] < 3


def test_jsv_axis_is_logarithmic_so_the_collapse_shows():
    arms = {"no OrthP": [[(-1, 0.007), (0, 1.2), (1, 3.0)]], "OrthP": [[(-1, 1.0), (0, 1.5)]]}
    figure = jsv_vs_epoch_figure(arms, reference=3.39)
    (axes,) = figure.axes
    assert axes.get_yscale() == "log"
    dense = [line for line in axes.get_lines() if line.get_linestyle() == ":"]
    assert [line.get_ydata()[0] for line in dense] == [3.39]
    assert jsv_vs_epoch_figure({"a": [[(0, 0.0), (1, 1.0)]]}).axes[0].get_yscale() == "linear"


def test_pdf_is_reproducible(tmp_path):
    first = plot_accuracy_vs_epoch(ARMS, STAGES, tmp_path / "a")[1].read_bytes()
    second = plot_accuracy_vs_epoch(ARMS, STAGES, tmp_path / "b")[1].read_bytes()
    assert first == second


def test_jsv_vs_epoch_with_the_after_pruning_point(tmp_path):
    arms = {"OrthP": [[(-1, 1.0), (0, 0.9), (1, 0.8)]], "no OrthP": [[(-1, 0.02), (0, 0.3)]]}
    _assert_written(plot_jsv_vs_epoch(arms, tmp_path / "jsv"), tmp_path / "jsv")


def test_accuracy_vs_sparsity_with_and_without_error_bars(tmp_path):
    points = {
        "L1, LR 0.01": [(0.3114, 93.79, 0.06), (0.4982, 93.51, 0.07), (0.9039, 86.75, None)],
        "scratch": [(0.9039, 88.36, 0.20), (0.3114, 93.16, 0.16)],
    }
    _assert_written(plot_accuracy_vs_sparsity(points, tmp_path / "t6"), tmp_path / "t6")


def test_sparsity_given_in_percent_is_refused(tmp_path):
    with pytest.raises(FigureError, match="not in \\[0, 1\\]") as err:
        plot_accuracy_vs_sparsity({"L1": [(31.14, 93.79, 0.06)]}, tmp_path / "x")
    assert "fraction" in err.value.hint


@pytest.mark.parametrize(
    "draw",
    [
        lambda arms, out: plot_accuracy_vs_epoch(arms, None, out),
        plot_jsv_vs_epoch,
        plot_accuracy_vs_sparsity,
    ],
)
@pytest.mark.parametrize("arms", [{}, {"LR 0.01": []}, {"LR 0.01": [[]]}])
def test_empty_input_raises_with_a_hint(tmp_path, draw, arms):
    with pytest.raises(FigureError) as err:
        draw(arms, tmp_path / "empty")
    assert isinstance(err.value, PruningSuiteError) and err.value.hint
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_point_is_refused(tmp_path, bad):
    with pytest.raises(FigureError, match="non-finite point"):
        plot_jsv_vs_epoch({"a": [[(0, 1.0), (1, bad)]]}, tmp_path / "x")
    with pytest.raises(FigureError, match="non-finite point"):
        plot_accuracy_vs_sparsity({"L1": [(0.5, bad, None)]}, tmp_path / "y")
    assert not list(tmp_path.iterdir())


def test_stages_of_an_unknown_arm_raise(tmp_path):
    with pytest.raises(FigureError, match="unknown arms \\['LR 0.1'\\]"):
        plot_accuracy_vs_epoch(ARMS, {"LR 0.1": [(0, 0.1)]}, tmp_path / "x")


def test_unwritable_output_raises_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write figure"):
        plot_jsv_vs_epoch({"a": [[(0, 1.0)]]}, blocker / "sub" / "jsv")


# ----------------------------------------------------------------------------------------------
# ta_table

RUNS = [
    {"arm": "LR 0.01", "ta_val": 80.0, "ta_test": 79.5, "final_test_top1": 93.79},
    {"arm": "LR 0.001", "ta_val": 70.25, "ta_test": 70.0, "final_test_top1": 93.43},
    {"arm": "LR 0.01", "ta_val": 82.0, "ta_test": 80.5, "final_test_top1": 93.71},
    {"arm": "LR 0.01", "ta_val": 81.0, "ta_test": 81.5, "final_test_top1": 93.90},
]


def _cells(table: str) -> list[list[str]]:
    lines = table.splitlines()
    assert lines[1].startswith("|-") or lines[1].startswith("|:")
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_ta_table_numbers_are_mean_and_sample_std_per_arm():
    cells = _cells(ta_table(RUNS))
    assert [row[0] for row in cells] == ["LR 0.01", "LR 0.001"]  # first appearance order
    lr01 = [r for r in RUNS if r["arm"] == "LR 0.01"]
    for column, key in enumerate(("ta_val", "ta_test", "final_test_top1"), start=1):
        values = [r[key] for r in lr01]
        mean, std = (float(part) for part in cells[0][column].split("±"))
        assert mean == pytest.approx(statistics.fmean(values), abs=0.005)
        assert std == pytest.approx(statistics.stdev(values), abs=0.005)
    assert cells[0][4] == "3"
    assert cells[1][1:] == ["70.25 ± n/a", "70.00 ± n/a", "93.43 ± n/a", "1"]


def test_ta_table_accepts_objects_and_rejects_bad_rows():
    class Row:
        arm, ta_val, ta_test, final_test_top1 = "a|b", 1.0, 2.0, 3.0

    assert _cells(ta_table([Row()]))[0][0] == "a\\"  # the "|" is escaped, not a column break
    with pytest.raises(FigureError, match="no rows"):
        ta_table([])
    with pytest.raises(FigureError, match="'ta_test'"):
        ta_table([{"arm": "x", "ta_val": 1.0, "final_test_top1": 2.0}])
    with pytest.raises(FigureError, match="nan"):
        ta_table([{"arm": "x", "ta_val": float("nan"), "ta_test": 1.0, "final_test_top1": 2.0}])
