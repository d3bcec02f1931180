"""The device augmentation has torchvision's semantics: RandomCrop(32, padding=4) + RandomHorizontalFlip().

What torchvision does to each raw image: pad 4 pixels of value 0 on every side, crop 32 x 32 at
offsets drawn uniformly from 0..8 for rows and columns independently, flip left-right with
probability 0.5, every example drawn on its own. The statistical tests use fixed seeds, 20,000
draws and a p-value floor of 1e-6 (chi-square), so they are deterministic and far from their
threshold, yet a wrong range, a missing flip or a draw shared by a batch fails them by orders of
magnitude. The exact tests replay the documented draw order against torchvision's functional ops.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torchvision import transforms
from torchvision.transforms import functional as TF

from pruning_suite.data.datasets import Split, augment
from pruning_suite.protocol.spec import Augmentation

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # cifar10-resnet56
PAD, SIDE, DRAWS = 4, 32, 20_000
AUG = Augmentation(random_crop_padding=PAD, horizontal_flip=True)
P_FLOOR = 1e-6
CELLS = (2 * PAD + 1, 2 * PAD + 1, 2)  # row offset, column offset, flipped


def _position_image() -> torch.Tensor:
    """``[3, 32, 32]`` uint8: red 7 (row + 1), green 7 (column + 1), blue 255; padding reads 0."""
    steps = 7 * (torch.arange(SIDE, dtype=torch.uint8) + 1)
    red = steps.view(SIDE, 1).expand(SIDE, SIDE)
    green = steps.view(1, SIDE).expand(SIDE, SIDE)
    return torch.stack([red, green, torch.full((SIDE, SIDE), 255, dtype=torch.uint8)])


def _raw(normalized: torch.Tensor) -> torch.Tensor:
    """Normalized ``[N, 3, H, W]`` back to raw pixel values 0..255 (int64)."""
    mean, std = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (MEAN, STD))
    return ((normalized.double() * std + mean) * 255).round().long()


def _decode(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row offset, column offset (0..2*PAD) and flip of augmented position images.

    Output pixel (PAD, PAD) shows source row ``oy``, and source column ``ox`` (``ox + 23`` when
    flipped: the flip maps output column ``j`` to crop column ``31 - j``); the column read one
    pixel to the right rises by one unless the image was flipped.
    """
    row = raw[:, 0, PAD, PAD] // 7 - 1
    col, right = raw[:, 1, PAD, PAD] // 7 - 1, raw[:, 1, PAD, PAD + 1] // 7 - 1
    flipped = right < col
    return row, torch.where(flipped, col - (SIDE - 1 - 2 * PAD), col), flipped.long()


def _suite_draws(seed: int) -> tuple[torch.Tensor, ...]:
    """Offsets and flips of DRAWS examples augmented by the suite, in batches of 2,000."""
    split = Split(
        _position_image().expand(2_000, 3, SIDE, SIDE), torch.zeros(2_000).long(), 255, MEAN, STD
    )
    generator = torch.Generator().manual_seed(seed)
    decoded = [
        _decode(_raw(augment(split.inputs, AUG, generator, mean=MEAN, std=STD)))
        for _ in range(DRAWS // 2_000)
    ]
    return tuple(torch.cat(column) for column in zip(*decoded, strict=True))


def _torchvision_draws(seed: int, n: int) -> tuple[torch.Tensor, ...]:
    """Offsets and flips from torchvision's own transforms on the same image, one call each."""
    pipeline = transforms.Compose(
        [transforms.RandomCrop(SIDE, padding=PAD), transforms.RandomHorizontalFlip()]
    )
    torch.manual_seed(seed)
    image = _position_image()
    return _decode(torch.stack([pipeline(image) for _ in range(n)]).long())


def _histogram(draws: tuple[torch.Tensor, ...]) -> np.ndarray:
    row, col, flip = draws
    cell = (row * CELLS[1] + col) * CELLS[2] + flip
    return torch.bincount(cell, minlength=int(np.prod(CELLS))).numpy()


@pytest.fixture(scope="module")
def suite_draws() -> tuple[torch.Tensor, ...]:
    return _suite_draws(seed=0)


def test_offsets_and_flips_are_in_range(suite_draws) -> None:
    row, col, flip = suite_draws
    assert row.min() == col.min() == 0 and row.max() == col.max() == 2 * PAD
    assert set(flip.tolist()) == {0, 1}


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["row offset", "column offset", "flip"])
def test_each_draw_is_uniform(suite_draws, axis: int) -> None:
    counts = torch.bincount(suite_draws[axis], minlength=CELLS[axis]).numpy()
    assert len(counts) == CELLS[axis]
    assert stats.chisquare(counts).pvalue > P_FLOOR, counts


def test_row_column_and_flip_are_drawn_independently(suite_draws) -> None:
    """The joint (row, column, flip) is uniform on all 162 cells, not only its marginals."""
    assert stats.chisquare(_histogram(suite_draws)).pvalue > P_FLOOR


def test_examples_are_drawn_independently(suite_draws) -> None:
    """Neighbouring examples of a batch get independent offsets (no draw shared by a batch)."""
    row = suite_draws[0]
    pairs = torch.bincount(row[0::2] * CELLS[0] + row[1::2], minlength=CELLS[0] ** 2).numpy()
    assert stats.chisquare(pairs).pvalue > P_FLOOR
    same = (row[0::2] == row[1::2]).double().mean().item()
    assert same == pytest.approx(1 / CELLS[0], abs=0.02)


def test_distribution_matches_torchvision_transforms(suite_draws) -> None:
    """Homogeneity of the suite's and torchvision's (row, column, flip) histograms."""
    ours, theirs = _histogram(suite_draws), _histogram(_torchvision_draws(seed=0, n=DRAWS // 2))
    result = stats.chi2_contingency(np.stack([ours, theirs]))
    assert result.pvalue > P_FLOOR


def _normalize_like_torchvision(image: Image.Image) -> torch.Tensor:
    return TF.normalize(TF.to_tensor(image), MEAN, STD)


def test_known_draws_equal_torchvision_functional_ops() -> None:
    """Replaying the documented draw order, each example equals pad/crop/hflip/ToTensor/Normalize.

    Image pixels are bit-identical to torchvision's; padding pixels are ``(0 - mean) / std``
    computed in float64 then rounded to float32, within one float32 ulp of torchvision's float32
    arithmetic.
    """
    n, seed = 16, 3
    pixels = torch.randint(0, 256, (n, 3, SIDE, SIDE), generator=torch.Generator().manual_seed(1))
    split = Split(pixels.to(torch.uint8), torch.zeros(n).long(), 255, MEAN, STD)
    out = augment(split.inputs, AUG, torch.Generator().manual_seed(seed), mean=MEAN, std=STD)
    replay = torch.Generator().manual_seed(seed)
    rows, cols, flips = (torch.randint(0, hi, (n,), generator=replay) for hi in (9, 9, 2))
    fill = torch.tensor([(0.0 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    for i in range(n):
        top, left, flip = int(rows[i]), int(cols[i]), bool(flips[i])
        image = Image.fromarray(pixels[i].permute(1, 2, 0).numpy().astype(np.uint8))
        image = TF.crop(TF.pad(image, [PAD], fill=0), top, left, SIDE, SIDE)
        expected = _normalize_like_torchvision(TF.hflip(image) if flip else image)
        inside = TF.crop(TF.pad(torch.ones(1, SIDE, SIDE), [PAD], fill=0), top, left, SIDE, SIDE)
        inside = (TF.hflip(inside) if flip else inside).bool().expand(3, SIDE, SIDE)
        assert torch.equal(out[i][inside], expected[inside])
        border = fill.view(3, 1, 1).expand(3, SIDE, SIDE)[~inside]
        assert torch.equal(out[i][~inside], border)
        assert torch.allclose(out[i][~inside], expected[~inside], rtol=1.2e-7, atol=0)


def test_unaugmented_batch_equals_totensor_normalize() -> None:
    """Split.batch on uint8 pixels == torchvision's ToTensor + Normalize, bit for bit."""
    pixels = torch.randint(0, 256, (8, 3, SIDE, SIDE), generator=torch.Generator().manual_seed(2))
    split = Split(pixels.to(torch.uint8), torch.zeros(8).long(), 255, MEAN, STD)
    for i in range(8):
        image = Image.fromarray(pixels[i].permute(1, 2, 0).numpy().astype(np.uint8))
        assert torch.equal(split.batch(torch.tensor([i]))[0], _normalize_like_torchvision(image))
