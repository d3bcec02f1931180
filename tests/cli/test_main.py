"""The command line as a user types it: exit codes, messages, no tracebacks without --debug."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from pruning_suite.cli.main import main
from pruning_suite.errors import PruningSuiteError


def _edit(path, dst, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    dst.write_text(json.dumps(data))


def test_validate_accepts_what_run_wrote(default_runs, capsys) -> None:
    assert main(["validate", str(default_runs["out"])]) == 0
    assert "2 valid" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["final"].update(test_top1=150), "$.final.test_top1"),
        (lambda d: d["pruning"].update(sparsity=-0.1), "$.pruning.sparsity"),
        (lambda d: d.pop("seed"), "seed"),
    ],
)
def test_validate_rejects_edited_files_naming_the_field(
    default_runs, tmp_path, capsys, change, field
) -> None:
    bad = tmp_path / "edited.json"
    _edit(default_runs["l1norm"].path, bad, change)
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert field in out


def test_validate_json_output(default_runs, capsys) -> None:
    assert main(["validate", "--json", str(default_runs["l1norm"].path)]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_report_shows_l1norm_and_random_side_by_side(default_runs, capsys) -> None:
    assert main(["report", str(default_runs["out"])]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert any("l1norm" in line for line in table) and any("random" in line for line in table)
    assert "digits-convnet" in out and "uniform-50" in out
    l1 = default_runs["l1norm"].submission
    assert f"{l1.final.test_top1:.2f}" in out


def test_a_study_page_shows_its_command_without_jobs() -> None:
    from pruning_suite.cli.study import without_jobs

    command = "pruning-suite study scratch --jobs 4 --plugin l1norm --jobs=2 --report 'my docs'"
    assert without_jobs(command) == "pruning-suite study scratch --plugin l1norm --report 'my docs'"
    where = (
        "pruning-suite study scratch --executor submitit --executor-param timeout_min=60 "
        "--executor-param=slurm_partition=gpu --exec submitit --report docs"
    )
    assert without_jobs(where) == "pruning-suite study scratch --report docs"


def test_executor_params_without_submitit_are_refused(tmp_path, capsys) -> None:
    page = str(tmp_path / "page")
    command = [
        "study",
        "scratch",
        "--plugin",
        "l1norm",
        "--report",
        page,
        "--executor-param",
        "a=1",
    ]
    assert main(command) == 2
    assert "--executor-param is for --executor submitit or ray" in capsys.readouterr().err


def test_report_of_only_refused_files_fails(tmp_path, capsys) -> None:
    (tmp_path / "broken.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "No valid submissions" in captured.out
    assert "broken.json" in captured.err and "schema_version is missing" in captured.err


@pytest.mark.parametrize("fmt", ["latex", "html", "csv"])
def test_report_formats(default_runs, capsys, fmt) -> None:
    assert main(["report", str(default_runs["out"]), "--format", fmt]) == 0
    assert "l1norm" in capsys.readouterr().out


def test_unknown_plugin_is_a_short_error_without_traceback(tmp_path, capsys) -> None:
    assert main(["run", "--plugin", "l1nrom", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error: unknown plugin 'l1nrom'" in err
    assert "did you mean 'l1norm'" in err
    assert "Traceback" not in err


def test_an_error_is_one_line_whatever_the_name_in_it_holds(tmp_path, capsys) -> None:
    assert main(["run", "--plugin", "l1\nerror: forged\x1b[2J", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], err
    assert "\x1b" not in err


def test_error_lines_escape_what_a_message_holds(capsys) -> None:
    from pruning_suite.cli.main import _report

    _report(PruningSuiteError("bad file a\nerror: forged\x1b[2J", "fix\nit"))
    assert capsys.readouterr().err.splitlines() == [
        "error: bad file a\\nerror: forged\\u001b[2J",
        "hint: fix\\nit",
    ]


def test_debug_shows_the_traceback(tmp_path) -> None:
    from pruning_suite.errors import PluginError

    with pytest.raises(PluginError):
        main(["--debug", "run", "--plugin", "nope", "--out", str(tmp_path)])


def test_bad_config_json(tmp_path, capsys) -> None:
    assert main(["run", "--plugin", "l1norm", "--config", "{bad", "--out", str(tmp_path)]) == 2
    assert "--config is not valid JSON" in capsys.readouterr().err


def test_protocols_list_and_show(capsys) -> None:
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    assert "digits-convnet (default)" in out and "fashion-mnist-mlp7-linear" in out
    assert main(["protocols", "show", "fashion-mnist-mlp7-linear"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["retraining"]["lr_schedule"] == "0:0.01,30:0.001,60:0.0001"
    assert len(shown["content_hash"]) == 64
    assert main(["protocols", "show", "nope"]) == 2


def test_plugins_lists_name_version_distribution(capsys) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "l1norm" in out and "random" in out and "pruning-suite" in out


def test_console_script_help_does_not_import_torch() -> None:
    """`pruning-suite --help`, `validate`, `report`, `protocols` and `plugins` (which lists what
    every plugin registers, the suite's own architectures aside) start without importing torch."""
    code = "import sys; from pruning_suite.cli.main import main; main(['protocols']); main(['plugins']); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_console_script_is_installed() -> None:
    exe = shutil.which("pruning-suite") or shutil.which(
        "pruning-suite", path=str(__import__("pathlib").Path(sys.executable).parent)
    )
    assert exe, "the pruning-suite console script is not on PATH"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("pruning-suite ")


def test_prune_prints_widths_and_counts_without_training(capsys) -> None:
    assert main(["prune", "--plugin", "l1norm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(layer["name"], layer["before"], layer["after"]) for layer in result["layers"]] == [
        ("conv1", 16, 8),
        ("conv2", 32, 16),
        ("fc1", 64, 32),
    ]
    assert result["flops_pruned"] == 2 * result["macs_pruned"]
    assert result["speedup"] == pytest.approx(result["macs_dense"] / result["macs_pruned"])
    assert result["sparsity"] == pytest.approx(1 - result["params_pruned"] / result["params_dense"])


def test_prune_mlp7_linear_at_the_papers_80_percent(capsys) -> None:
    """Layers 0..5 keep 20 of 100 neurons; the output layer keeps its 10."""
    assert (
        main(["prune", "--plugin", "random", "--protocol", "fashion-mnist-mlp7-linear", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert [layer["after"] for layer in result["layers"]] == [20] * 6
    # 1024*20+20 + 5*(20*20+20) + 20*10+10
    assert result["params_pruned"] == 1024 * 20 + 20 + 5 * (20 * 20 + 20) + 20 * 10 + 10
    assert result["macs_pruned"] == 1024 * 20 + 5 * 20 * 20 + 20 * 10


def test_prune_table_output(capsys) -> None:
    assert main(["prune", "--plugin", "l1norm", "--target", "uniform-30"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "speedup" in out and "FLOPs (= 2 x MACs)" in out


def test_progress_in_a_log_file_is_one_line_per_epoch(tmp_path, capsys) -> None:
    """Where stderr is not a terminal, a live bar would be drawn only at the end (issue 14)."""
    args = ["run", "--plugin", "l1norm", "--protocol", "digits-convnet-s4", "--smoke"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " epoch " in line]
    phases = [line.split()[0] for line in lines]
    assert {"pruning", "retraining"} <= set(phases)  # base training only without a cached model
    assert all(
        re.search(r"epoch \d+/\d+  lr \S+  loss \d+\.\d{3}  val \d+\.\d{2}%", line)
        for line in lines
    )
    retraining = [line for line in lines if line.split()[0] == "retraining"]
    assert retraining[0].split()[2] == f"1/{len(retraining)}"


def test_progress_moves_within_a_long_epoch(monkeypatch, capsys) -> None:
    """Issue 13: a 2.5-minute epoch's bar must move; in a log, a line per LOG_EVERY_S seconds."""
    from pruning_suite.cli import progress
    from pruning_suite.engine.train import EpochStats

    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    with progress.ConsoleObserver() as observer:
        observer.phase_start("base", 3)
        observer.batches("base", 100, 400)
        observer.epoch_end("base", EpochStats(0, 0.1, 0.5, 90.0, 89.0))
        observer.batches("base", 200, 400)
        (task,) = observer.progress.tasks
        assert task.completed == 1.5  # the bar's time left is estimated mid-epoch
    err = capsys.readouterr().err
    assert "base epoch 1/3  batch 100/400" in err and "base epoch 2/3  batch 200/400" in err
