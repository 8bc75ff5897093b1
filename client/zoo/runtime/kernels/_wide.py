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
- MaxPool reads its rows in place (ResNet's stem output), GlobalAveragePool its pixels
  (``plane_means``; ResNet's last conv output);
- a conv whose only reader is a padded conv with stride 1 (ResNet's 1x1 reduce before its
  3x3, MobileNetV2's 1x1 expand before a depthwise 3x3) writes its rows inside a zero frame
  of that reader's padding when its row stride already is the padded width (Wq = Wo + left
  + right: it computed in place on a 3x3 conv's output): pixel (0, 0) at ``offset`` =
  top * Wq + left of each channel's plane, the garbage columns and the rows past the image
  zeroed after the kernel. The padded conv then reads that buffer as its padded input,
  without the padding copy (:meth:`~._direct_conv.DirectConv.framed`). The planner asks for
  it (the ``_frame`` attribute). In ResNet-50 at batch 1, 9 of its 13 stride-1 3x3 convs
  read their input so (the other 4 come first in their stage, after a conv whose rows are
  not the padded width).

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

from ._numba_env import kernel


class Wide:
    """Channels of ``flat`` (B, C, L), C-contiguous: pixel (oh, ow) of channel c at
    ``flat[b, c, offset + oh * wq + ow]`` for oh < ho, ow < wo (wo <= wq, offset + ho * wq
    <= L).

    A framed one (``frame`` = the (top, left, bottom, right) padding it was written for, so
    ``offset`` = top * wq + left; 0 without a frame) has zeros at every position of each
    plane that is not a pixel, up to (top + ho + bottom) * wq, and ``buffer`` is the flat
    array ``flat`` starts at, with slack after the last plane (a padded conv's taps read
    past it)."""

    __slots__ = ("buffer", "flat", "frame", "ho", "offset", "shape", "wo", "wq")

    ndim = 4

    def __init__(
        self,
        flat: np.ndarray,
        ho: int,
        wq: int,
        wo: int,
        *,
        frame: tuple[int, int, int, int] | None = None,
        buffer: np.ndarray | None = None,
    ) -> None:
        offset = 0 if frame is None else frame[0] * wq + frame[1]
        if (
            not flat.flags.c_contiguous
            or flat.ndim != 3
            or wo > wq
            or offset + ho * wq > flat.shape[2]
        ):
            raise ValueError(
                f"not a wide conv layout: flat {flat.shape} for {ho} rows of {wo} in {wq}"
                f" from {offset}"
            )
        self.flat = flat
        self.ho, self.wq, self.wo = ho, wq, wo
        self.offset, self.frame, self.buffer = offset, frame, buffer
        # the tensor's shape, (B, C, Ho, Wo): an attribute, read several times per conv call
        self.shape: tuple[int, int, int, int] = (flat.shape[0], flat.shape[1], ho, wo)

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32."""
        return self.flat.dtype

    def view(self) -> np.ndarray:
        """The (B, C, Ho, Wo) pixels as a strided view of ``flat`` (no copy)."""
        n, c = self.flat.shape[:2]
        start = self.offset
        rows = self.flat[:, :, start : start + self.ho * self.wq].reshape(n, c, self.ho, self.wq)
        return rows[..., : self.wo]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The cropped tensor: a new C-contiguous (B, C, Ho, Wo) array."""
        del copy  # always a copy: the buffer is a kernel's scratch
        out = np.ascontiguousarray(self.view())
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Wide(shape={self.shape}, wq={self.wq}, plane={self.flat.shape[2]})"


@kernel("void(float32[:, :, ::1], int64, int64, int64, int64)", cache=True, nogil=True)
def zero_garbage(out, ho, wq, wo, lp):  # type: ignore[no-untyped-def]
    """Zero what a direct conv computed in ``out`` (B, C, L) besides its pixels: the columns
    wo..wq of each of its ho rows, and the positions ho * wq .. lp. (numpy's strided
    assignment of the same took 8-11 us per ResNet-50 conv, this 1-3 us.)"""
    for b in range(out.shape[0]):
        for c in range(out.shape[1]):
            row = out[b, c]
            for oh in range(ho):
                for ow in range(oh * wq + wo, oh * wq + wq):
                    row[ow] = np.float32(0.0)
            for q in range(ho * wq, lp):
                row[q] = np.float32(0.0)


@kernel(
    "void(float32[:, :, ::1], int64, uint8[::1], float32, float32[:, ::1])",
    fastmath={"reassoc", "contract"},
    cache=True,
    nogil=True,
)
def _plane_means(flat, offset, pixel, scale, out):  # type: ignore[no-untyped-def]
    # out[b, c] = scale * the sum of plane (b, c)'s positions offset + q where pixel[q]: one
    # flat pass per plane, garbage columns selected out (not multiplied by 0, which would
    # turn an inf there into NaN); reassociated so that it vectorizes (no nnan/ninf: a NaN
    # or inf pixel still gives NaN or inf)
    for b in range(flat.shape[0]):
        for c in range(flat.shape[1]):
            seg = flat[b, c, offset : offset + pixel.shape[0]]
            total = np.float32(0.0)
            for q in range(pixel.shape[0]):
                v = seg[q]
                total += v if pixel[q] else np.float32(0.0)
            out[b, c] = total * scale


@functools.lru_cache(maxsize=64)
def _pixels(ho: int, wq: int, wo: int) -> np.ndarray:
    # 1 where flat position q = oh * wq + ow is a pixel (ow < wo), 0 on the garbage columns;
    # read only
    return np.ascontiguousarray(np.tile(np.arange(wq) < wo, ho), dtype=np.uint8)


def plane_means(x: Wide) -> np.ndarray:
    """(B, C) float32: the mean of each channel's pixels of ``x``, read where they are
    (GlobalAveragePool of a conv's output: cropping ResNet-50's last (1, 2048, 7, 9) took
    52 us, this 13 us; a loop over its 7-pixel rows, 31 us)."""
    n, c = x.flat.shape[:2]
    out = np.empty((n, c), np.float32)
    if x.ho and x.wo:
        scale = np.float32(1.0 / (x.ho * x.wo))
        _plane_means(x.flat, x.offset, _pixels(x.ho, x.wq, x.wo), scale, out)
    else:  # no pixels: the mean of nothing, as numpy gives it
        out.fill(np.nan)
    return out


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
    if isinstance(res, Wide) and res.offset == 0:
        return res.flat, _geometry(ho, wo, res.wq)
    r = np.ascontiguousarray(res, dtype=np.float32)
    return r.reshape(n, c, ho * wo), _geometry(ho, wo, wo)
