"""An in-test plugin, loaded through a (simulated) entry point: a tiny dataset and a protocol
folder whose protocol uses it. See tests/contract/test_plugins.py."""

from __future__ import annotations

from pathlib import Path

from pruning_suite import hookimpl
from pruning_suite.data.builtin import read_digits
from pruning_suite.data.source import DatasetSource, RawData

DATASET = "tiny-digits"
PROTOCOL = "tiny-digits-convnet"
EXAMPLES = 400


def read_tiny_digits(data_dir: Path | str | None = None) -> RawData:
    """The first 400 of scikit-learn's digits."""
    digits = read_digits()
    return RawData(
        digits.train_images[:EXAMPLES],
        digits.train_labels[:EXAMPLES],
        None,
        None,
        digits.max_pixel,
        f"first {EXAMPLES} of {digits.source}",
    )


def tiny_checksum() -> str:
    return read_tiny_digits().checksum()


@hookimpl
def register_datasets() -> dict[str, DatasetSource]:
    source = DatasetSource(DATASET, 1, False, read=read_tiny_digits, description="digits[:400]")
    return {DATASET: source}


@hookimpl
def register_protocol_folders() -> dict[str, Path]:
    return {"tiny-plugin": Path(__file__).parent / "protocols"}


__all__ = ["DATASET", "EXAMPLES", "PROTOCOL", "read_tiny_digits", "tiny_checksum"]
