"""Bounds on what a protocol or the CLI may ask for (issue 14: 10**26 epochs trained forever)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pruning_suite.cli.main import main
from pruning_suite.protocol.schedule import MAX_EPOCHS, parse_schedule
from pruning_suite.protocol.spec import PruningBudget, TrainRecipe


@pytest.mark.parametrize(
    "fields",
    [
        {"epochs": 2**63 - 1},
        {"epochs": 10**26},
        {"batch_size": 2**63 - 1},
        {"lr_schedule": "0:0.1,100000000000000000000000:0.01"},
    ],
)
def test_absurd_recipes_are_refused(fields) -> None:
    recipe = {"epochs": 10, "batch_size": 64, "lr_schedule": "0:0.1", **fields}
    with pytest.raises(ValidationError):
        TrainRecipe(**recipe)


def test_largest_allowed_values_still_parse() -> None:
    assert TrainRecipe(epochs=MAX_EPOCHS, batch_size=1 << 20, lr_schedule="0:0.1").epochs == 100_000
    assert parse_schedule(f"0:0.1,{MAX_EPOCHS}:0.01")[-1] == (100_000, 0.01)
    with pytest.raises(ValueError, match=r"the epoch must lie in \[0, 100,000\]"):
        parse_schedule(f"0:0.1,{MAX_EPOCHS + 1}:0.01")


def test_pruning_budget_needs_a_schedule_to_train() -> None:
    with pytest.raises(ValidationError, match="needs an lr_schedule"):
        PruningBudget(epochs=3)
    assert PruningBudget(epochs=3, lr_schedule="0:0.01").calibration_samples == 2048


@pytest.mark.parametrize("flags", [["--seeds", str(10**12)], ["--jobs", "100000"]])
def test_study_refuses_absurd_seed_and_job_counts(flags, tmp_path, capsys) -> None:
    report = ["--report", str(tmp_path / "page")]
    code = main(
        ["study", "lr-sweep", "--plugin", "l1norm", "--out", str(tmp_path), *report, *flags]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert flags[0] in err and "between 1 and" in err
    assert not list(tmp_path.rglob("*.json"))


def test_an_input_shape_beyond_4096_is_refused() -> None:
    from pruning_suite.protocol.catalogue import shipped_protocol
    from pruning_suite.protocol.spec import DatasetSpec

    spec = shipped_protocol("digits-convnet", 1).dataset.model_dump()
    with pytest.raises(ValidationError, match=r"each in \[1, 4096\]"):
        DatasetSpec(**{**spec, "input_shape": (1, 100_000, 100_000)})
    assert DatasetSpec(**{**spec, "input_shape": (1, 4096, 4096)}).input_shape == (1, 4096, 4096)
