"""Padded array lengths: the few shapes the jitted kernels are compiled for.

A jitted function compiles once per input shape; every compiled shape costs compile time and
hundreds of the process's memory mappings (:mod:`protomodels.kernel_budget`). Batches are
therefore padded to powers of four from a least length (16, 64, 256, ...): at most four times
the work of the unpadded batch, and few enough shapes that :meth:`Evaluator.prepare
<protomodels.evaluation.Evaluator.prepare>` compiles them all before a walk.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["padded_length", "padded_lengths"]


def __dir__() -> list[str]:
    return __all__


def padded_length(n: int, least: int) -> int:
    """The smallest ``least`` x 4^k >= n.

    >>> padded_length(17, 16), padded_length(3, 4), padded_length(0, 16)
    (64, 4, 16)
    """
    size = least
    while size < n:
        size *= 4
    return size


def padded_lengths(least: int, most: int) -> Iterator[int]:
    """Every padded length from ``least`` up to ``most``.

    >>> list(padded_lengths(16, 1024))
    [16, 64, 256, 1024]
    """
    size = least
    while size <= most:
        yield size
        size *= 4
