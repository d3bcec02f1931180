"""Hostile protocol and checkpoint files get a one-line error (issue 14)."""

from __future__ import annotations

import pytest
import torch

from pruning_suite.engine.models import build_model
from pruning_suite.errors import CheckpointError, ProtocolError
from pruning_suite.protocol.catalogue import shipped_protocol
from pruning_suite.protocol.spec import ArchitectureSpec, load_protocol_file
from pruning_suite.run.basecache import load_state_dict_strict


def test_a_protocol_symlinked_to_dev_zero_is_refused_unread(tmp_path) -> None:
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ProtocolError, match="not a regular file"):
        load_protocol_file(link)


def test_an_oversized_and_a_deeply_nested_protocol_are_refused(tmp_path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ProtocolError, match="over 1,048,576 bytes"):
        load_protocol_file(big)
    nested = tmp_path / "nested.toml"
    nested.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(nested)
    assert "\n" not in info.value.message


def test_an_architecture_too_large_for_memory_is_a_protocol_error() -> None:
    arch = ArchitectureSpec(name="digits_convnet", kwargs={"widths": [16, 32, 4_000_000_000]})
    with pytest.raises(ProtocolError, match="could not be built"):
        build_model(arch, (1, 8, 8), 10)


def test_an_all_nan_checkpoint_is_refused(tmp_path) -> None:
    protocol = shipped_protocol("digits-convnet", 1)
    model = torch.nn.Linear(4, 2)
    state = {k: torch.full_like(v, float("nan")) for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="NaN or infinite values in 2 tensors"):
        load_state_dict_strict(model, state, tmp_path / "base.pt", protocol)
