"""validate: reading untrusted JSON, schema and model errors with paths, consistency, folders."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pruning_suite.errors import OutputError, SubmissionError
from pruning_suite.protocol.catalogue import shipped_protocol
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.record.identity import RunIdentity, run_id
from pruning_suite.record.jsonio import json_path, read_json, write_json_atomic
from pruning_suite.record.submission import Submission
from pruning_suite.rules import RULESET_VERSION, load_rules
from pruning_suite.validate import (
    MAX_PROBLEMS_PER_FILE,
    format_problems,
    has_errors,
    results_to_json,
    validate_file,
    validate_paths,
)
from tests.conftest_submissions import certified, make_submission, run_id_for, write_submission


def _write_text(tmp_path, text, name="sub.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _one_problem(path):
    """Validate ``path``, expect exactly one one-line problem, return it."""
    problems = validate_file(path)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert "\n" not in problem.message
    assert problem.severity == "error"
    return problem


def _problems_of(tmp_path, data, name=None):
    return validate_file(write_submission(tmp_path, data, name))


def _rules(problems):
    return [(p.rule, p.severity) for p in problems]


def _errors(problems):
    return [p for p in problems if p.severity == "error"]


def _but_seed_count(problems):
    """``problems`` without R-SEED-2 (a tree holding fewer than the protocol's 3 seeds)."""
    return [p for p in problems if p.rule != "R-SEED-2"]


# --------------------------------------------------------------------------- valid


def test_valid_submission_has_no_problems(tmp_path):
    assert _problems_of(tmp_path, make_submission()) == []


def test_ints_for_float_fields_are_valid(tmp_path):
    data = make_submission(top1=90, dense_top1=95)
    data["pruning"]["speedup"] = 2
    assert _problems_of(tmp_path, data) == []


def test_valid_file_named_otherwise_is_valid(tmp_path):
    assert _problems_of(tmp_path, make_submission(), name="my-run.json") == []


# --------------------------------------------------------------------------- schema errors


def test_accuracy_above_100_is_reported_at_its_path(tmp_path):
    data = make_submission()
    data["final"]["test_top1"] = 150
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.final.test_top1"
    assert "150" in problem.message and "100" in problem.message


def test_negative_sparsity_is_reported(tmp_path):
    data = make_submission()
    data["pruning"]["sparsity"] = -0.1
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.pruning.sparsity"
    assert "-0.1" in problem.message


def test_missing_required_key_is_named(tmp_path):
    data = make_submission()
    del data["seed"]
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.seed"
    assert "'seed'" in problem.message and "missing" in problem.message


@pytest.mark.parametrize("seed", ["3", 3.5])
def test_non_integer_seed_is_one_problem(tmp_path, seed):
    data = make_submission()
    data["seed"] = seed
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.seed"
    assert problem.message.startswith("expected integer")


def test_float_valued_integer_seed_is_refused_by_the_strict_model(tmp_path):
    data = make_submission()
    data["seed"] = 3.0  # JSON Schema calls 3.0 an integer; the strict model does not
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.seed"
    assert "integer" in problem.message


def test_unknown_key_is_reported_at_its_path(tmp_path):
    data = make_submission()
    data["final"]["best_top1"] = 99.0
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.final.best_top1"
    assert "unknown property" in problem.message


def test_all_schema_errors_are_reported_sorted_by_path(tmp_path):
    data = make_submission()
    data["retraining"][2]["lr"] = 0
    data["final"]["test_top1"] = 150
    data["pruning"]["layers"][1]["after"] = 0
    del data["smoke"]
    wheres = [p.where for p in _problems_of(tmp_path, data)]
    assert wheres == [
        "$.final.test_top1",
        "$.pruning.layers[1].after",
        "$.retraining[2].lr",
        "$.smoke",
    ]


def test_indices_sort_numerically(tmp_path):
    data = make_submission()
    data["retraining"] = [dict(data["retraining"][0], epoch=i, lr=0) for i in range(12)]
    wheres = [p.where for p in _problems_of(tmp_path, data)]
    assert wheres == [f"$.retraining[{i}].lr" for i in range(12)]


def test_problems_per_file_are_capped(tmp_path):
    data = make_submission()
    data["retraining"] = [dict(data["retraining"][0], epoch=i, lr=0) for i in range(150)]
    problems = _problems_of(tmp_path, data)
    assert len(problems) == MAX_PROBLEMS_PER_FILE + 1
    assert problems[-1].message == f"{150 - MAX_PROBLEMS_PER_FILE} more problems not shown"


def test_huge_wrong_value_gives_a_short_message(tmp_path):
    data = make_submission()
    data["pruning"] = ["x" * 1000] * 1000
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.pruning"
    assert len(problem.message) < 120


# --------------------------------------------------------------------------- schema_version


@pytest.mark.parametrize(
    ("version", "shown"), [(99, "99"), ("1", '"1"'), (True, "true"), (None, "null")]
)
def test_unsupported_schema_version_is_one_problem(tmp_path, version, shown):
    data = make_submission()
    data["schema_version"] = version
    data["final"]["test_top1"] = 150  # not reported: the version decides how to read the rest
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.schema_version"
    assert problem.message == f"schema_version {shown} is not supported; supported: 1"


def test_missing_schema_version(tmp_path):
    data = make_submission()
    del data["schema_version"]
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.message == "schema_version is missing; supported: 1"


def test_top_level_array_is_one_problem(tmp_path):
    problem = _one_problem(_write_text(tmp_path, "[1, 2]"))
    assert problem.where == "$"
    assert problem.message == "a submission is a JSON object, not array"


# --------------------------------------------------------------------------- untrusted JSON


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_one_problem(tmp_path, token):
    text = json.dumps(make_submission(), indent=2).replace(
        '"test_top1": 90.0', f'"test_top1": {token}', 1
    )
    problem = _one_problem(_write_text(tmp_path, text))
    assert problem.where == "$"
    line = text[: text.index(token)].count("\n") + 1
    assert problem.message.startswith(f"{token} at line {line} column ")
    assert "is not valid JSON: numbers must be finite" in problem.message


def test_number_overflowing_to_infinity_is_refused(tmp_path):
    problem = _one_problem(_write_text(tmp_path, '{"a": 1e400}'))
    assert "overflows to infinity" in problem.message


def test_nan_inside_a_string_is_fine(tmp_path):
    assert read_json(_write_text(tmp_path, '{"a": "NaN [[[ Infinity"}')) == {
        "a": "NaN [[[ Infinity"
    }


def test_duplicate_key_is_one_problem(tmp_path):
    problem = _one_problem(_write_text(tmp_path, '{"schema_version": 1, "seed": 1, "seed": 2}'))
    assert problem.message.endswith('duplicate key "seed" in an object')


def test_file_over_the_size_cap_is_refused_without_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.json"
    path.touch()
    os.truncate(path, 200 * 2**20)  # sparse: no 200 MB written
    opened: list[object] = []
    real_open = Path.open

    def recording_open(self, *args, **kwargs):
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", recording_open)
    problem = _one_problem(path)
    assert path not in opened  # refused from its size alone, never opened
    assert problem.message == "200.0 MiB, over the 16.0 MiB limit of a JSON file"


def test_deep_nesting_is_refused_before_parsing(tmp_path):
    problem = _one_problem(_write_text(tmp_path, '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}"))
    assert "nested deeper than 64 levels" in problem.message
    assert "line 1 column 70" in problem.message  # the 65th bracket: '{' at 1, '[' from column 7


def test_depth_limit_is_inclusive(tmp_path):
    assert read_json(_write_text(tmp_path, "[" * 64 + "]" * 64)) is not None
    with pytest.raises(SubmissionError, match="deeper than 64"):
        read_json(_write_text(tmp_path, "[" * 65 + "]" * 65))


def test_brackets_inside_strings_do_not_count(tmp_path):
    text = json.dumps({"a": "[" * 100 + '\\"' + "{" * 100})
    assert read_json(_write_text(tmp_path, text)) == json.loads(text)


def test_invalid_utf8_is_one_problem(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{\n "a": "\xff"}')
    problem = _one_problem(path)
    assert "invalid UTF-8 at line 2 column 8" in problem.message


def test_byte_order_mark_is_refused(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert "byte-order mark" in _one_problem(path).message


@pytest.mark.parametrize(
    ("text", "where"), [('{\n  "a": 1,\n}', "line 3 column 1"), ("", "line 1 column 1")]
)
def test_syntax_error_has_line_and_column(tmp_path, text, where):
    problem = _one_problem(_write_text(tmp_path, text))
    assert f"invalid JSON at {where}" in problem.message


def test_integer_with_too_many_digits_is_one_problem(tmp_path):
    problem = _one_problem(_write_text(tmp_path, '{"a": ' + "1" * 5000 + "}"))
    assert "cannot parse JSON" in problem.message


def test_missing_file_and_folder_as_file(tmp_path):
    assert _one_problem(tmp_path / "nope.json").message == "cannot read: No such file or directory"
    assert "not a regular file" in _one_problem(tmp_path).message


def test_read_json_errors_carry_a_hint(tmp_path):
    with pytest.raises(SubmissionError) as info:
        read_json(_write_text(tmp_path, "{"))
    assert info.value.hint


# --------------------------------------------------------------------------- consistency checks


def _set(path, value):
    def mutate(data):
        *parents, last = path
        target = data
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (_set(("pruning", "flops_pruned"), 5001), "$.pruning.flops_pruned"),
        (_set(("pruning", "flops_dense"), 5000), "$.pruning.flops_dense"),
        # within the target tolerance (2% / 0.01), so only the recomputation fails
        (_set(("pruning", "speedup"), 2.01), "$.pruning.speedup"),
        (_set(("pruning", "sparsity"), 0.405), "$.pruning.sparsity"),
        (_set(("base_model", "params"), 999), "$.base_model.params"),
        (
            _set(("pruning", "layers", 1, "achieved_ratio"), 0.4),
            "$.pruning.layers[1].achieved_ratio",
        ),
        # another count's accuracy, its count edited alike: only the last epoch disagrees
        (lambda d: d["final"].update(test_top1=92.5, test_correct=333), "$.final.test_top1"),
        (lambda d: d["final"].update(val_top1=90.0, val_correct=162), "$.final.val_top1"),
        (_set(("final", "delta_top1"), 1.5), "$.final.delta_top1"),
        (_set(("retraining", 1, "epoch"), 5), "$.retraining[1].epoch"),
        (_set(("rankable",), False), "$.rankable"),
    ],
)
def test_consistency_mismatch_is_reported_at_its_path(tmp_path, mutate, where):
    data = make_submission()
    mutate(data)
    if where == "$.final.test_top1":
        data["final"]["delta_top1"] = 92.5 - 92.5  # keep the delta consistent
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == where


def test_flops_mismatch_message_names_both_numbers(tmp_path):
    data = make_submission()
    data["pruning"]["flops_pruned"] = 2500  # FLOPs stored under the MACs number
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.message == "flops_pruned is 2500 but 2 x macs_pruned is 5000; FLOPs = 2 x MACs"


def test_tolerances(tmp_path):
    data = make_submission()
    data["pruning"]["speedup"] = 2.0 * (1 + 5e-7)
    data["pruning"]["sparsity"] = 0.4 + 5e-10
    data["final"]["delta_top1"] = -2.5 + 5e-10
    assert _problems_of(tmp_path, data) == []


def test_run_id_must_match_a_run_id_shaped_file_name(tmp_path):
    data = make_submission()
    problem = _one_problem(write_submission(tmp_path, data, name="0123456789ab.json"))
    assert problem.where == "$.run_id"
    assert "0123456789ab.json" in problem.message


def test_registered_checks_are_named_documented_functions():
    checks = [rule.check for _, rule in load_rules().items() if rule.check is not None]
    names = [check.__name__ for check in checks]
    assert len(set(names)) == len(names) >= 30
    assert all(
        name.startswith("check_") and check.__doc__
        for name, check in zip(names, checks, strict=True)
    )


# --------------------------------------------------------------------------- folders


def test_folder_is_searched_recursively_and_duplicate_run_ids_reported(tmp_path):
    data = make_submission()
    first = write_submission(tmp_path / "p" / "l1norm", data)
    copy = write_submission(tmp_path / "p" / "other", data, name="copy.json")
    other = write_submission(tmp_path / "p" / "l1norm", make_submission(seed=1))
    (tmp_path / "p" / "notes.txt").write_text("not json")
    results = validate_paths([tmp_path])
    assert sorted(results) == sorted([first, copy, other])
    # seeds 0, 0, 1: a repeated seed (R-SEED-1) and a duplicate run id (R-ID-3); 2 of 3 seeds
    assert _rules(results[other]) == [("R-SEED-2", "warning")]
    assert "2 of 3 required seeds" in results[other][0].message
    for path, twin in ((first, copy), (copy, first)):
        assert [(p.rule, p.where) for p in _errors(results[path])] == [
            ("R-SEED-1", "$.seed"),
            ("R-ID-3", "$.run_id"),
            ("R-EVID-1", "$.evidence.weights_sha256"),  # the same weights: a copy
        ]
        assert str(twin) in results[path][-1].message


def test_symlink_out_of_the_tree_is_skipped_not_followed(tmp_path):
    outside = tmp_path / "outside"
    bad = make_submission()
    bad["final"]["test_top1"] = 150
    target = write_submission(outside, bad)
    root = tmp_path / "root"
    write_submission(root, make_submission())
    (root / "link.json").symlink_to(target)
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    results = validate_paths([root])
    assert not has_errors(results)
    skipped = {path.name: ps for path, ps in results.items() if _but_seed_count(ps)}
    assert sorted(skipped) == ["link.json", "linkdir"]
    assert all(
        p.severity == "warning" and "outside" in p.message for ps in skipped.values() for p in ps
    )


def test_symlink_inside_the_tree_is_checked_once(tmp_path):
    real = write_submission(tmp_path / "a", make_submission())
    (tmp_path / "alias.json").symlink_to(real)
    results = validate_paths([tmp_path])
    assert list(results) == [real]  # no duplicate run id from reading the same file twice
    assert _rules(results[real]) == [("R-SEED-2", "warning")]  # 1 of 3 seeds: read once


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a submission")
    results = validate_paths([tmp_path / "empty", tmp_path / "missing.json"])
    (problem,) = results[tmp_path / "empty"]
    assert (problem.severity, problem.where) == ("error", "$")
    assert problem.message == f"no submission files found under {tmp_path / 'empty'}"
    assert results[tmp_path / "missing.json"][0].severity == "error"
    assert has_errors(validate_paths([tmp_path / "empty"]))  # so `validate` exits 1
    summary = format_problems(validate_paths([tmp_path / "empty"])).splitlines()[-1]
    assert summary == "0 files checked: 0 valid, 0 invalid (1 error, 0 warnings)"


def test_folder_with_only_links_out_of_it_has_no_submission_files(tmp_path):
    target = write_submission(tmp_path / "outside", make_submission())
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link.json").symlink_to(target)
    results = validate_paths([tmp_path / "root"])
    assert [p.message for p in results[tmp_path / "root"]] == [
        f"no submission files found under {tmp_path / 'root'}"
    ]
    assert has_errors(results)


@pytest.mark.parametrize("empty", ["", "  "])
def test_empty_path_is_an_error_not_the_current_folder(tmp_path, monkeypatch, empty):
    write_submission(tmp_path, make_submission())  # would be found if "" meant "."
    monkeypatch.chdir(tmp_path)
    results = validate_paths([empty])
    ((path, problems),) = results.items()
    assert [(p.severity, p.where) for p in problems] == [("error", "$")]
    assert problems[0].message.startswith("the path is empty")
    assert format_problems(results).splitlines()[-1].startswith("0 files checked")


def test_format_problems_and_json(tmp_path):
    good = write_submission(tmp_path, make_submission())
    data = make_submission(seed=1)
    data["final"]["test_top1"] = 150
    bad = write_submission(tmp_path, data)
    results = validate_paths([good, bad])
    text = format_problems(results)
    assert (
        f"{bad}: $.final.test_top1: error [R-SCHEMA-1]: 150 is greater than the maximum 100" in text
    )
    # one valid seed of the protocol's three: an R-SEED-2 warning on the valid file; the file
    # that fails the schema has no ranking row (rule set 2: rows are keyed by ranking_key, which
    # needs a model-valid submission), so it carries only its own error
    assert f"{good}: $.seed: warning [R-SEED-2]: 1 of 3 required seeds" in text
    assert [p.rule for p in results[bad]] == ["R-SCHEMA-1"]
    assert text.splitlines()[-1] == "2 files checked: 1 valid, 1 invalid (1 error, 1 warning)"
    out = results_to_json(results)
    assert out["valid"] is False
    assert [f["valid"] for f in out["files"]] == [True, False]
    assert out["files"][1]["problems"][0]["where"] == "$.final.test_top1"
    assert [p["rule"] for p in out["files"][0]["problems"]] == ["R-SEED-2"]
    json.dumps(out)
    assert has_errors(results)
    assert (
        format_problems(validate_paths([good])).splitlines()[-1]
        == "1 file checked: 1 valid, 0 invalid (0 errors, 1 warning)"
    )


def test_json_path():
    assert json_path([]) == "$"
    assert json_path(["retraining", 3, "lr"]) == "$.retraining[3].lr"
    assert json_path(["target", "layer_ratios", "conv*"]) == '$.target.layer_ratios["conv*"]'


# --------------------------------------------------------------------------- atomic writes


def test_write_json_atomic_round_trips_and_leaves_no_temp(tmp_path):
    path = tmp_path / "new" / "folder" / "out.json"
    data = {"b": 1, "a": [1.5, "é"]}
    write_json_atomic(path, data)
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    assert list(path.parent.iterdir()) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_json_atomic_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(OutputError, match="not plain JSON"):
        write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_write_json_atomic_unwritable_folder_says_which_and_how(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError) as info:
        write_json_atomic(blocker / "sub" / "out.json", {})
    assert str(blocker / "sub") in info.value.message
    assert "--out" in info.value.hint


def test_validate_and_report_do_not_import_torch():
    code = (
        "import sys, pruning_suite.validate, pruning_suite.rules, pruning_suite.report.tables, "
        "pruning_suite.record.schema; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"method": {"name": "a\\ud800b"}}', "the string at $.method.name"),
        ('{"a": [1, "\\udfff"]}', "the string at $.a[1]"),
        ('{"a": {"k\\ud800": 1}}', "a key of the object at $.a"),
        ('"\\ud800"', "the string at $"),
    ],
)
def test_lone_surrogate_is_refused_with_one_line(tmp_path, text, where):
    path = _write_text(tmp_path, text)
    with pytest.raises(SubmissionError) as info:
        read_json(path)
    assert f"{where} contains the lone surrogate \\u" in info.value.message
    assert "\n" not in info.value.message and info.value.hint
    problem = _one_problem(path)  # validate reports it instead of raising UnicodeEncodeError
    problem.format().encode("utf-8")


def test_lone_surrogate_in_a_submission_does_not_crash_validate_or_json_output(tmp_path):
    text = json.dumps(make_submission()).replace('"l1norm"', '"l1\\ud800norm"', 1)
    path = _write_text(tmp_path, text)
    results = validate_paths([path])
    (problem,) = results[path]
    assert problem.where == "$" and "lone surrogate \\ud800" in problem.message
    json.dumps(results_to_json(results), ensure_ascii=False).encode("utf-8")
    format_problems(results).encode("utf-8")


def test_surrogate_pair_escape_is_fine(tmp_path):
    assert read_json(_write_text(tmp_path, '{"a": "\\ud83d\\ude00"}')) == {"a": "\U0001f600"}


# --------------------------------------------------------------------------- run id (R-ID-2)


def test_run_id_is_recomputed_from_the_files_fields(tmp_path):
    data = make_submission(seed=3)
    data["run_id"] = "0123456789ab"
    problem = _one_problem(write_submission(tmp_path, data, name="run.json"))
    assert problem.where == "$.run_id"
    assert repr(run_id(RunIdentity.of(Submission.model_validate(data)))) in problem.message
    assert "'0123456789ab'" in problem.message


def test_smoke_run_edited_into_a_rankable_run_is_caught(tmp_path):
    data = make_submission(smoke=True)
    data["smoke"], data["rankable"] = False, True
    problems = _problems_of(tmp_path, data)
    # the id no longer matches; too few epochs for S3.1 (warning); the smoke run's empty
    # certification is not what a rankable run with these fields gets (S2, open division)
    assert [(p.where, p.rule, p.severity) for p in problems] == [
        ("$.run_id", "R-ID-2", "error"),
        ("$.retraining", "R-RETRAIN-2", "warning"),
        ("$.certification", "R-CERT-1", "error"),
    ]
    assert "computed, not chosen" in problems[0].hint
    assert "certification says None (open division)" in problems[2].message
    assert "support S2 (open division)" in problems[2].message


def test_copy_of_a_run_under_a_new_id_is_caught(tmp_path):
    original = make_submission(seed=0)
    write_submission(tmp_path, original)
    copy = dict(original, run_id="fedcba987654")
    copy_path = write_submission(tmp_path, copy)
    results = validate_paths([tmp_path])
    assert [p.where for p in _errors(results[copy_path])] == ["$.run_id"]
    assert [not _errors(ps) for ps in results.values()].count(True) == 1  # the original is valid


@pytest.mark.parametrize(
    ("method", "config"), [("l1norm", {}), ("taylor", {"batches": 4}), ("random", None)]
)
def test_the_run_id_of_a_files_fields_is_the_runners(method, config):
    from pruning_suite.contract.codedigest import code_sha256
    from pruning_suite.contract.plugins import load_registry  # imports torch: only inside this test
    from pruning_suite.protocol.spec import load_protocol
    from pruning_suite.run.runner import RunConfig, plan_run

    pruning_method = load_registry().method(method, config)
    protocol = load_protocol("digits-convnet")
    target = protocol.target("uniform-70")
    for seed, smoke in ((0, False), (7, True)):
        data = make_submission(
            method=method,
            method_version=pruning_method.version,
            config=pruning_method.config.model_dump(mode="json"),
            seed=seed,
            smoke=smoke,
            target=target.id,
            code_sha256=code_sha256(type(pruning_method)),
        )
        config_of_run = RunConfig(
            plugin=method, method_config=config or {}, target=target.id, seed=seed, smoke=smoke
        )
        expected = plan_run(config_of_run).run_id
        assert run_id(RunIdentity.of(Submission.model_validate(data))) == expected


def test_committed_submissions_have_the_runners_run_ids():
    root = Path(__file__).resolve().parents[2] / "submissions"
    files = sorted(root.rglob("*.json"))
    assert files
    for path in files:
        sub = Submission.model_validate(read_json(path))
        assert run_id(RunIdentity.of(sub)) == sub.run_id == path.stem, path


# --------------------------------------------------------------------------- shipped protocols


def _shorten(data, n):
    """Keep the first ``n`` retraining rows and keep ``final`` consistent with the last one."""
    data["retraining"] = data["retraining"][:n]
    last = data["retraining"][-1]
    data["final"]["test_top1"], data["final"]["val_top1"] = last["test_top1"], last["val_top1"]
    data["final"]["delta_top1"] = last["test_top1"] - data["base_model"]["dense_test_top1"]
    for split in ("test", "val"):  # the counts behind the accuracies
        examples = data["final"][f"{split}_examples"]
        data["final"][f"{split}_correct"] = round(last[f"{split}_top1"] * examples / 100)
    return data


def test_content_hash_of_a_shipped_protocol_is_checked(tmp_path):
    data = make_submission()
    data["protocol"]["content_hash"] = "e" * 64
    data["run_id"] = run_id_for(data)  # the content hash is part of the run id
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.protocol.content_hash"
    shipped = load_protocol("digits-convnet").content_hash
    assert "eeeeeeeeeeee..." in problem.message and shipped[:12] in problem.message
    assert "digits-convnet@1" in problem.message


def test_unknown_protocol_is_a_warning_and_its_recipe_is_not_checked(tmp_path):
    data = make_submission(protocol="my-protocol", protocol_version=3)
    data["retraining"][1]["lr"] = 0.5  # any recipe is fine: nothing to check it against
    problems = _problems_of(tmp_path, data)
    assert [(p.where, p.severity, p.message) for p in problems] == [
        (
            "$.protocol.id",
            "warning",
            "protocol my-protocol@3 is not shipped with this suite nor registered by a plugin "
            "with this content; recipe not checked",
        )
    ]


def test_shipped_protocol_at_another_version_is_a_warning_naming_the_shipped_one(tmp_path):
    problems = _problems_of(tmp_path, make_submission(protocol_version=7))
    assert [(p.where, p.severity) for p in problems] == [("$.protocol.version", "warning")]
    assert "digits-convnet@7 is not shipped" in problems[0].message
    assert "it ships digits-convnet@1" in problems[0].message


def test_rankable_run_must_log_every_epoch_of_the_recipe(tmp_path):
    # fewer epochs than the protocol's is not invalid: certified S2, open division (a warning)
    data = _shorten(make_submission(), 19)
    data["certification"] = certified(data, load_protocol("digits-convnet"))
    assert data["certification"]["setup"] == "S2"
    (problem,) = _problems_of(tmp_path, data)
    assert (problem.where, problem.rule, problem.severity) == (
        "$.retraining",
        "R-RETRAIN-2",
        "warning",
    )
    assert problem.message == (
        "not S3.1: 19 retraining epochs logged; protocol digits-convnet@1 retrains for 20"
    )
    # a file that still claims S4.2 after losing an epoch is an error (R-CERT-1)
    problems = _problems_of(tmp_path, _shorten(make_submission(), 19))
    assert _rules(problems) == [("R-RETRAIN-2", "warning"), ("R-CERT-1", "error")]


def test_smoke_run_may_log_fewer_epochs_but_not_more(tmp_path):
    assert _problems_of(tmp_path, _shorten(make_submission(smoke=True), 1)) == []
    data = make_submission(smoke=True)
    full = make_submission()["retraining"]
    data["retraining"] = full + [dict(full[-1], epoch=20)]
    data = _shorten(data, 21)
    problem = _one_problem(write_submission(tmp_path, data))
    assert (problem.where, problem.rule) == ("$.retraining", "R-RETRAIN-2")
    assert problem.message == (
        "21 retraining epochs are logged but protocol digits-convnet@1 retrains for 20; a "
        "smoke run logs at most that many"
    )


def test_learning_rate_must_follow_the_protocol_schedule(tmp_path):
    data = make_submission()
    assert [row["lr"] for row in data["retraining"][9:11]] == [0.01, 0.001]
    data["retraining"][12]["lr"] = 0.01
    data["retraining"][3]["lr"] = 0.01 * (1 + 1e-12)  # within the relative tolerance 1e-9
    data["certification"] = certified(data, load_protocol("digits-convnet"))
    assert data["certification"]["setup"] == "S3.1"  # another LR schedule: open division
    (problem,) = _problems_of(tmp_path, data)
    assert (problem.where, problem.rule, problem.severity) == (
        "$.retraining[12].lr",
        "R-RETRAIN-3",
        "warning",
    )
    assert problem.message == (
        "not S3.2: epoch 12 ran at LR 0.01; the protocol's schedule (0:0.01,10:0.001) says 0.001"
    )


def test_smoke_run_is_held_to_no_setup_but_never_certified(tmp_path):
    # smoke runs are never ranked: setup requirements are not reported for them (only the
    # epoch cap of R-RETRAIN-2 is), and their certification is always "none, open division"
    data = make_submission(smoke=True)
    data["retraining"][0]["lr"] = 0.1
    assert _problems_of(tmp_path, data) == []
    assert data["certification"] == {
        "setup": None,
        "division": "open",
        "unmet": ["smoke run: reduced budget"],
        "ruleset": RULESET_VERSION,
        "plugin_rules": [],
    }
    data["certification"] = {"setup": "S4.2", "division": "closed", "unmet": []}
    (problem,) = _problems_of(tmp_path, data)
    assert (problem.rule, problem.where) == ("R-CERT-1", "$.certification")


def test_shipped_protocol_lookup_never_reads_a_path():
    assert shipped_protocol("digits-convnet", 1) is not None
    assert shipped_protocol("digits-convnet", 2) is None
    assert shipped_protocol("../suite/protocol/files/digits-convnet.toml", 1) is None
    assert shipped_protocol("", 1) is None  # load_protocol("") would load the default


# --------------------------------------------------------------------------- model gaps


def test_pruned_model_larger_than_dense_is_reported(tmp_path):
    data = make_submission()
    data["pruning"].update(macs_pruned=6000, flops_pruned=12000, speedup=5000 / 6000)
    problems = _problems_of(tmp_path, data)
    # 0.83x is also far from the target's 2x (S1 unmet), so the recorded S4.2 is an overclaim
    assert [(p.where, p.rule) for p in problems] == [
        ("$.pruning.macs_pruned", "R-MEAS-6"),
        ("$.pruning.speedup", "R-TARGET-1"),
        ("$.certification", "R-CERT-1"),
    ]
    problem = problems[0]
    assert problem.message == (
        "macs_pruned is 6000 but macs_dense is 5000; a pruned model is not larger than its "
        "dense model"
    )
    data = make_submission()
    data["pruning"]["params_pruned"] = 1200  # sparsity 0.4 now disagrees too
    wheres = [p.where for p in _problems_of(tmp_path, data)]
    assert wheres == ["$.pruning.sparsity", "$.pruning.params_pruned"]


@pytest.mark.parametrize(
    ("created", "stage"),
    [
        ("yesterday", "pattern"),
        ("2024-05-01", "pattern"),
        ("2024-05-01T12:00:00", "pattern"),  # no UTC offset
        ("2024-02-30T12:00:00Z", "not a real date and time"),
        ("2024-05-01T24:00:00+00:00", "not a real date and time"),
    ],
)
def test_created_must_be_an_iso_8601_datetime(tmp_path, created, stage):
    problem = _one_problem(write_submission(tmp_path, make_submission(created=created)))
    assert problem.where == "$.created" and stage in problem.message


@pytest.mark.parametrize("created", ["2024-05-01T12:00:00+00:00", "2024-05-01T14:00:00.5+02:00"])
def test_created_accepts_what_the_runner_writes(tmp_path, created):
    assert _problems_of(tmp_path, make_submission(created=created)) == []


def test_pruning_layers_must_not_be_empty(tmp_path):
    data = make_submission()
    data["pruning"]["layers"] = []
    problem = _one_problem(write_submission(tmp_path, data))
    assert problem.where == "$.pruning.layers"


@pytest.mark.parametrize(("seed", "ok"), [(-1, False), (2**63, False), (2**63 - 1, True)])
def test_seed_range(tmp_path, seed, ok):
    problems = _problems_of(tmp_path, make_submission(seed=seed))
    assert (problems == []) == ok
    if not ok:
        assert [p.where for p in problems] == ["$.seed"]


def test_every_registered_check_names_its_rule():
    for rule_id, rule in load_rules().items():
        if rule.check is not None:
            assert re.match(rf"{rule_id}( \([S0-9.]+\))?: ", rule.check.__doc__), rule_id
    new = {"R-ID-2", "R-PROTO-1", "R-RETRAIN-2", "R-RETRAIN-3", "R-MEAS-6", "R-ID-3"}
    assert new <= set(load_rules())
