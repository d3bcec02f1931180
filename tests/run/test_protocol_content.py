"""Two different custom protocols under one id and version share run ids (the id holds the
protocol's id and version only); the second run must not overwrite the first one's result
(issue 14)."""

from __future__ import annotations

import pytest

from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import ProtocolError
from pruning_suite.protocol.builtin import shipped_folder
from pruning_suite.run.runner import RunConfig, run


def _custom(tmp_path, name: str, title: str):
    text = (shipped_folder() / "digits-convnet.toml").read_text()
    text = text.replace('id = "digits-convnet"', 'id = "my-digits"')
    text = text.replace('title = "', f'title = "{title} ', 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_changed_custom_protocol_under_one_version_is_refused_before_any_work(tmp_path) -> None:
    out, registry = tmp_path / "out", load_registry()
    first = run(
        RunConfig(
            plugin="l1norm", protocol=str(_custom(tmp_path, "a.toml", "A")), smoke=True, out=out
        ),
        registry,
    )
    stored = first.path.read_bytes()
    changed = RunConfig(
        plugin="l1norm", protocol=str(_custom(tmp_path, "b.toml", "B")), smoke=True, out=out
    )
    with pytest.raises(
        ProtocolError, match="ran under another content of protocol my-digits@1"
    ) as caught:
        run(changed, registry)
    assert "new version" in caught.value.hint
    assert first.path.read_bytes() == stored  # the first result is kept as it was
    again = run(
        RunConfig(
            plugin="l1norm", protocol=str(_custom(tmp_path, "a.toml", "A")), smoke=True, out=out
        ),
        registry,
    )
    assert again.kept_stored  # the same content reproduces it


def test_another_seed_or_method_under_a_changed_protocol_is_refused_too(tmp_path) -> None:
    """Other seeds and methods have other run ids: the whole protocol folder is checked."""
    out, registry = tmp_path / "out", load_registry()
    protocol_a = str(_custom(tmp_path, "a.toml", "A"))
    run(RunConfig(plugin="l1norm", protocol=protocol_a, smoke=True, out=out), registry)
    protocol_b = str(_custom(tmp_path, "b.toml", "B"))
    for plugin, seed in (("l1norm", 1), ("random", 0)):
        config = RunConfig(plugin=plugin, protocol=protocol_b, seed=seed, smoke=True, out=out)
        with pytest.raises(ProtocolError, match=r"l1norm/.*\.json ran under another content"):
            run(config, registry)
    assert len(list(out.rglob("*.json"))) == 1
