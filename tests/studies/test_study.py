"""Studies (issue 6): expansion into runs, resuming, verdicts; the scratch baseline's budget and
certification; OrthP in a run makes every JSV of a linear MLP 1 right after pruning."""

from __future__ import annotations

import statistics
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import pytest

from pruning_suite import hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.rules.setups import certify
from pruning_suite.run.runner import RunConfig, run, scratch_plan
from pruning_suite.studies import (
    Arm,
    LocalExecutor,
    Study,
    StudyResult,
    claims,
    claims_text,
    cross_recipe_arms,
    cross_recipe_verdict,
    extend_first_stage,
    lr_sweep_arms,
    planned_path,
    run_study,
    scratch_arms,
    scratch_claims,
)
from pruning_suite.validate import check_file, validate_file
from tests.entry_points import add_entry_points, module_plugin

DIGITS_OWN = "0:0.01,10:0.001"  # digits-convnet's retraining schedule


def test_extend_first_stage_moves_later_milestones() -> None:
    recipe = load_protocol("fashion-mnist-mlp7-linear").retraining  # 90 epochs
    assert extend_first_stage(recipe, "0:0.001,45:0.0001", 180) == ("0:0.001,225:0.0001", 270)


def test_lr_sweep_expands_schedules_orthp_and_extended_arms(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path)
    arms = lr_sweep_arms(base, [DIGITS_OWN, "0:0.001,10:0.0001"], [0, 1], extend=5, orthp="both")
    assert [arm.label for arm in arms] == [
        "LR 0.01",
        "LR 0.01 +OrthP",
        "LR 0.001",
        "LR 0.001 +OrthP",
        "LR 0.001 +5 epochs",
        "LR 0.001 +5 epochs +OrthP",
    ]
    own, _, small, _, longer, longer_orthp = arms
    assert [job.seed for job in own.jobs] == [0, 1]
    assert own.jobs[0].retraining_override is None  # the protocol's recipe: closed division
    assert small.jobs[0].retraining_override == {"lr_schedule": "0:0.001,10:0.0001"}
    assert longer.jobs[0].retraining_override == {"epochs": 25, "lr_schedule": "0:0.001,15:0.0001"}
    assert longer_orthp.jobs[1].orthp and not longer.jobs[1].orthp
    # every job lands on its own file
    paths = {planned_path(job) for arm in arms for job in arm.jobs}
    assert len(paths) == 12


def test_scratch_and_cross_recipe_arms(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path)
    arms = scratch_arms(base, [0])
    assert [arm.label for arm in arms] == [
        "l1norm (pruned, retrained)",
        "scratch SX-A",
        "scratch SX-B",
    ]
    assert arms[2].jobs[0].plugin == "scratch"
    assert arms[2].jobs[0].method_config == {"arch_from": "l1norm", "setup": "SX-B"}
    cross = cross_recipe_arms(base, ("l1norm", "random"), ((DIGITS_OWN, None), ("0:0.05", 10)), [0])
    assert [arm.label for arm in cross] == [
        "l1norm+FT_A",
        "l1norm+FT_B",
        "random+FT_A",
        "random+FT_B",
    ]
    assert cross[1].jobs[0].retraining_override == {"epochs": 10, "lr_schedule": "0:0.05"}
    assert cross[2].jobs[0].retraining_override is None


def _fake(top1s: dict[str, list[float]], lr: dict[str, float] | None = None) -> StudyResult:
    def sub(label: str, value: float) -> SimpleNamespace:
        rows = [SimpleNamespace(lr=(lr or {}).get(label, 0.01))]
        return SimpleNamespace(
            final=SimpleNamespace(test_top1=value), retraining=rows, trainability=None, smoke=False
        )

    return StudyResult(
        {label: [sub(label, v) for v in values] for label, values in top1s.items()}, 0, 0
    )


def test_cross_recipe_verdict_consistent_and_interaction() -> None:
    consistent = _fake({"A+FT_A": [90, 91], "A+FT_B": [89], "B+FT_A": [88], "B+FT_B": [88.5]})
    assert cross_recipe_verdict(consistent, ("A", "B")).startswith("consistent: A is better")
    flipped = _fake({"A+FT_A": [90], "A+FT_B": [87], "B+FT_A": [88], "B+FT_B": [88.5]})
    verdict = cross_recipe_verdict(flipped, ("A", "B"))
    assert verdict.startswith("interaction") and "FT_A: A - B = +2.00 pp" in verdict
    assert "FT_B: A - B = -1.50 pp" in verdict


def _sweep_run(
    lr: float, curve: list[float], ta: float | None = None, jsv: tuple[float, ...] = ()
) -> SimpleNamespace:
    """A run of a 4-epoch schedule ``0:lr,2:lr/10`` with its test top-1 curve, TA and JSVs
    (dense, right after pruning, end)."""
    rows = [
        SimpleNamespace(epoch=e, lr=lr if e < 2 else lr / 10, test_top1=v)
        for e, v in enumerate(curve)
    ]
    trainability = None
    if ta is not None:
        trainability = SimpleNamespace(
            ta_test=ta,
            jsv_dense=SimpleNamespace(mean=jsv[0]) if jsv else None,
            jsv=[SimpleNamespace(epoch=-1, mean=jsv[1]), SimpleNamespace(epoch=3, mean=jsv[2])]
            if jsv
            else [],
        )
    return SimpleNamespace(
        final=SimpleNamespace(test_top1=curve[-1]),
        retraining=rows,
        trainability=trainability,
        smoke=False,
    )


def test_claims_are_judged_from_the_runs_against_seed_noise() -> None:
    high = [
        _sweep_run(0.01, [80, 85, 90, 92.0], 82.5, (3.0, 0.01, 2.9)),
        _sweep_run(0.01, [81, 86, 90, 92.4], 83.5, (3.0, 0.01, 3.1)),
    ]
    low = [
        _sweep_run(0.001, [50, 60, 85, 90.0], 55.0, (3.0, 0.01, 2.5)),
        _sweep_run(0.001, [52, 61, 86, 90.2], 56.5, (3.0, 0.01, 2.7)),
    ]
    high_o = [
        _sweep_run(0.01, [88, 90, 91, 92.2], 89.0, (3.0, 1.0, 3.2)),
        _sweep_run(0.01, [88, 90, 91, 92.3], 89.0, (3.0, 1.0, 3.2)),
    ]
    low_o = [
        _sweep_run(0.001, [87, 89, 90, 91.9], 88.0, (3.0, 1.0, 3.0)),
        _sweep_run(0.001, [87, 89, 90, 92.0], 88.0, (3.0, 1.0, 3.0)),
    ]
    result = StudyResult(
        {"LR 0.01": high, "LR 0.001": low, "LR 0.01 +OrthP": high_o, "LR 0.001 +OrthP": low_o},
        0,
        0,
    )
    judged = {c.claim.split(" (")[0]: c for c in claims(result)}
    m1 = judged["a larger retraining LR wins within the same epochs"]
    gap = statistics.fmean([92.0, 92.4]) - statistics.fmean([90.0, 90.2])
    assert m1.verdict == "holds" and f"{gap:+.2f} pp" in m1.evidence
    faster = judged["the larger LR converges faster"]
    # epochs 0-1 (the first stage): (80+85 + 81+86)/4 vs (50+60 + 52+61)/4
    assert faster.verdict == "holds" and "epochs 0-1: LR 0.01 83.00 vs LR 0.001 55.75" in (
        faster.evidence
    )
    orthp_ta = judged["OrthP restores trainability"]
    assert orthp_ta.verdict == "holds" and "LR 0.001: 88.00 with OrthP vs 55.75 without" in (
        orthp_ta.evidence
    )
    narrows = judged["OrthP narrows the gap between the LRs"]
    assert narrows.verdict == "holds" and "+0.30 pp with OrthP, +2.10 pp without" in (
        narrows.evidence
    )
    jsv = judged["the mean JSV collapses after pruning and recovers in retraining"]
    assert jsv.verdict == "holds" and "right after pruning 0.01, after retraining 3" in jsv.evidence
    assert "with OrthP right after pruning 1.00." in jsv.evidence
    text = claims_text(result)
    assert text[0].startswith(
        "Measured on 4 arms, 2 seeds each. Holds here: a larger retraining LR wins within the "
        "same epochs (M1); the larger LR converges faster (M1's explanation); "
    )
    assert text[2].startswith("- A larger retraining LR wins within the same epochs (M1): holds. ")


def test_a_difference_within_seed_noise_is_not_a_win() -> None:
    high = [_sweep_run(0.01, [80, 85, 90, 83.1]), _sweep_run(0.01, [80, 85, 90, 83.5])]
    low = [_sweep_run(0.001, [50, 60, 85, 83.4]), _sweep_run(0.001, [50, 60, 85, 83.5])]
    high_o = [_sweep_run(0.01, [88, 90, 91, 84.5])] * 2
    low_o = [_sweep_run(0.001, [87, 89, 90, 84.4])] * 2
    result = StudyResult(
        {"LR 0.01": high, "LR 0.001": low, "LR 0.01 +OrthP": high_o, "LR 0.001 +OrthP": low_o},
        0,
        0,
    )
    judged = {c.claim.split(" (")[0]: c for c in claims(result)}
    m1 = judged["a larger retraining LR wins within the same epochs"]
    assert m1.verdict == "does not hold" and "-0.15 pp, within the seed std 0.28" in m1.evidence
    narrows = judged["OrthP narrows the gap between the LRs"]
    assert narrows.verdict == "cannot be judged" and "already tie" in narrows.evidence
    # no TA or JSV recorded: those claims are judged only from what the runs hold
    assert judged["OrthP restores trainability"].verdict == "cannot be judged"
    assert "the mean JSV collapses after pruning and recovers in retraining" not in judged
    reversed_runs = StudyResult(
        {"LR 0.01": [_sweep_run(0.01, [1, 1, 1, 80.0])] * 2, "LR 0.001": low}, 0, 0
    )
    m1 = claims(reversed_runs)[0]
    assert m1.verdict == "does not hold" and "reversed beyond the seed std" in m1.evidence


def test_cross_recipe_tie_within_seed_noise_is_no_winner() -> None:
    result = _fake(
        {
            "A+FT_A": [90.0, 91.0],
            "B+FT_A": [88.0, 88.2],
            "A+FT_B": [89.0, 89.6],
            "B+FT_B": [89.4, 89.0],
        }
    )
    verdict = cross_recipe_verdict(result, ("A", "B"))
    assert verdict.startswith("no consistent winner")
    assert "FT_A: A - B = +2.40 pp (seed std 0.71)" in verdict
    assert "FT_B: A - B = +0.10 pp (seed std 0.42)" in verdict


def test_scratch_claims_judge_m2_per_budget() -> None:
    def arm(values, epochs=None):
        return [
            SimpleNamespace(
                final=SimpleNamespace(test_top1=v),
                smoke=False,
                scratch=SimpleNamespace(epochs=epochs) if epochs else None,
            )
            for v in values
        ]

    result = StudyResult(
        {
            "l1norm (pruned, retrained)": arm([90.3, 90.1]),
            "scratch SX-A": arm([88.0, 88.4], 25),
            "scratch SX-B": arm([90.0, 90.3], 57),
        },
        0,
        0,
    )
    sx_a, sx_b = scratch_claims(result)
    assert sx_a.claim == "inheriting the base model's weights has no value at SX-A (M2)"
    assert sx_a.verdict == "does not hold"
    assert "scratch SX-A, 25 epochs 88.20 (+2.00 pp for pruning, seed std 0.28)" in sx_a.evidence
    assert sx_b.verdict == "holds" and "(+0.05 pp for pruning, seed std 0.21)" in sx_b.evidence


def test_claims_need_two_seeds_two_lrs_and_full_budget() -> None:
    one_seed = StudyResult(
        {"LR 0.01": [_sweep_run(0.01, [92.0])], "LR 0.001": [_sweep_run(0.001, [90.0])]}, 0, 0
    )
    assert claims(one_seed) == []
    assert claims_text(one_seed) == [
        "1 seed per arm: too few to judge a difference; run with --seeds 3."
    ]
    smoke = StudyResult({"LR 0.01": [SimpleNamespace(smoke=True)]}, 0, 0)
    assert claims_text(smoke)[0].startswith("Smoke runs (reduced budget): not a result")
    single_lr = StudyResult({"LR 0.01": [_sweep_run(0.01, [92.0])] * 2}, 0, 0)
    assert claims_text(single_lr)[0].startswith("This sweep has a single retraining LR")


def test_local_executor_runs_jobs_side_by_side_and_keeps_finished_runs(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path, smoke=True)
    jobs = [replace(base, seed=0), replace(base, seed=1)]
    finished: list[int] = []
    subs = LocalExecutor(workers=2).run(jobs, lambda index, _: finished.append(index))
    assert [s.seed for s in subs] == [0, 1] and sorted(finished) == [0, 1]
    for job, sub in zip(jobs, subs, strict=True):
        path = planned_path(job)
        assert path.stem == sub.run_id and check_file(path).ok
    survivor = replace(base, seed=2)
    with pytest.raises(PluginError, match="unknown plugin 'l1nrom'"):
        LocalExecutor(workers=2).run([survivor, replace(base, plugin="l1nrom")], lambda *_: None)
    assert check_file(planned_path(survivor)).ok  # the run already started finished
    with pytest.raises(ValueError, match="workers must be >= 1"):
        LocalExecutor(workers=0)


def test_run_study_resumes_from_the_files_on_disk(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path, smoke=True)
    arms = lr_sweep_arms(base, [DIGITS_OWN], [0])
    first = run_study(arms)
    assert (first.ran, first.skipped) == (1, 0)
    (sub,) = first.arms["LR 0.01"]
    assert planned_path(arms[0].jobs[0]).is_file()

    class NoRuns:
        def run(self, jobs, on_done):
            assert not jobs, "nothing is left to run"
            return []

    again = run_study(arms, NoRuns())
    assert (again.ran, again.skipped) == (0, 1)
    assert again.arms["LR 0.01"][0].run_id == sub.run_id

    path = planned_path(arms[0].jobs[0])
    path.write_text(path.read_text().replace('"seed": 0', '"seed": 7', 1))  # tampered
    lines: list[str] = []
    redone = run_study(arms, progress=lines.append)
    assert (redone.ran, redone.skipped) == (1, 0) and check_file(path).ok
    assert lines[0].startswith(f"redo  LR 0.01 seed 0: {path} is not valid (R-")


def test_scratch_plan_budgets_from_measured_flops() -> None:
    protocol = load_protocol("digits-convnet")  # K1 = 30 ("0:0.05,20:0.005"), K2 = 20
    sx_b = load_registry().method("scratch", {"setup": "SX-B"})
    info, recipe = scratch_plan(sx_b, protocol, flops_dense=2000, flops_pruned=1000)
    assert info["epochs"] == 30 * 2 + 20 and recipe.epochs == 80
    assert recipe.lr_schedule == "0:0.05,53:0.005"  # milestone 20 of 30 scaled to 80 epochs
    sx_a = load_registry().method("scratch", {"setup": "SX-A"})
    info, recipe = scratch_plan(sx_a, protocol, flops_dense=2000, flops_pruned=1000)
    assert info["epochs"] == 30 + 0 + 20 and recipe.lr_schedule == "0:0.05,33:0.005"


def test_scratch_run_is_certified_by_its_budget(tmp_path) -> None:
    result = run(
        RunConfig(plugin="scratch", out=tmp_path, smoke=True, method_config={"setup": "SX-B"})
    )
    sub = result.submission
    assert validate_file(result.path) == []
    assert sub.scratch is not None and sub.scratch.setup == "SX-B"
    assert sub.scratch.flops_pruned == sub.pruning.flops_pruned
    assert sub.certification.setup is None  # smoke runs are never certified
    # the same run, had it trained its whole budget, is certified SX-B; one epoch short is not
    protocol = load_protocol("digits-convnet")
    row = sub.retraining[-1]
    full = replace_rows(sub, [row] * sub.scratch.epochs)
    assert certify(full, protocol).setup == "SX-B"
    short = replace_rows(sub, [row] * (sub.scratch.epochs - 1))
    cert = certify(short, protocol)
    assert cert.setup is None and any("R-SX-1" in reason for reason in cert.unmet)


def test_a_full_budget_scratch_run_is_valid_with_its_own_recipe(tmp_path) -> None:
    """R-RETRAIN-4 holds a scratch run to its budget's recipe, not the protocol's retraining."""
    from pruning_suite.record.jsonio import read_json
    from pruning_suite.rules.scratch import scratch_recipe
    from tests.conftest_submissions import run_id_for, write_submission

    smoke = run(
        RunConfig(plugin="scratch", out=tmp_path, smoke=True, method_config={"setup": "SX-A"})
    )
    data = read_json(smoke.path)
    protocol = load_protocol("digits-convnet")
    epochs = data["scratch"]["epochs"]  # SX-A: K1 + K2 = 30 + 20
    recipe = scratch_recipe(protocol, epochs)
    assert (epochs, recipe.lr_schedule) == (50, "0:0.05,33:0.005")  # 20 * 50/30 = 33.3
    data["smoke"] = False
    data["retraining_recipe"] = recipe.model_dump(mode="json")
    lrs = [lr for _, lr in recipe.stages]
    data["retraining"] = [
        {**data["retraining"][-1], "epoch": e, "lr": lrs[0] if e < 33 else lrs[1]}
        for e in range(epochs)
    ]
    data["run_id"] = run_id_for(data)
    path = write_submission(tmp_path / "full", data)
    errors = [p for p in validate_file(path) if p.severity == "error"]
    assert [p.rule for p in errors if p.rule == "R-RETRAIN-4"] == []
    data["retraining_recipe"]["lr_schedule"] = "0:0.05,20:0.005"  # not its budget's schedule
    path = write_submission(tmp_path / "off", data)
    off = [p for p in validate_file(path) if p.rule == "R-RETRAIN-4"]
    assert len(off) == 1 and "differs from its scratch budget's '0:0.05,33:0.005'" in off[0].message


def replace_rows(sub, rows):
    rows = [row.model_copy(update={"epoch": i}) for i, row in enumerate(rows)]
    return sub.model_copy(update={"smoke": False, "rankable": True, "retraining": rows})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"arch_from": "magnitude"}, "needs a filter-granularity method, not 'magnitude'"),
        ({"arch_from": "l1nrom"}, "unknown plugin 'l1nrom'"),
    ],
)
def test_scratch_config_names_a_filter_method(config, message) -> None:
    with pytest.raises(PluginError, match=message):
        load_registry().method("scratch", config)


def test_a_scratch_run_refuses_a_retraining_override_before_any_work(tmp_path) -> None:
    config = RunConfig(plugin="scratch", out=tmp_path, retraining_epochs=5)
    with pytest.raises(PluginError, match="cannot take the retraining override"):
        run(config)
    assert not list(tmp_path.iterdir())


def test_scratch_cannot_take_its_architecture_from_itself(tmp_path) -> None:
    with pytest.raises(PluginError, match="itself"):
        run(
            RunConfig(
                plugin="scratch", out=tmp_path, smoke=True, method_config={"arch_from": "scratch"}
            )
        )


def _linear_mlp_protocol(tmp_path) -> Path:
    """digits-convnet's data and recipes with a deep linear MLP 64-32-24-10, pruned by half to 64-16-12-10 (widths never grow)."""
    text = (files("pruning_suite.protocol.files") / "digits-convnet.toml").read_text()
    text = text.replace('id = "digits-convnet"', 'id = "digits-mlp-linear"')
    text = text.replace(
        'prunable_layers = ["conv1", "conv2", "fc1"]', 'prunable_layers = ["layers.0", "layers.1"]'
    )
    text = text.replace(
        'name = "digits_convnet"',
        'name = "mlp"\nkwargs = { widths = [32, 24], activation = "none" }',
    )
    path = tmp_path / "digits-mlp-linear.toml"
    path.write_text(text)
    return path


def test_orthp_in_a_run_gives_every_jsv_one_for_a_linear_mlp(tmp_path) -> None:
    path = _linear_mlp_protocol(tmp_path)
    result = run(
        RunConfig(
            plugin="l1norm", protocol=str(path), out=tmp_path, smoke=True, orthp=True, jsv=True
        )
    )
    sub = result.submission
    assert sub.method.reinit == "orthp"
    after = sub.trainability.jsv[0]
    assert after.epoch == -1
    assert after.min == pytest.approx(1, abs=1e-5) and after.max == pytest.approx(1, abs=1e-5)
    dense = sub.trainability.jsv_dense
    assert dense.max > 1.01 or dense.min < 0.99  # before OrthP the JSVs were not all 1
    without = run(
        RunConfig(plugin="l1norm", protocol=str(path), out=tmp_path, smoke=True, jsv=True)
    )
    assert without.submission.run_id != sub.run_id  # OrthP is part of the run id
    assert validate_file(result.path, [load_protocol(str(path))]) == []


def _require_fmnist() -> None:
    import os

    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        if os.environ.get("PRUNING_SUITE_REQUIRE_FMNIST") == "1":
            pytest.fail("Fashion-MNIST is required here: apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")


@pytest.mark.parametrize(
    ("study", "args", "arms"),
    [
        (
            "lr-sweep",
            ["--plugin", "l1norm", "--orthp", "both"],
            ["LR 0.01", "LR 0.01 +OrthP", "LR 0.001", "LR 0.001 +OrthP"],
        ),
        (
            "scratch",
            ["--plugin", "l1norm"],
            ["l1norm (pruned, retrained)", "scratch SX-A", "scratch SX-B"],
        ),
        (
            "cross-recipe",
            [
                "--plugins",
                "l1norm,random",
                "--recipe-a",
                "0:0.01,30:0.001,60:0.0001",
                "--recipe-b",
                "0:0.001,45:0.0001",
            ],
            ["l1norm+FT_A", "l1norm+FT_B", "random+FT_A", "random+FT_B"],
        ),
    ],
)
def test_study_commands_run_end_to_end_on_fashion_mnist(
    tmp_path, capsys, study, args, arms
) -> None:
    """Each study command, smoke budget, one seed, on the real Fashion-MNIST MLP-7-Linear protocol."""
    _require_fmnist()
    from pruning_suite.cli.main import main

    report = tmp_path / "report"
    argv = ["study", study, "--protocol", "fashion-mnist-mlp7-linear", "--seeds", "1", "--smoke"]
    argv += ["--out", str(tmp_path / "subs"), "--report", str(report), *args]
    assert main(argv) == 0
    page = (report / "README.md").read_text()
    for arm in arms:
        assert f"| {arm} " in page, arm
    out = capsys.readouterr().out
    assert f"{len(arms)} runs done, 0 found" in out
    assert "**Smoke runs**" in page and "not a result" in page
    if study == "cross-recipe":
        assert "Verdict: " not in page  # smoke runs get no verdict
        assert "consistent" not in out and "interaction" not in out
    if study == "lr-sweep":
        assert (report / "accuracy-vs-epoch.png").is_file() and (
            report / "jsv-vs-epoch.pdf"
        ).is_file()
    assert main(argv) == 0  # resumes: every run is found on disk
    assert f"0 runs done, {len(arms)} found" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "0"], "--seeds 0"),
        (["--jobs", "0"], "--jobs 0"),
        (["--schedule", "garbage"], "bad LR schedule"),
        (["--extend", "-5"], "--extend -5"),
    ],
)
def test_a_bad_study_is_refused_before_any_run(tmp_path, capsys, extra, message) -> None:
    from pruning_suite.cli.main import main

    argv = ["study", "lr-sweep", "--plugin", "l1norm", "--smoke", "--out", str(tmp_path / "s")]
    assert main([*argv, "--report", str(tmp_path / "r"), *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_a_study_never_overwrites_a_readme_it_did_not_write(tmp_path, capsys) -> None:
    from pruning_suite.cli.main import main

    (tmp_path / "README.md").write_text("# my notes\n")
    argv = ["study", "scratch", "--plugin", "l1norm", "--smoke", "--out", str(tmp_path / "s")]
    assert main([*argv, "--report", str(tmp_path)]) != 0
    assert "which no scratch study wrote" in capsys.readouterr().err
    assert (tmp_path / "README.md").read_text() == "# my notes\n"
    assert not (tmp_path / "s").exists()
    other = tmp_path / "cross"  # another study's page is not this study's either
    other.mkdir()
    (other / "README.md").write_text("# cross-recipe on digits-convnet@1, target uniform-50\n")
    assert main([*argv, "--report", str(other)]) != 0
    assert "which no scratch study wrote" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "lr-sweep",
                "--plugin",
                "l1norm",
                "--schedule",
                "0:0.01,10:1e-3",
                "--schedule",
                "0:0.01,10:0.001",
            ],
            "given more than once",
        ),
        (
            [
                "cross-recipe",
                "--plugins",
                "l1norm,l1norm",
                "--recipe-a",
                "0:0.01",
                "--recipe-b",
                "0:0.001",
            ],
            "names 'l1norm' twice",
        ),
        (
            [
                "cross-recipe",
                "--plugins",
                "l1norm,random",
                "--recipe-a",
                "0:0.01,10:0.001",
                "--recipe-b",
                "0:0.01,10:1e-3",
            ],
            "recipe A and recipe B are the same",
        ),
        (["scratch", "--plugin", "scratch"], "cannot take its architecture from itself"),
        (
            [
                "lr-sweep",
                "--plugin",
                "l1norm",
                "--schedule",
                "0:0.01",
                "--schedule",
                "0:0.01,50:0.001",
            ],
            "has a stage at epoch 50, but retraining runs 20 epochs",
        ),
        (
            [
                "cross-recipe",
                "--plugins",
                "l1norm,magnitude",
                "--recipe-a",
                "0:0.01",
                "--recipe-b",
                "0:0.001",
            ],
            "magnitude",
        ),
        (
            [
                "cross-recipe",
                "--plugins",
                "scratch,l1norm",
                "--recipe-a",
                "0:0.01",
                "--recipe-b",
                "0:0.001",
            ],
            "cannot take the retraining override",
        ),
    ],
)
def test_a_study_that_cannot_run_is_refused_before_any_run(tmp_path, capsys, argv, message):
    from pruning_suite.cli.main import main

    out = tmp_path / "s"
    full = ["study", *argv, "--smoke", "--seeds", "1", "--out", str(out)]
    assert main([*full, "--report", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not list(out.rglob("*.json"))
    assert not (tmp_path / "r").exists()  # a refused study leaves no report folder


def test_a_run_refuses_an_lr_schedule_of_its_own_that_outlasts_retraining(tmp_path) -> None:
    from pruning_suite.errors import ProtocolError

    config = RunConfig(plugin="l1norm", out=tmp_path, retraining_lr_schedule="0:0.01,50:0.001")
    with pytest.raises(ProtocolError, match="stage at epoch 50, but retraining runs 20 epochs"):
        run(config)
    assert not list(tmp_path.rglob("*.json"))


def test_two_schedules_from_one_lr_get_distinct_labels() -> None:
    base = RunConfig(plugin="l1norm", smoke=True)
    arms = lr_sweep_arms(base, ["0:0.01,10:0.001", "0:0.01,5:0.001"], [0])
    assert [arm.label for arm in arms] == ["LR 0:0.01,10:0.001", "LR 0:0.01,5:0.001"]
    (own,) = lr_sweep_arms(base, ["0:0.01,10:1e-3"], [0])  # digits-convnet's own, spelt otherwise
    assert own.label == "LR 0.01" and own.jobs[0].retraining_override is None


def test_a_changed_protocol_does_not_reuse_old_runs(tmp_path, capsys) -> None:
    from pruning_suite.cli.main import main

    own = tmp_path / "mine.toml"
    text = files("pruning_suite.protocol.files").joinpath("digits-convnet.toml").read_text()
    own.write_text(text.replace('id = "digits-convnet"', 'id = "my-digits"'))
    argv = ["study", "scratch", "--plugin", "l1norm", "--protocol", str(own), "--smoke"]
    argv += ["--seeds", "1", "--out", str(tmp_path / "s"), "--report", str(tmp_path / "r")]
    assert main(argv) == 0
    capsys.readouterr()
    own.write_text(own.read_text().replace("weight_decay = 5e-4", "weight_decay = 1e-4", 1))
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "ran under another content of protocol my-digits@1" in err
    assert "needs a new version" in err


def test_a_report_path_that_is_a_file_is_refused_before_any_run(tmp_path, capsys) -> None:
    from pruning_suite.cli.main import main

    (tmp_path / "r").write_text("")
    argv = ["study", "scratch", "--plugin", "l1norm", "--smoke", "--out", str(tmp_path / "s")]
    assert main([*argv, "--report", str(tmp_path / "r")]) != 0
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


class _OneArm(Study):
    """A tiny study a plugin could ship: one method under the protocol's own recipe. It is the
    documented minimum (``arms`` and names); ``--plugin`` comes with every such study."""

    name = "one-arm"
    help = "one method under the protocol's recipe"
    intro = "One method under the protocol's own retraining recipe."

    def arms(self, args, base, protocol, seeds) -> list[Arm]:
        return [Arm(f"{args.plugin} as is", tuple(replace(base, seed=s) for s in seeds))]

    def verdicts(self, result, args) -> list[str]:
        return [f"{len(result.arms)} arm: nothing to compare."]


@hookimpl
def _register_one_arm() -> dict:
    return {"one-arm": _OneArm()}


def test_hook_register_studies(tmp_path, capsys, monkeypatch) -> None:
    """A study from an installed plugin is a `pruning-suite study` subcommand that runs and pages."""
    from pruning_suite.cli.main import main

    plugin = module_plugin(monkeypatch, "one_arm_study", register_studies=_register_one_arm)
    add_entry_points(monkeypatch, one_arm_study=plugin)
    assert "one-arm" in load_registry().studies
    assert main(["study"]) == 0
    assert "one-arm" in capsys.readouterr().out
    report = tmp_path / "report"
    argv = ["study", "one-arm", "--plugin", "l1norm", "--smoke", "--seeds", "1"]
    argv += ["--out", str(tmp_path / "subs"), "--report", str(report)]
    assert main(argv) == 0
    assert "1 runs done, 0 found" in capsys.readouterr().out
    page = (report / "README.md").read_text()
    assert page.startswith("# one-arm on digits-convnet@1, target uniform-50\n")
    assert "| l1norm as is " in page and "1 arm: nothing to compare." in page
    assert (report / "accuracy-vs-epoch.png").is_file()
    assert main(argv) == 0  # resumes from the file on disk
    assert "0 runs done, 1 found" in capsys.readouterr().out
