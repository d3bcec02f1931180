"""``pruning-suite base list`` on cache entries a user or another program edited or half-deleted.

The metadata ``.json`` beside each cached base model is written by the suite but may have been
edited: no field of it may crash the listing or write control characters onto the terminal.
Entries are written by hand here (no training), so these tests take milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pruning_suite.cli.main import main
from pruning_suite.run import basecache
from pruning_suite.run.zoo import list_bases

KEY = "0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def _entry(tmp_path: Path, key: str = KEY, checkpoint: bool = True, **fields: Any) -> Path:
    """A cache entry as the suite writes it, with ``fields`` replaced (None: left out)."""
    meta = {
        "key": key,
        "protocol": "digits-convnet",
        "protocol_version": 1,
        "checkpoint_sha256": "ab" * 32,
        "created": "2026-01-01T00:00:00+00:00",
        "source": "trained",
        "smoke": False,
        "dense_val_top1": 97.5,
        "dense_test_top1": 96.25,
    }
    meta.update(fields)
    meta = {name: value for name, value in meta.items() if value is not None}
    folder = tmp_path / "cache" / "base"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps(meta))
    if checkpoint:
        (folder / f"{key}.pt").write_bytes(b"weights")
    return folder / f"{key}.json"


def _cached_rows() -> list[Any]:
    return [row for row in list_bases() if row.source != "pretrained"]


@pytest.mark.parametrize(
    "value",
    ["97.5", [97.5], {"top1": 97.5}, True, -1, 101, 10**400, float("nan")],
    ids=["string", "list", "object", "bool", "negative", "over-100", "huge-int", "nan"],
)
def test_a_top1_of_the_wrong_type_is_shown_as_unset_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: object
) -> None:
    """A top-1 that is no number from 0 to 100 reads as not recorded ("-"), named in the note;
    the rest of the entry is still listed."""
    _entry(tmp_path, dense_val_top1=value)
    (row,) = _cached_rows()
    assert (row.key, row.dense_val_top1, row.dense_test_top1) == (KEY, None, 96.25)
    assert row.note == "malformed metadata: dense_val_top1"
    assert main(["base", "list"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if KEY in line]
    assert " - " in line and "96.25" in line and "malformed metadata: dense_val_top1" in line
    assert main(["base", "list", "--json"]) == 0
    (listed,) = [r for r in json.loads(capsys.readouterr().out) if r["key"] == KEY]
    assert (listed["dense_val_top1"], listed["dense_test_top1"]) == (None, 96.25)


def test_an_integer_top1_is_a_number(tmp_path: Path) -> None:
    """JSON has no float type of its own: ``97`` is a top-1 as much as ``97.0``."""
    entry = basecache._entry(_entry(tmp_path, dense_val_top1=97, dense_test_top1=0))
    assert entry is not None
    assert (entry.dense_val_top1, entry.dense_test_top1, entry.malformed) == (97, 0, ())


@pytest.mark.parametrize(
    ("value", "smoke", "malformed"),
    [(True, True, ()), (False, False, ()), ("false", False, ("smoke",)), ("true", False, ("smoke",)),
     (1, False, ("smoke",)), (None, False, ())],
)  # fmt: skip
def test_only_json_true_makes_a_smoke_entry(
    tmp_path: Path, value: object, smoke: bool, malformed: tuple[str, ...]
) -> None:
    """``"smoke": "false"`` was taken for a smoke entry (``bool("false")``); any value but a JSON
    boolean is now malformed: read as not smoke, and named."""
    entry = basecache._entry(_entry(tmp_path, smoke=value))
    assert entry is not None and (entry.smoke, entry.malformed) == (smoke, malformed)
    (row,) = _cached_rows()
    assert ("smoke budget" in row.note) is smoke
    assert ("malformed metadata: smoke" in row.note) is bool(malformed)


def test_notes_are_kept_apart(tmp_path: Path) -> None:
    """The note's parts are joined by '; ', as the malformed fields are listed with ', '."""
    _entry(tmp_path, checkpoint=False, smoke="no", dense_test_top1="x")
    (row,) = _cached_rows()
    assert row.note == (
        "malformed metadata: dense_test_top1, smoke; checkpoint missing: runs retrain it"
    )


def test_source_and_original_of_the_wrong_type_are_named(tmp_path: Path) -> None:
    _entry(tmp_path, source=["imported"], original={"path": "/x"}, dense_test_top1="96")
    (entry,) = basecache.list_cache()
    assert (entry.source, entry.original) == ("trained", None)
    assert entry.malformed == ("dense_test_top1", "original", "source")


@pytest.mark.parametrize(
    "fields",
    [{"protocol_version": "1"}, {"protocol_version": 1.0}, {"protocol_version": True},
     {"key": ["x"]}, {"protocol": 3}, {"checkpoint_sha256": None}, {"protocol": None}],
)  # fmt: skip
def test_an_entry_without_its_identity_is_skipped(tmp_path: Path, fields: dict[str, Any]) -> None:
    """Key, protocol, version and sha256 name the entry: when one is absent or of the wrong type
    the entry is unreadable and left out, as an unparsable file is."""
    _entry(tmp_path, **fields)
    _entry(tmp_path, key="unparsable").write_text("{not json")
    _entry(tmp_path, key="a-list").write_text("[1, 2]")
    assert basecache.list_cache() == []
    assert main(["base", "list"]) == 0


def test_a_missing_checkpoint_is_said(tmp_path: Path) -> None:
    """An entry whose ``.pt`` is gone says so, and what a run then does."""
    _entry(tmp_path, key="a" * 16, checkpoint=False)
    _entry(tmp_path, key="b" * 16, checkpoint=False, source="imported", original="/m.pt")
    _entry(tmp_path, key="c" * 16, smoke=True)
    notes = {row.key: row.note for row in _cached_rows()}
    assert notes == {
        "a" * 16: "checkpoint missing: runs retrain it",
        "b" * 16: "from /m.pt; checkpoint missing: import it again "
        "('pruning-suite base import FILE --protocol digits-convnet')",
        "c" * 16: "smoke budget",
    }


def test_control_characters_of_metadata_are_escaped_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-edited protocol id, source, original path or key cannot move the cursor, colour the
    terminal or start a line of its own: every cell goes through ``report.text.one_line``."""
    _entry(
        tmp_path,
        key="k\x1b[2J\nfake line",
        protocol="digits\x1b[31m",
        source="trained\r",
        original="/tmp/a\nb\u2028c",
        checkpoint=False,
    )
    assert main(["base", "list"]) == 0
    out = capsys.readouterr().out
    assert not any(char in out for char in "\x1b\r\u2028")
    (line,) = [line for line in out.splitlines() if "digits\\u001b[31m@1" in line]
    assert "k\\u001b[2J\\nfake line" in line and "trained\\r" in line
    assert "from /tmp/a\\nb\\u2028c" in line
    assert not any(line.startswith("fake line") for line in out.splitlines())
    assert main(["base", "list", "--json"]) == 0  # JSON escapes them itself
    assert "digits\\u001b[31m" in capsys.readouterr().out


def test_missing_pretrained_weights_say_what_to_do(tmp_path: Path) -> None:
    """The pretrained row of imagenet-resnet50, weights absent: where to put the file, or how to
    register a copy (``base train --protocol`` gives torchvision's download call)."""
    (row,) = [row for row in list_bases() if row.protocol.startswith("imagenet-resnet50@")]
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    assert row.note == (
        f"missing (expected sha256 0676ba61...): put resnet50-0676ba61.pth in {hub}, or register "
        "a copy with 'pruning-suite base import FILE --protocol imagenet-resnet50'"
    )
