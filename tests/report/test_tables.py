"""report: ranking tables from submission files, mean ± sample std, smoke runs left out.

A rendered Markdown table is: caption, blank, header, rule, the dense base model's line (row 4),
then the ranked rows (row 5 on); columns Rank, Method, Seeds, Top-1, 95% CI, Delta, Sparsity,
Params, MACs, Speedup (MACs).
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from pruning_suite import hookimpl
from pruning_suite.errors import PluginError
from pruning_suite.record.submission import Submission
from pruning_suite.report import ReportFormat
from pruning_suite.report.tables import (
    FORMATS,
    build_tables,
    format_macs,
    load_submissions,
    render,
)
from tests.conftest_submissions import make_submission, write_submission
from tests.entry_points import add_entry_points, module_plugin

# whole numbers of digits' 360 test images (2.5 pp = 9 images)
L1_TOP1 = (87.5, 90.0, 92.5)  # mean 90, sample std sqrt((6.25 + 0 + 6.25) / 2) = 2.5
RANDOM_TOP1 = (75.0, 77.5, 87.5)  # mean 80, sample std sqrt((25 + 6.25 + 56.25) / 2) = 2.5 sqrt(7)
DENSE = 92.5


def _one_seed_protocols():
    """The shipped digits-convnet@1 asking for 1 seed: rows of single runs are ranked."""
    from pruning_suite.protocol.catalogue import shipped_protocol

    return [shipped_protocol("digits-convnet", 1).model_copy(update={"seeds": 1})]


def _tables(subs):
    return build_tables(subs, _one_seed_protocols())


def _sub(**kwargs) -> Submission:
    return Submission.model_validate(make_submission(**kwargs))


def _two_methods() -> list[Submission]:
    subs = [_sub(method="l1norm", seed=s, top1=t) for s, t in enumerate(L1_TOP1)]
    subs += [_sub(method="random", seed=s, top1=t) for s, t in enumerate(RANDOM_TOP1)]
    return subs


def test_two_methods_three_seeds_mean_and_sample_std():
    (table,) = build_tables(_two_methods())
    assert (table.protocol, table.protocol_version, table.target) == (
        "digits-convnet",
        1,
        "uniform-50",
    )
    l1, rnd = table.rows  # ranked by mean top-1, best first
    assert (l1.method, l1.seeds, l1.top1_mean, l1.top1_std) == ("l1norm", (0, 1, 2), 90.0, 2.5)
    assert (rnd.method, rnd.top1_mean) == ("random", 80.0)
    assert rnd.top1_std == pytest.approx(2.5 * math.sqrt(7))
    assert l1.delta_top1 == 90.0 - DENSE
    assert (l1.sparsity, l1.macs_pruned, l1.speedup) == (pytest.approx(40.0), 2500.0, 2.0)
    text = render([table], "github")
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()[4:7]]
    # 95% CI: mean ± t(0.975, 2) * s / sqrt(3), t = 4.3027; Welch p = 0.10: ranks shared (the
    # figures are 91 + 2.5 (x - 91) of 90, 91, 92 and 85, 86, 90: the same t statistic)
    assert rows == [
        ["", "dense base model", "", "92.50", "", "", "0.00", "1k", "5k", "1.00x"],
        [
            "1-2",
            "l1norm v1.0",
            "3",
            "90.00 ± 2.50",
            "[83.79, 96.21]",
            "-2.50",
            "40.00",
            "600",
            "2.5k",
            "2.00x",
        ],
        [
            "1-2",
            "random v1.0",
            "3",
            "80.00 ± 6.61",
            "[63.57, 96.43]",
            "-12.50",
            "40.00",
            "600",
            "2.5k",
            "2.00x",
        ],
    ]


def test_single_run_has_no_std():
    (table,) = _tables([_sub(top1=90.0)])
    assert table.rows[0].top1_std is None
    assert "90.00 ± n/a" in render([table], "github")


def test_smoke_runs_are_counted_not_ranked():
    subs = [_sub(seed=0, top1=90.0), _sub(seed=1, top1=97.5, smoke=True)]
    subs.append(_sub(method="random", seed=2, top1=100.0, smoke=True))
    (table,) = _tables(subs)
    assert [(r.method, r.seeds) for r in table.rows] == [("l1norm", (0,))]
    assert table.smoke_runs == 2
    text = render([table], "github")
    assert "97.50" not in text and "random" not in text
    assert "2 smoke runs not rankable (not listed)" in text


def test_only_smoke_runs_give_an_empty_table_with_a_note():
    (table,) = build_tables([_sub(smoke=True)])
    assert table.rows == []
    text = render([table], "github")
    assert "no rankable runs" in text and "1 smoke run not rankable" in text


def test_groups_by_protocol_version_and_target():
    subs = [
        _sub(target="uniform-50"),
        _sub(target="uniform-70"),
        _sub(protocol_version=2),
        _sub(protocol="fashion-mnist-lenet5"),
    ]
    keys = [(t.protocol, t.protocol_version, t.target) for t in build_tables(subs)]
    assert keys == [
        ("digits-convnet", 1, "uniform-50"),
        ("digits-convnet", 1, "uniform-70"),
        ("digits-convnet", 2, "uniform-50"),
        ("fashion-mnist-lenet5", 1, "uniform-50"),
    ]


def test_method_versions_and_configs_are_separate_rows():
    subs = [
        _sub(method_version="1.0", seed=0),
        _sub(method_version="2.0", seed=1, top1=92.5),
        _sub(method_version="2.0", seed=2, top1=95.0, config={"p": 2}),
    ]
    labels = [r.label for r in _tables(subs)[0].rows]
    assert labels == ['l1norm v2.0 {"p":2}', "l1norm v2.0 {}", "l1norm v1.0"]


def test_disagreeing_base_models_are_noted():
    subs = [_sub(seed=0, dense_top1=92.5), _sub(seed=1, dense_top1=97.5)]
    (table,) = _tables(subs)
    assert table.dense_top1 == 95.0
    assert table.rows[0].delta_top1 == 90.0 - 95.0
    assert any("disagree on the base model" in n for n in table.notes)


def test_every_format_renders_caption_and_numbers():
    tables = build_tables(_two_methods())
    caption_bits = ("digits-convnet@1", "uniform-50", "final-epoch test top-1")
    for fmt in ("github", "latex", "html"):
        text = render(tables, fmt)
        assert all(bit in text for bit in caption_bits), fmt
        assert "90.00" in text and "6.61" in text, fmt
    assert "mean ± sample std over seeds" in render(tables, "github")
    latex = render(tables, "latex")
    assert r"\caption{" in latex and r"90.00 $\pm$ 2.50" in latex and r"\begin{tabular}" in latex
    html = render(tables, "html")
    assert "<caption>" in html and ">90.00 ± 2.50</td>" in html


def test_html_is_one_escaped_table():
    subs = [_sub(method="a<b>", seed=0), _sub(method="a<b>", seed=1)]
    html = render(build_tables(subs), "html")
    assert html.count("<table>") == 1 and html.count("</table>") == 1
    assert "a&lt;b&gt; v1.0" in html and "a<b>" not in html


def test_latex_escapes_special_characters():
    latex = render(build_tables([_sub(method="my_method", target="50%")]), "latex")
    assert r"my\_method" in latex and r"target 50\%" in latex


def test_csv_is_machine_readable():
    text = render(build_tables(_two_methods()), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["method"], r["top1_mean"], r["top1_sample_std"]) for r in rows] == [
        ("l1norm", "90.00", "2.50"),
        ("random", "80.00", "6.61"),
    ]
    assert rows[0]["protocol"] == "digits-convnet" and rows[0]["macs_pruned"] == "2500"


def test_unknown_format_and_empty_input():
    with pytest.raises(PluginError, match="unknown report format 'pdf'") as info:
        render([], "pdf")
    assert "known: csv, github, html, latex" in info.value.hint
    assert set(FORMATS) == {"github", "latex", "html", "csv"}
    assert "No valid submissions" in render([], "github")


@pytest.mark.parametrize(
    ("macs", "text"),
    [(950, "950"), (2500, "2.5k"), (1_234_567, "1.23M"), (412_000_000, "412M"), (4.1e9, "4.1G")],
)
def test_format_macs(macs, text):
    assert format_macs(macs) == text


def test_load_submissions_reports_invalid_files_and_ranks_the_rest(tmp_path):
    for seed, top1 in enumerate(L1_TOP1):
        write_submission(
            tmp_path / "digits-convnet" / "l1norm", make_submission(seed=seed, top1=top1)
        )
    bad = make_submission(seed=9)
    bad["pruning"]["flops_pruned"] = 2500
    bad_path = write_submission(tmp_path / "digits-convnet" / "l1norm", bad)
    subs, problems = load_submissions(tmp_path)
    assert sorted(s.seed for s in subs) == [0, 1, 2]
    assert [(p.path, p.where) for p in problems] == [(str(bad_path), "$.pruning.flops_pruned")]
    (table,) = build_tables(subs)
    assert "90.00 ± 2.50" in render([table])
    json.dumps([p.__dict__ for p in problems])


# --------------------------------------------------------------------------- seeds and base models


def test_a_seed_counts_once_and_the_newest_run_is_kept():
    subs = [
        _sub(seed=0, top1=90.0, created="2024-05-01T12:00:00Z"),
        _sub(seed=0, top1=95.0, created="2024-05-02T12:00:00+02:00"),  # newest
        _sub(seed=0, top1=80.0, created="2024-05-02T09:00:00Z"),  # earlier, 10:00 UTC vs 09:00
        _sub(seed=1, top1=92.5),
    ]
    (table,) = build_tables(subs)
    (row,) = table.incomplete  # 2 of the 3 seeds digits-convnet@1 asks for: not ranked
    assert row.seeds == (0, 1)
    assert row.top1_mean == 93.75  # 95 (seed 0, newest) and 92.5 (seed 1)
    assert table.duplicates_dropped == 2
    assert "2 duplicate runs (same method, config and seed) dropped" in render([table])
    assert table.rows == [] and len(table.incomplete) == 1  # digits-convnet@1 asks for 3 seeds
    text = render([table])
    assert "Not ranked (fewer seeds than the protocol requires):" in text
    assert (
        text.splitlines()[6].split("|")[3].strip() == "2 of 3"
    )  # rows listed apart: no dense line


def test_the_same_seed_of_another_config_is_not_a_duplicate():
    (table,) = _tables([_sub(seed=0), _sub(seed=0, config={"p": 2})])
    assert table.duplicates_dropped == 0 and len(table.rows) == 2


def test_seeds_column_shows_what_a_shipped_protocol_requires():
    subs = [_sub(seed=s) for s in range(2)] + [_sub(method="random", seed=s) for s in range(3)]
    (table,) = build_tables(subs)
    assert [r.method for r in table.rows] == ["random"]  # l1norm: 2 of 3 seeds, not ranked
    assert [(r.method, r.seeds_required) for r in table.incomplete] == [("l1norm", 3)]
    text = render([table])
    ranked, apart = text.split("Not ranked (fewer seeds than the protocol requires):")
    assert "| random v1.0      |       3 |" in ranked and "l1norm" not in ranked
    assert "|        | l1norm v1.0 |  2 of 3 |" in apart
    rows = list(csv.DictReader(io.StringIO(render([table], "csv"))))
    assert [(r["method"], r["seeds"], r["seeds_required"], r["ranked"]) for r in rows] == [
        ("random", "3", "3", "true"),
        ("l1norm", "2", "3", "false"),
    ]
    for fmt in ("html", "latex"):
        assert "Not ranked (fewer seeds than the protocol requires):" in render([table], fmt)


def test_github_tables_escape_tags_and_links_from_submissions():
    hostile = _sub(method="<script>alert(1)</script>", config={"x": "[a](javascript:alert(1))"})
    text = render(build_tables([hostile, _sub(method="<img src=x onerror=alert(1)>", seed=1)]))
    assert "<script>" not in text and "<img" not in text
    # the config shows (not the default of an installed method), its brackets escaped: no link
    assert "\\[a\\](javascript:alert(1))" in text and "[a](javascript:" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    html_text = render(build_tables([hostile]), "html")
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text


def test_unshipped_protocol_has_no_seed_requirement():
    (table,) = build_tables([_sub(protocol="my-protocol")])
    assert table.rows[0].seeds_required is None
    assert "|       1 |" in render([table])
    assert list(csv.DictReader(io.StringIO(render([table], "csv"))))[0]["seeds_required"] == ""


def test_different_base_models_are_noted_even_with_equal_dense_accuracy():
    subs = [_sub(seed=0), _sub(seed=1, checkpoint_sha256="d" * 64)]
    (table,) = build_tables(subs)
    notes = [n for n in table.notes if "base model" in n]
    assert notes == [
        "warning: the runs start from 2 different base models (checkpoint_sha256 "
        "cccccccccccc, dddddddddddd); methods are only comparable on the same base model"
    ]


# --------------------------------------------------------------------------- rendering


def test_method_label_has_a_v_before_the_version_once():
    labels = {
        r.method: r.label for r in _tables([_sub(), _sub(method="x", method_version="v2")])[0].rows
    }
    assert labels == {"l1norm": "l1norm v1.0", "x": "x v2"}


def test_csv_delta_has_a_sign_and_never_minus_zero():
    # a tenth of an image under the dense top-1: no count on 360 images gives it, so the dense
    # figure is moved instead (92.501 is not whole images either: a formatting test only)
    close = make_submission(top1=92.5)
    close["base_model"]["dense_test_top1"] = 92.501
    close["final"]["delta_top1"] = 92.5 - 92.501
    far = make_submission(method="b", top1=95.0)
    far["base_model"]["dense_test_top1"] = 92.501
    far["final"]["delta_top1"] = 95.0 - 92.501
    (table,) = _tables([Submission.model_validate(d) for d in (close, far)])
    github = [line.split("|")[6].strip() for line in render([table]).splitlines()[5:7]]
    rows = list(csv.DictReader(io.StringIO(render([table], "csv"))))
    assert [r["delta_top1_vs_dense"] for r in rows] == github == ["+2.50", "+0.00"]


@pytest.mark.parametrize("name", ["=HYPERLINK(1)", "+1", "-1+1", "@SUM(A1)"])
def test_csv_cells_from_submissions_cannot_be_formulas(name):
    (table,) = build_tables([_sub(method=name, method_version="=1", config={"=": 1})])
    (row,) = list(csv.DictReader(io.StringIO(render([table], "csv"))))
    assert row["method"] == "'" + name
    assert row["method_version"] == "'=1"
    assert row["config"] == '{"=":1}'
    assert row["delta_top1_vs_dense"] == "-2.50"  # the suite's own numbers keep their sign


def test_line_breaks_in_names_are_escaped_in_every_format():
    subs = [_sub(method="evil\nname\r\u2028x", target="t\n1")]
    tables = build_tables(subs)
    shown = "evil\\nname\\r\\u2028x v1.0"
    github = render(tables, "github")
    assert f"| {shown} |" in github and "**t\\n1**" in github
    assert f"<td>{shown}</td>" in render(tables, "html")
    assert r"evil\textbackslash{}nname" in render(tables, "latex")
    (row,) = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    assert (row["method"], row["target"]) == ("evil\\nname\\r\\u2028x", "t\\n1")
    for fmt in FORMATS:
        assert "\r" not in render(tables, fmt) and "\u2028" not in render(tables, fmt)


def test_pipe_in_a_name_does_not_split_the_markdown_row():
    text = render(_tables([_sub(method="a|b")]), "github")
    row = text.splitlines()[5]
    assert "a\\|b v1.0" in row and row.count("|") - row.count("\\|") == 11


def test_html_puts_notes_after_the_table_and_never_renders_an_empty_table():
    tables = build_tables([_sub(seed=0), _sub(seed=1, smoke=True), _sub(target="x", smoke=True)])
    html = render(tables, "html")
    first, second = html.split("<section>")[1:]  # uniform-50, then x
    assert first.index("</table>") < first.index("<p>1 smoke run not rankable (not listed)</p>")
    assert first.rstrip().endswith("</section>")
    assert "<table>" not in second and "<caption>" not in second
    # a target with only smoke runs: no certified setup, so the header says open and uncertified
    assert second.startswith(
        "\n<p><strong>digits-convnet@1, target x, open division, uncertified (not ranked with "
        "the closed division): "
    )
    assert "<p>no rankable runs</p>" in second and second.rstrip().endswith("</section>")


# --------------------------------------------------------------------------- problems on stderr


def test_problem_report_line_names_the_file_once_and_says_skipped_once(tmp_path):
    for seed in range(3):  # the protocol's 3 seeds: no R-SEED-2 warning
        write_submission(tmp_path, make_submission(seed=seed))
    (tmp_path / "broken.json").symlink_to(tmp_path / "gone.json")
    bad = make_submission(seed=3)
    bad["pruning"]["flops_pruned"] = 2500
    bad_path = write_submission(tmp_path, bad)
    _, problems = load_submissions(tmp_path)
    lines = sorted(p.report_line() for p in problems)
    assert lines == [
        f"not ranked: {bad_path}: $.pruning.flops_pruned: flops_pruned is 2500 but 2 x "
        "macs_pruned is 5000; FLOPs = 2 x MACs",
        f"warning: {tmp_path / 'broken.json'}: $: skipped: broken symlink to "
        f"{tmp_path / 'gone.json'}",
    ]


def test_warnings_do_not_keep_a_file_out_of_the_ranking(tmp_path):
    write_submission(tmp_path, make_submission(protocol="my-protocol"))
    subs, problems = load_submissions(tmp_path)
    assert len(subs) == 1
    assert [p.report_line().split(": ")[0] for p in problems] == ["warning"]


def test_empty_results_folder_is_reported(tmp_path):
    subs, problems = load_submissions(tmp_path)
    assert subs == []
    assert [p.report_line() for p in problems] == [
        f"not ranked: {tmp_path}: $: no submission files found under {tmp_path}"
    ]


def test_plot_tables_writes_accuracy_vs_sparsity_per_certification(default_runs, tmp_path) -> None:
    from pruning_suite.report.tables import build_tables, load_submissions, plot_tables

    subs, _ = load_submissions(default_runs["out"])  # one seed each
    written = plot_tables(build_tables(subs, _one_seed_protocols()), tmp_path)
    assert sorted(p.name for p in written) == [
        "digits-convnet-v1-closed-S42.pdf",
        "digits-convnet-v1-closed-S42.png",
    ]
    assert written[0].read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- plugin formats


def _row_count(tables) -> str:
    return "".join(f"{t.protocol} {t.target}: {len(t.rows)} ranked\n" for t in tables)


@hookimpl
def _register_count() -> dict:
    return {"count": ReportFormat("count", "ranked rows per table", _row_count)}


def test_hook_register_report_formats(tmp_path, capsys, monkeypatch) -> None:
    """A format from an installed plugin is a `report --format` value; a near miss gets a hint."""
    from pruning_suite.cli.main import main
    from pruning_suite.contract.plugins import load_registry

    plugin = module_plugin(monkeypatch, "count_format", register_report_formats=_register_count)
    add_entry_points(monkeypatch, count_format=plugin)
    for seed in range(3):
        write_submission(tmp_path, make_submission(seed=seed))
    assert "count" in load_registry().report_formats
    assert main(["report", str(tmp_path), "--format", "count"]) == 0
    assert capsys.readouterr().out == "digits-convnet uniform-50: 1 ranked\n"
    assert main(["report", str(tmp_path), "--format", "cuont"]) == 2
    err = capsys.readouterr().err
    assert "unknown report format 'cuont'" in err and "did you mean 'count'" in err


def test_seeds_that_ran_other_method_code_are_other_rows_and_the_label_says_so():
    """Issue 14: a plugin edited without a version bump must not average with its old self."""
    subs = [
        Submission.model_validate(make_submission(seed=s, code_sha256=code))
        for s, code in ((0, "a" * 64), (1, "a" * 64), (2, "b" * 64))
    ]
    (table,) = build_tables(subs)
    assert table.rows == []  # neither has the protocol's 3 seeds: both listed apart, unranked
    assert sorted((r.label, r.seeds) for r in table.incomplete) == [
        ("l1norm v1.0 [code aaaaaaaa]", (0, 1)),
        ("l1norm v1.0 [code bbbbbbbb]", (2,)),
    ]
    (row,) = build_tables(subs[:2])[0].incomplete
    assert row.label == "l1norm v1.0"  # one code: nothing to tell apart
