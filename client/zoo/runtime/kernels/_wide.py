"""A conv output left in the direct conv's flat layout instead of cropped to (B, C, Ho, Wo).

The direct convs (``_direct_conv``, ``_dense_direct``) compute each output channel at flat
positions q = oh * Wq + ow over the full width Wq of their padded input: the columns
ow >= Wo and the positions past Ho * Wq are garbage. Cropping that into a (B, C, Ho, Wo)
array is a copy, and the next conv then copies it again into its own padded layout. A
``Wide`` keeps the uncropped rows so that the next conv reads them where they are:

- a 1x1 conv with stride 1 and no padding computes on the wide rows as they are (its own
  output is wide, with the same Wq);
- a conv that pads or strides copies the valid pixels straight into its padded input
  (the copy it makes anyway);
- a fused residual reads its pixels at oh * Wq + ow;
- MaxPool reads its rows in place (ResNet's stem output).

A Conv step asks for one (``Kernel.wide``); the planner marks every other input that a Conv
computes (``Step.crop``), and the session gives those the cropped array instead
(``np.asarray(wide)`` crops, as the conv did before), once per value. Graph outputs are
cropped too.

The buffer is the producing kernel's scratch, rewritten by its next call: a ``Wide`` is
valid until that kernel runs again, which within one ``InferenceSession.run`` it does not
(a value seen through ``run(..., on_step=...)`` is valid during that run only).
Garbage positions hold what the kernel computed there from the padded input (or zero, past
the last position it computes); a 1x1 conv maps them to garbage positions of its own output,
and no kernel reads them into a valid pixel.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


class Wide:
    """Channels of ``flat`` (B, C, L), C-contiguous: pixel (oh, ow) of channel c at
    ``flat[b, c, oh * wq + ow]`` for oh < ho, ow < wo (wo <= wq, ho * wq <= L)."""

    __slots__ = ("flat", "ho", "wo", "wq")

    ndim = 4

    def __init__(self, flat: np.ndarray, ho: int, wq: int, wo: int) -> None:
        if not flat.flags.c_contiguous or flat.ndim != 3 or wo > wq or ho * wq > flat.shape[2]:
            raise ValueError(
                f"not a wide conv layout: flat {flat.shape} for {ho} rows of {wo} in {wq}"
            )
        self.flat = flat
        self.ho, self.wq, self.wo = ho, wq, wo

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The tensor's shape, (B, C, Ho, Wo)."""
        n, c = self.flat.shape[:2]
        return n, c, self.ho, self.wo

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32."""
        return self.flat.dtype

    def view(self) -> np.ndarray:
        """The (B, C, Ho, Wo) pixels as a strided view of ``flat`` (no copy)."""
        n, c = self.flat.shape[:2]
        rows = self.flat[:, :, : self.ho * self.wq].reshape(n, c, self.ho, self.wq)
        return rows[..., : self.wo]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The cropped tensor: a new C-contiguous (B, C, Ho, Wo) array."""
        del copy  # always a copy: the buffer is a kernel's scratch
        out = np.ascontiguousarray(self.view())
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Wide(shape={self.shape}, wq={self.wq}, plane={self.flat.shape[2]})"


# the residual argument of a conv without one (its batch dimension 0 tells the kernel)
NO_RESIDUAL = np.zeros((0, 1, 1), np.float32)


@functools.lru_cache(maxsize=256)
def _geometry(ho: int, wo: int, rwq: int) -> np.ndarray:
    # one array per geometry, not a new one per conv call; the kernels only read it (and a
    # read-only flag would not match their signatures)
    return np.array([ho, wo, rwq], np.int64)


def residual_args(
    res: np.ndarray | Wide | None, shape: tuple[int, ...], empty: np.ndarray = NO_RESIDUAL
) -> tuple[np.ndarray, np.ndarray]:
    """A conv kernel's residual arguments: ``res`` (B, C, L) and ``rg`` = (Ho, Wo, row
    stride), for a residual of the output's ``shape`` (B, C, Ho, Wo); ``empty`` (a
    (0, 1, 1) array) when there is none."""
    n, c, ho, wo = shape
    if res is None:
        return empty, _geometry(ho, wo, wo)
    if tuple(res.shape) != tuple(shape):
        raise ValueError(f"conv residual must have shape {tuple(shape)}, got {tuple(res.shape)}")
    if isinstance(res, Wide):
        return res.flat, _geometry(ho, wo, res.wq)
    r = np.ascontiguousarray(res, dtype=np.float32)
    return r.reshape(n, c, ho * wo), _geometry(ho, wo, wo)
