"""Reading state_dict checkpoints safely, loading them strictly with one-line errors, and finding
and checking published weights.

Used by the base-model cache (:mod:`pruning_suite.run.basecache`): imported base models and
published weights are read with ``torch.load(weights_only=True)``, which runs no pickled code.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..protocol.spec import ComparisonProtocol, PretrainedWeights

__all__ = [
    "check_sha",
    "existing_file",
    "load_state_dict_strict",
    "pretrained_hint",
    "pretrained_path",
    "read_state_dict",
]


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state_dict, read with ``torch.load(weights_only=True)`` (runs no pickled code).

    Args:
        file: A file written by ``torch.save(model.state_dict(), file)`` (or ``{"state_dict":
            ...}``).

    Returns:
        Parameter and buffer names -> tensors, on the CPU.

    Raises:
        CheckpointError: The file cannot be read, pickles Python objects (a whole ``nn.Module``,
            an optimizer), or holds no mapping of names to tensors.
    """
    hint = "save it with torch.save(model.state_dict(), FILE) and import that file"
    try:
        state = torch.load(existing_file(file), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused is None:  # not a pickled object: a damaged or foreign file
            raise CheckpointError(
                f"cannot read checkpoint {file}: not a torch.save file", hint
            ) from err
        raise CheckpointError(
            f"{file} is not a plain state_dict: it pickles Python objects ({refused.group(1)}; "
            "e.g. a whole nn.Module saved with torch.save(model)); the suite reads checkpoints "
            "with torch.load(weights_only=True) and never runs pickled code",
            hint,
        ) from err
    except Exception as err:  # torch.load raises many types for a damaged or foreign file
        raise CheckpointError(
            f"cannot read checkpoint {file}: {type(err).__name__}: {err}", hint
        ) from err
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(
            f"{file} does not hold a state_dict (a mapping of names to tensors), but a "
            f"{type(state).__name__}",
            hint,
        )
    return dict(state)


def load_state_dict_strict(
    model: nn.Module, state: Mapping[str, torch.Tensor], file: Path, protocol: ComparisonProtocol
) -> None:
    """``model.load_state_dict(state, strict=True)``, a CheckpointError naming what does not fit.

    Raises:
        CheckpointError: Missing or unexpected keys, tensors of another shape, or a NaN or
            infinite value in a floating-point tensor (a broken checkpoint).
    """
    broken = [
        name
        for name, tensor in state.items()
        if isinstance(tensor, torch.Tensor)
        and tensor.is_floating_point()
        and not bool(torch.isfinite(tensor).all())
    ]
    if broken:
        raise CheckpointError(
            f"{file} holds NaN or infinite values in {len(broken)} tensors "
            f"({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''})",
            "the checkpoint is broken (a diverged training?); import a finite state_dict",
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = str(err).replace("\n\t", " ").strip()
        raise CheckpointError(
            f"{file} does not fit protocol {protocol.id!r}'s architecture "
            f"{protocol.architecture.name!r}: {detail[:600]}",
            "import a state_dict of exactly this architecture (names as in "
            "model.state_dict(); a 'module.' prefix from DataParallel must be stripped)",
        ) from err


def existing_file(file: Path) -> Path:
    """``file`` when it is a file.

    Raises:
        CheckpointError: It does not exist or is not a file.
    """
    if not file.is_file():
        raise CheckpointError(
            f"checkpoint {file} does not exist or is not a file", "check the path"
        )
    return file


def pretrained_path(weights: PretrainedWeights) -> Path:
    """Where torch's hub cache keeps ``weights`` (``torch.hub.get_dir()/checkpoints/<file_name>``).

    ``torch.hub.get_dir()`` is ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else
    ``~/.cache/torch/hub``: where torchvision's ``weights.get_state_dict()`` downloads to.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.file_name


def pretrained_hint(weights: PretrainedWeights, protocol: ComparisonProtocol) -> str:
    """How to get ``weights`` onto this machine and register them for ``protocol``."""
    get = (
        f"on a machine with internet, 'python -c \"import torchvision; torchvision.models."
        f"get_weight('{weights.torchvision_weights}').get_state_dict()\"' downloads it to "
        "~/.cache/torch/hub/checkpoints/; copy it into this machine's "
        f"{Path(torch.hub.get_dir()) / 'checkpoints'} (or set TORCH_HOME), or "
        if weights.torchvision_weights
        else ""
    )
    return f"{get}register any copy with 'pruning-suite base import FILE --protocol {protocol.id}'"


def check_sha(path: Path, sha: str, weights: PretrainedWeights) -> None:
    """Refuse a file whose sha256 is not the published weights' (a prefix of 8+ hex digits).

    Raises:
        CheckpointError: It differs.
    """
    if not sha.startswith(weights.sha256):
        raise CheckpointError(
            f"{path} has sha256 {sha}, but the protocol expects "
            f"{weights.sha256}{'...' if len(weights.sha256) < 64 else ''} ({weights.file_name}): "
            "it is other weights or a damaged download",
            "download the file again; only the published weights give comparable results",
        )
