"""Dense 3x3 stride-1 conv by Winograd F(2x2, 3x3): 16 GEMMs with 2.25x fewer multiply-adds.

Why: the dense 3x3 convs of a ResNet-50 ran at 0.6-0.7x onnxruntime through im2col + sgemm
(OpenBLAS's sgemm reaches 75-90 GFLOP/s on this box where onnxruntime's conv kernels reach
~110, and im2col adds a 9x copy of the input). With F(2x2, 3x3) each 2x2 output tile comes
from a 4x4 input tile: V = B^T d B per input channel, M[k] = U[k] @ V[k] for the 16
positions k of the 4x4 transform (U = G g G^T, transformed once at plan time), Y = A^T M A.
Measured GEMM time per call, 1 thread (ms, im2col -> Winograd): 64ch 56x56 3.04 -> 1.43;
128ch 28x28 2.70 -> 1.35; 256ch 14x14 (49 tiles) 2.73 -> 1.47; but 512ch 7x7 3.28 -> 3.26,
as 16 tiles make narrow GEMMs - so an image with fewer than ``MIN_TILES`` tiles goes to
the fallback kernel (im2col then; the tiled direct conv of ``_dense_direct`` now).

Numerics: F(2x2, 3x3) only adds, subtracts and halves (exact in binary), so its error is that
of a float32 GEMM with a 4x-larger dynamic range of the operands; the tests compare it
with onnxruntime. Larger tiles (F(4x4, 3x3)) save more work but lose 2-3 decimal digits.

One image's V and M are (16, C, T) and (16, Cout, T) float32 (3.2 MB each at 64ch 56x56):
a batch runs image by image, one image per worker, so they stay in that core's L2/L3.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._activation import Activation, activation_code
from ._buffers import empty
from ._cblas import find_sgemm
from ._common import act
from ._dense import add_residual, parallel_images
from ._gemm import gemm_planes
from ._numba_env import FASTMATH, kernel, numba
from ._pool import run_parallel, threads
from ._types import ConvGeometry, Kernel, Scratch

MIN_TILES = 32  # fewer 2x2 output tiles per image: the 16 GEMMs are too narrow to win

_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)


def transform_weight(weight: np.ndarray) -> np.ndarray:
    """(Cout, Cin, 3, 3) -> U (16, Cout, Cin) float32, U[4 * r + c] = (G g G^T)[r, c]."""
    u = np.einsum("ra,oiab,cb->rcoi", _G, weight.astype(np.float64), _G)  # (4, 4, Cout, Cin)
    return np.ascontiguousarray(u.reshape(16, *weight.shape[:2]), dtype=np.float32)


_IN_SIG = "void(float32[:, :, ::1], int64, int64, int64, int64, float32[::1], int64)"


@numba.njit(inline="always")
def _px(x, c, r, col):  # type: ignore[no-untyped-def]
    # x[c, r, col], zero outside the image (the conv's padding)
    if r < 0 or r >= x.shape[1] or col < 0 or col >= x.shape[2]:
        return np.float32(0.0)
    return x[c, r, col]


@numba.njit(inline="always", fastmath=FASTMATH)
def _in_channel(x, c, top, left, th, tw, v, ps):  # type: ignore[no-untyped-def]
    # V[:, c, tile] = B^T d B for every 4x4 input tile d of channel c of one image; plane k
    # of V starts at k * ps in the flat ``v``
    h, w = x.shape[1], x.shape[2]
    base = c * th * tw
    for i in range(th):
        r0 = 2 * i - top
        inner_rows = r0 >= 0 and r0 + 4 <= h
        for j in range(tw):
            c0 = 2 * j - left
            t = base + i * tw + j
            if inner_rows and c0 >= 0 and c0 + 4 <= w:  # no padding inside: plain loads
                d00, d01, d02, d03 = (
                    x[c, r0, c0],
                    x[c, r0, c0 + 1],
                    x[c, r0, c0 + 2],
                    x[c, r0, c0 + 3],
                )
                d10, d11, d12, d13 = (
                    x[c, r0 + 1, c0],
                    x[c, r0 + 1, c0 + 1],
                    x[c, r0 + 1, c0 + 2],
                    x[c, r0 + 1, c0 + 3],
                )
                d20, d21, d22, d23 = (
                    x[c, r0 + 2, c0],
                    x[c, r0 + 2, c0 + 1],
                    x[c, r0 + 2, c0 + 2],
                    x[c, r0 + 2, c0 + 3],
                )
                d30, d31, d32, d33 = (
                    x[c, r0 + 3, c0],
                    x[c, r0 + 3, c0 + 1],
                    x[c, r0 + 3, c0 + 2],
                    x[c, r0 + 3, c0 + 3],
                )
            else:
                d00, d01 = _px(x, c, r0, c0), _px(x, c, r0, c0 + 1)
                d02, d03 = _px(x, c, r0, c0 + 2), _px(x, c, r0, c0 + 3)
                d10, d11 = _px(x, c, r0 + 1, c0), _px(x, c, r0 + 1, c0 + 1)
                d12, d13 = _px(x, c, r0 + 1, c0 + 2), _px(x, c, r0 + 1, c0 + 3)
                d20, d21 = _px(x, c, r0 + 2, c0), _px(x, c, r0 + 2, c0 + 1)
                d22, d23 = _px(x, c, r0 + 2, c0 + 2), _px(x, c, r0 + 2, c0 + 3)
                d30, d31 = _px(x, c, r0 + 3, c0), _px(x, c, r0 + 3, c0 + 1)
                d32, d33 = _px(x, c, r0 + 3, c0 + 2), _px(x, c, r0 + 3, c0 + 3)
            # rows: B^T d  (B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
            e00, e01, e02, e03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
            e10, e11, e12, e13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
            e20, e21, e22, e23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
            e30, e31, e32, e33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
            # columns: (B^T d) B
            v[t], v[1 * ps + t], v[2 * ps + t], v[3 * ps + t] = (
                e00 - e02,
                e01 + e02,
                e02 - e01,
                e01 - e03,
            )
            v[4 * ps + t], v[5 * ps + t], v[6 * ps + t], v[7 * ps + t] = (
                e10 - e12,
                e11 + e12,
                e12 - e11,
                e11 - e13,
            )
            v[8 * ps + t], v[9 * ps + t], v[10 * ps + t], v[11 * ps + t] = (
                e20 - e22,
                e21 + e22,
                e22 - e21,
                e21 - e23,
            )
            v[12 * ps + t], v[13 * ps + t], v[14 * ps + t], v[15 * ps + t] = (
                e30 - e32,
                e31 + e32,
                e32 - e31,
                e31 - e33,
            )


@kernel(_IN_SIG, parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _input_parallel(x, top, left, th, tw, v, ps):  # type: ignore[no-untyped-def]
    for c in numba.prange(x.shape[0]):
        _in_channel(x, c, top, left, th, tw, v, ps)


@kernel(_IN_SIG, fastmath=FASTMATH, cache=True, nogil=True)
def _input_serial(x, top, left, th, tw, v, ps):  # type: ignore[no-untyped-def]
    for c in range(x.shape[0]):
        _in_channel(x, c, top, left, th, tw, v, ps)


_OUT_SIG = (
    "void(float32[::1], int64, int64, float32[::1], int64, float32, float32, float32[:, :, ::1])"
)


@numba.njit(inline="always", fastmath=FASTMATH)
def _out_channel(m, ps, co, tw, bias, code, alpha, beta, y):  # type: ignore[no-untyped-def]
    # y[co] = act(A^T M[:, co, tile] A + bias) for every tile, cropped to (Ho, Wo)
    ho, wo = y.shape[1], y.shape[2]
    bn = bias[co]
    th = (ho + 1) // 2
    base = co * th * tw
    for i in range(th):
        for j in range(tw):
            t = base + i * tw + j
            m00, m01, m02, m03 = m[t], m[1 * ps + t], m[2 * ps + t], m[3 * ps + t]
            m10, m11, m12, m13 = m[4 * ps + t], m[5 * ps + t], m[6 * ps + t], m[7 * ps + t]
            m20, m21, m22, m23 = m[8 * ps + t], m[9 * ps + t], m[10 * ps + t], m[11 * ps + t]
            m30, m31, m32, m33 = m[12 * ps + t], m[13 * ps + t], m[14 * ps + t], m[15 * ps + t]
            # rows: A^T m  (A^T = [[1, 1, 1, 0], [0, 1, -1, -1]])
            p0, p1 = m00 + m10 + m20, m10 - m20 - m30
            q0, q1 = m01 + m11 + m21, m11 - m21 - m31
            r0, r1 = m02 + m12 + m22, m12 - m22 - m32
            s0, s1 = m03 + m13 + m23, m13 - m23 - m33
            oi, oj = 2 * i, 2 * j
            y[co, oi, oj] = act(p0 + q0 + r0 + bn, code, alpha, beta)
            if oj + 1 < wo:
                y[co, oi, oj + 1] = act(q0 - r0 - s0 + bn, code, alpha, beta)
            if oi + 1 < ho:
                y[co, oi + 1, oj] = act(p1 + q1 + r1 + bn, code, alpha, beta)
                if oj + 1 < wo:
                    y[co, oi + 1, oj + 1] = act(q1 - r1 - s1 + bn, code, alpha, beta)


@kernel(_OUT_SIG, parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _output_parallel(m, ps, tw, bias, code, alpha, beta, y):  # type: ignore[no-untyped-def]
    for co in numba.prange(y.shape[0]):
        _out_channel(m, ps, co, tw, bias, code, alpha, beta, y)


@kernel(_OUT_SIG, fastmath=FASTMATH, cache=True, nogil=True)
def _output_serial(m, ps, tw, bias, code, alpha, beta, y):  # type: ignore[no-untyped-def]
    for co in range(y.shape[0]):
        _out_channel(m, ps, co, tw, bias, code, alpha, beta, y)


def winograd_applies(weight: np.ndarray, geo: ConvGeometry) -> bool:
    """Whether ``winograd_conv`` computes this conv: 3x3, stride 1, dilation 1, one group
    (any pads: taps outside the image read zero)."""
    return (
        weight.shape[2:] == (3, 3)
        and geo.strides == (1, 1)
        and geo.dilations == (1, 1)
        and geo.group == 1
    )


class Winograd:
    """A planned F(2x2, 3x3) conv; ``run_image`` computes one image into ``y``."""

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray | None,
        geo: ConvGeometry,
        act_: Activation | None,
    ) -> None:
        self.u = transform_weight(np.asarray(weight, np.float32))
        self.cout, self.cin = self.u.shape[1], self.u.shape[2]
        self.bias = np.zeros(self.cout, np.float32) if bias is None else bias.astype(np.float32)
        self.geo = geo
        self.act = act_
        self.scratch = Scratch()

    def _planes(self, name: str, size: int) -> tuple[np.ndarray, int]:
        """A flat buffer of 16 planes of ``size`` floats and its plane stride. The stride is
        64 bytes past a multiple of 4 KB: planes a multiple of 4 KB apart map to one L1 set,
        and the transforms, which write or read all 16 planes per tile, thrashed it (input
        transform of 64ch 56x56: 2.4 ms against 0.3 ms for the same bytes at 128ch 28x28)."""
        ps = size + (16 - size) % 1024
        return self.scratch.get(name, (16 * ps,)), ps

    def tiles(self, ho: int, wo: int) -> int:
        """2x2 output tiles of one image."""
        return ((ho + 1) // 2) * ((wo + 1) // 2)

    def run_image(self, x: np.ndarray, y: np.ndarray, code: int, parallel: bool) -> None:
        """y (Cout, Ho, Wo) = act_code(conv(x (C, H, W)) + bias); ``parallel``: use all
        threads for this one image (numba prange, the GEMM parts too), else this thread."""
        ho, wo = y.shape[1], y.shape[2]
        th, tw = (ho + 1) // 2, (wo + 1) // 2
        t = th * tw
        top, left = self.geo.pads[0], self.geo.pads[1]
        vf, vps = self._planes("v", self.cin * t)
        mf, mps = self._planes("m", self.cout * t)
        (_input_parallel if parallel else _input_serial)(x, top, left, th, tw, vf, vps)
        v = as_strided(vf, (16, self.cin, t), (vps * 4, t * 4, 4))
        m = as_strided(mf, (16, self.cout, t), (mps * 4, t * 4, 4))
        parts = threads() if parallel else 1
        sgemm = find_sgemm()
        if parts > 1 and sgemm is not None:  # the 16 GEMMs split over the kernel threads
            bounds = np.array([p * 16 // parts for p in range(parts + 1)], np.int64)
            gemm_planes(sgemm.gemm, sgemm.ilp64, self.u, vf, vps, mf, mps, t, bounds)
        elif parts > 1:  # ... or over the Python pool
            spans = [(p * 16 // parts, (p + 1) * 16 // parts) for p in range(parts)]
            run_parallel([partial(_gemms, self.u, v, m, lo, hi) for lo, hi in spans])
        else:
            np.matmul(self.u, v, out=m)
        _, alpha, beta = activation_code(self.act)
        fa, fb = np.float32(alpha), np.float32(beta)
        (_output_parallel if parallel else _output_serial)(mf, mps, tw, self.bias, code, fa, fb, y)


def _gemms(u: np.ndarray, v: np.ndarray, m: np.ndarray, lo: int, hi: int) -> None:
    np.matmul(u[lo:hi], v[lo:hi], out=m[lo:hi])


def winograd_conv(wg: Winograd, fallback: Kernel) -> Kernel:
    """The kernel: Winograd when an image has at least ``MIN_TILES`` output tiles, else
    ``fallback`` (the tiled direct conv)."""
    code = activation_code(wg.act)[0]
    cout = wg.cout

    def run(x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, _, h, w = x.shape
        ho, wo = wg.geo.out_size(h, w)
        if wg.tiles(ho, wo) < MIN_TILES:
            return fallback(x, residual)
        if residual is not None:
            residual = np.ascontiguousarray(residual, dtype=np.float32)
            if residual.shape != (n, cout, ho, wo):
                raise ValueError(f"conv residual must have shape {(n, cout, ho, wo)}")
        y = empty((n, cout, ho, wo))
        kcode = code if residual is None else 0  # with a residual, the activation goes last
        if n == 1:
            wg.run_image(x[0], y[0], kcode, parallel=True)
        else:
            parallel_images(n, lambda i: wg.run_image(x[i], y[i], kcode, parallel=False))
        if residual is not None:
            add_residual(y, residual, wg.act)
        return y

    return Kernel(run, "dense-winograd")
