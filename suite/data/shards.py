"""How one global batch is shared by the processes of a data-parallel run (torchrun).

Every process draws the same global shuffling order; process ``rank`` of ``size`` takes the
contiguous part :func:`batch_part` of every global batch, so the processes together see exactly
the batches one process would.
"""

from __future__ import annotations

__all__ = ["batch_part"]


def batch_part(length: int, rank: int, size: int) -> slice:
    """Process ``rank``'s contiguous part of a batch of ``length`` examples shared by ``size``.

    Rank ``r`` gets positions ``[r * length // size, (r + 1) * length // size)``: parts differ
    in length by at most one, and together cover the batch in order.

    Args:
        length: Examples in the global batch.
        rank: This process's rank, in ``[0, size)``.
        size: Processes sharing the batch (the world size).

    Raises:
        ValueError: ``size`` < 1 or ``rank`` outside ``[0, size)``.
    """
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"rank {rank} is not one of {size} processes")
    return slice(rank * length // size, (rank + 1) * length // size)
