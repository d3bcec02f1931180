"""report as a new user tries it for a paper: booktabs LaTeX with a label and the dense line,
measured speedup per device, labels that never hide a non-default config, several folders, one
summary line for warnings, figures with a title, the dense line and side-by-side methods."""

from __future__ import annotations

import csv
import io

import pytest

from pruning_suite.cli.main import main
from pruning_suite.record.submission import Submission
from pruning_suite.report.tables import build_tables, render
from tests.conftest_submissions import make_submission, write_submission


def _latency(device_name: str, speedups: dict[int, float]) -> list[dict]:
    return [
        {
            "device": "cpu",
            "device_name": device_name,
            "num_threads": 2,
            "batch_size": batch,
            "warmup": 3,
            "repeats": 7,
            "dense_ms": 2.0 * speedup,
            "pruned_ms": 2.0,
            "speedup": speedup,
            "dense_throughput": batch / (0.002 * speedup),
            "pruned_throughput": batch / 0.002,
        }
        for batch, speedup in speedups.items()
    ]


def _subs(method: str = "l1norm", latency: list[dict] | None = None, **kwargs) -> list[Submission]:
    subs = []
    for seed, top1 in enumerate((87.5, 90.0, 92.5)):
        data = make_submission(method=method, seed=seed, top1=top1, **kwargs)
        data["latency"] = latency
        subs.append(Submission.model_validate(data))
    return subs


def test_latex_uses_booktabs_a_label_and_the_dense_line() -> None:
    latex = render(build_tables(_subs()), "latex")
    assert "\\hline" not in latex
    assert latex.count("\\toprule") == latex.count("\\bottomrule") == 1
    assert "\\label{tab:digits-convnet-v1-uniform-50-closed-S42}" in latex
    lines = latex.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("Rank & Method")))
    assert "Params" in lines[header] and "Top-1 (\\%)" in lines[header]
    assert lines[header + 2] == " & dense base model &  & 92.50 &  &  & 0.00 & 1k & 5k & 1.00x \\\\"
    assert lines[header + 4].startswith("1 & l1norm v1.0 & 3 & 90.00 $\\pm$ 2.50 &")
    assert " & 600 & 2.5k & 2.00x \\\\" in lines[header + 4]


def test_measured_speedup_is_shown_per_device_beside_mac_speedup() -> None:
    subs = _subs(latency=_latency("Xeon", {1: 1.25, 64: 1.5}))
    subs += _subs("taylor", latency=_latency("Xeon", {1: 1.0, 64: 1.0}))
    subs += _subs("random", latency=_latency("EPYC", {1: 3.0, 64: 3.0}))
    (table,) = build_tables(subs)
    assert table.latency_device == "cpu: Xeon, 2 threads"  # where most rows were measured
    github = render([table])
    assert "| Measured speedup, batch 1 / 64 |" in github.replace("  ", " ").replace("  ", " ")
    rows = {line.split("|")[2].strip(): line for line in github.splitlines() if "v1.0" in line}
    assert rows["l1norm v1.0"].rstrip(" |").endswith("1.25x / 1.50x")
    assert rows["random v1.0"].rstrip(" |").endswith("n/a / n/a")  # another machine: not shown
    assert "measured speedup: dense / pruned median latency on cpu: Xeon, 2 threads" in github
    csv_rows = list(csv.DictReader(io.StringIO(render([table], "csv"))))
    assert [(r["method"], r["measured_speedup_batch64"]) for r in csv_rows] == [
        ("l1norm", "1.50"),
        ("random", ""),
        ("taylor", "1.00"),
    ]


def test_without_measurements_no_measured_column() -> None:
    assert "Measured speedup" not in render(build_tables(_subs()))


def test_a_non_default_config_always_shows_in_the_label() -> None:
    defaults = {("l1norm", "1.0"): {"p": 1, "q": 0}}
    labels = [
        build_tables(_subs(config=config), defaults=defaults)[0].rows[0].label
        for config in ({"p": 1, "q": 0}, {"p": 2, "q": 0})
    ]
    assert labels == ["l1norm v1.0", 'l1norm v1.0 {"p":2}']
    unknown = build_tables(_subs("mine", config={"x": 1}), defaults={})[0].rows[0].label
    assert unknown == 'mine v1.0 {"x":1}'  # no default known: a non-empty config shows


def test_the_installed_default_config_is_left_out() -> None:
    # the built-in scratch method's default is {"arch_from": "l1norm", "setup": "SX-B"}
    sx_a = _subs("scratch", method_version="1", config={"arch_from": "l1norm", "setup": "SX-A"})
    sx_b = _subs("scratch", method_version="1", config={"arch_from": "l1norm", "setup": "SX-B"})
    assert build_tables(sx_a)[0].rows[0].label == 'scratch v1 {"setup":"SX-A"}'
    assert build_tables(sx_b)[0].rows[0].label == "scratch v1"


def test_report_reads_several_folders(tmp_path, capsys) -> None:
    for folder, method in (("a", "l1norm"), ("b", "random")):
        for seed in range(3):
            write_submission(tmp_path / folder, make_submission(method=method, seed=seed))
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "l1norm v1.0" in out and "random v1.0" in out
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "missing")]) == 2


def test_warnings_are_one_summary_line_unless_asked(tmp_path, capsys) -> None:
    override = {"lr_schedule": "0:0.001"}
    for seed in range(3):
        write_submission(tmp_path, make_submission(seed=seed, retraining_override=override))
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("note: ")
    assert "warnings in 3 files" in err[0] and "keep no file out of the ranking" in err[0]
    assert main(["report", str(tmp_path), "--warnings"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) > 3 and all(line.startswith("warning: ") for line in err)


def test_sparsity_figure_has_a_title_the_dense_line_and_side_by_side_methods() -> None:
    pytest.importorskip("matplotlib")
    from pruning_suite.report.figures import accuracy_vs_sparsity_figure

    points = {"a": [(0.5, 90.0, 1.0)], "b": [(0.5, 89.0, 0.5)], "c (1 of 3)": [(0.5, 88.0, None)]}
    figure = accuracy_vs_sparsity_figure(points, "my title", 92.5, hollow=["c (1 of 3)"])
    (axes,) = figure.axes
    assert axes.get_title() == "my title"
    xs = [bars.lines[0].get_xdata()[0] for bars in axes.containers]
    assert xs == pytest.approx([49.75, 50.0, 50.25])  # a 10-point axis, spread over 5% of it
    assert axes.get_xlim()[1] - axes.get_xlim()[0] >= 10
    legend = axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()][0] == "dense base model 92.50"
    assert legend.get_bbox_to_anchor().x0 > axes.get_window_extent().x1 - 1  # beside the axes
    assert axes.containers[2].lines[0].get_markerfacecolor() == "none"
    assert axes.containers[0].lines[0].get_markerfacecolor() != "none"
