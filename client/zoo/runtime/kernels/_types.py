"""Small shared types: the kernel callable and the conv geometry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._buffers import aligned
from ._wide import Wide


class Kernel:
    """A planned weighted op: call it with the input array, read ``.kind`` to see the path.

    Plan-time work (packing, CSR building) is done before construction; ``__call__`` only
    computes and returns a freshly allocated array - or, for the direct convs called through
    :meth:`wide`, possibly a :class:`~._wide.Wide` (the output left in the kernel's flat
    layout). Kernels that pick a path by batch size (``sparse-csr-b1`` /
    ``sparse-csr-batched``) set ``kind`` to the path of the last call.
    """

    __slots__ = ("_fn", "kind", "takes_wide")

    def __init__(self, fn: Callable[..., Any], kind: str, *, takes_wide: bool = False) -> None:
        self._fn = fn
        self.kind = kind
        # fn(x, residual, wide) reads Wide inputs and may return a Wide when ``wide`` is True
        self.takes_wide = takes_wide

    def __call__(self, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """The op on ``x``; conv kernels also take a ``residual`` of the output's shape:
        ``act(conv(x) + bias + residual)``, the activation applied last."""
        if self.takes_wide:
            y = self._fn(x, residual, False)
            assert isinstance(y, np.ndarray)  # a Wide only when asked for
            return y
        return self._fn(x) if residual is None else self._fn(x, residual)  # type: ignore[no-any-return]

    def wide(
        self, x: Any, residual: Any = None, frame: tuple[int, int, int, int] | None = None
    ) -> np.ndarray | Wide:
        """As calling the kernel, but ``x`` and ``residual`` may be :class:`~._wide.Wide`,
        and a direct conv may return its output uncropped, as a Wide (for a Conv step: see
        ``_wide``) - inside a zero frame of the (top, left, bottom, right) padding ``frame``
        when it can."""
        if self.takes_wide:
            return self._fn(x, residual, True, frame)  # type: ignore[no-any-return]
        x = np.asarray(x) if isinstance(x, Wide) else x
        return self(x, np.asarray(residual) if isinstance(residual, Wide) else residual)

    def __repr__(self) -> str:
        return f"Kernel(kind={self.kind!r})"


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a Conv except its weights: kernel size, strides, pads, dilations."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # (top, left, bottom, right)
    dilations: tuple[int, int]
    group: int

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """Output (Ho, Wo) for an input of (H, W)."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.strides, self.dilations
        t, left, b, r = self.pads
        ho = (h + t + b - dh * (kh - 1) - 1) // sh + 1
        wo = (w + left + r - dw * (kw - 1) - 1) // sw + 1
        return ho, wo


class Scratch:
    """Per-thread work buffers that a kernel reuses from call to call (never returned).

    Why: a fresh multi-MB ``np.empty`` is mmapped and page-faulted page by page; with two
    such arrays alive per call the faults cost more than the conv itself (4.7 ms vs 0.6 ms
    for ResNet's first conv). Buffers are zero-filled once when created: kernels rewrite the
    same interior on every call, so padding written as zero stays zero.

    They start on a 64-byte (cache line) boundary: numpy's large arrays start 16 or 48 bytes
    past one, so each 64-byte load of a register tile straddled two cache lines. Measured
    per direct-conv call, 1 thread, 90% sparse, input aligned vs 16 bytes off: the 7x7 stem
    0.53 -> 0.45 ms, 256->512 1x1 stride 2 at 56x56 0.50 -> 0.41, 256ch 3x3 at 14x14 0.60 ->
    0.53; the other ResNet-50 shapes unchanged.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A 64-byte-aligned float32 buffer of ``shape`` for this thread (zeros when new)."""
        bufs: dict[str, np.ndarray] | None = getattr(self._local, "bufs", None)
        if bufs is None:
            bufs = self._local.bufs = {}
        buf = bufs.get(name)
        if buf is None or buf.shape != shape:
            buf = bufs[name] = aligned(shape, np.float32, zero=True)
        return buf
