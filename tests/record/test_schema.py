"""The committed JSON Schemas: fresh, valid Draft 2020-12, as strict as the pydantic models."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from pruning_suite.record.schema import (
    SCHEMA_DIALECT,
    SCHEMA_FILES,
    load_packaged_schema,
    main,
    packaged_schema_folder,
    protocol_schema,
    schema_text,
    submission_schema,
    write_schemas,
)
from tests.conftest_submissions import make_submission


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_committed_schema_is_fresh(name):
    committed = (packaged_schema_folder() / name).read_text(encoding="utf-8")
    assert committed == schema_text(SCHEMA_FILES[name]()), (
        f"schemas/{name} is stale: the pydantic models changed. "
        "Regenerate with 'python -m pruning_suite.record.schema' and commit the result."
    )


@pytest.mark.parametrize("name", ["submission", "protocol"])
def test_packaged_schema_is_draft_2020_12(name):
    schema = load_packaged_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"].startswith("https://pruning-suite.invalid/schemas/")
    assert load_packaged_schema(f"{name}.schema.json") == schema


def test_schema_ids_and_titles():
    assert submission_schema()["$id"].endswith("/submission-v1.schema.json")
    assert protocol_schema()["$id"].endswith("/protocol.schema.json")
    assert "submission" in submission_schema()["title"]


def test_unknown_schema_name():
    from pruning_suite.errors import SubmissionError

    with pytest.raises(SubmissionError, match="unknown schema 'nope'"):
        load_packaged_schema("nope")


def test_packaged_folder_is_the_repository_schemas_folder():
    folder = packaged_schema_folder()
    assert folder.name == "schemas"
    assert (folder / "__init__.py").is_file()


def test_write_schemas_and_main(tmp_path, capsys):
    written = write_schemas(tmp_path / "a")
    assert sorted(p.name for p in written) == sorted(SCHEMA_FILES)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert (
            text
            == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
    assert main([str(tmp_path / "b")]) == 0
    assert "submission.schema.json" in capsys.readouterr().out
    for name in SCHEMA_FILES:
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def _schema_errors(data):
    return list(Draft202012Validator(load_packaged_schema("submission")).iter_errors(data))


def test_schema_accepts_sample():
    assert _schema_errors(make_submission()) == []


@pytest.mark.parametrize("seed", ["3", 3.5, True, None])
def test_schema_rejects_non_integer_seed(seed):
    data = make_submission()
    data["seed"] = seed
    errors = _schema_errors(data)
    assert [list(e.absolute_path) for e in errors] == [["seed"]]


def test_schema_accepts_int_for_float_fields():
    data = make_submission(top1=90, dense_top1=95)
    data["pruning"]["speedup"] = 2
    assert isinstance(data["final"]["test_top1"], int)
    assert _schema_errors(data) == []


def test_schema_rejects_unknown_keys_and_versions():
    data = make_submission()
    data["best_top1"] = 99.0
    data["schema_version"] = 2
    paths = sorted(tuple(e.absolute_path) for e in _schema_errors(data))
    assert paths == [(), ("schema_version",)]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("created",), "2024-05-01 12:00"),
        (("created",), "2024-05-01T12:00:00"),
        (("seed",), -1),
        (("seed",), 2**63),
        (("base_model", "seed"), -1),
        (("pruning", "layers"), []),
    ],
)
def test_schema_states_the_new_field_constraints(path, value):
    data = make_submission()
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    assert [tuple(e.absolute_path) for e in _schema_errors(data)] == [path]


def test_schema_accepts_the_runners_created_format():
    data = make_submission(created="2026-11-30T00:50:37+00:00", seed=2**63 - 1)
    assert _schema_errors(data) == []
