"""Evidence that binds a reported result to the model that produced it (tamper evidence).

A percentage can be edited; the counts behind it, the digest of every test prediction and the
digest of the retrained weights cannot be edited consistently without the model. A submission
records them (``final.test_correct`` / ``test_examples``, ``evidence``) so that:

- an accuracy that is not a multiple of ``100 / N`` on an ``N``-example split is impossible
  (99.5% on 360 test images), and one that disagrees with its counts is caught (R-EVAL-3);
- two seeds with the same prediction or weight digest are copies (R-EVID-1);
- ``pruning-suite audit`` re-executes a run and compares the digests bit for bit (CPU).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from ..data import fastpath
from ..data.datasets import Split
from .train import EVAL_BATCH_SIZE, _eval_batches

__all__ = ["Evidence", "predictions_evidence", "weights_sha256"]


@dataclass(frozen=True)
class Evidence:
    """What ``model`` predicts on a split.

    Attributes:
        correct: Examples whose top-1 prediction equals the label.
        examples: Examples evaluated (``N``).
        predictions_sha256: sha256 of the top-1 class of every example, in stored order, as
            little-endian int64.
    """

    correct: int
    examples: int
    predictions_sha256: str

    @property
    def top1(self) -> float:
        """Top-1 accuracy in percent, exactly as :func:`pruning_suite.engine.train.evaluate`."""
        return 100.0 * self.correct / max(self.examples, 1)


@torch.no_grad()
def predictions_evidence(
    model: nn.Module, split: Split, batch_size: int = EVAL_BATCH_SIZE
) -> Evidence:
    """Top-1 predictions of ``model`` on ``split`` (eval mode), counted and digested.

    Args:
        model: A classifier mapping ``[B, C, H, W]`` to logits ``[B, K]`` on the split's device.
        split: The examples, evaluated in stored order.
        batch_size: Examples per forward pass (does not change the result on the CPU).
    """
    was_training = model.training
    model.eval()
    digest = hashlib.sha256()
    correct = examples = 0
    with fastpath.device_layout(model, split.device), fastpath.autocast(split.device):
        for inputs, labels in _eval_batches(split, batch_size):
            predicted = model(fastpath.with_device_layout(inputs)).argmax(dim=1)
            correct += int((predicted == labels).sum())
            examples += len(labels)
            digest.update(predicted.to("cpu", torch.int64).numpy().astype("<i8").tobytes())
    model.train(was_training)
    return Evidence(correct, examples, digest.hexdigest())


def weights_sha256(model: nn.Module) -> str:
    """sha256 over every state-dict entry's name, dtype, shape and bytes, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(
            value.numpy().tobytes()
            if value.dtype != torch.bfloat16
            else value.view(torch.int16).numpy().tobytes()
        )
    return digest.hexdigest()
