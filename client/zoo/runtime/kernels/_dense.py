"""Dense kernels: numpy BLAS (sgemm) for linear, im2col + sgemm for conv.

The bias and activation run as one fused parallel pass over the GEMM output instead of
two numpy passes (each a full read and write of the output).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._activation import Activation, activation_code
from ._buffers import empty
from ._numba_env import numba, slp_vectorize
from ._pool import matmul_rows, matmul_split, run_parallel, threads
from ._types import ConvGeometry, Kernel, Scratch

with slp_vectorize():
    from ._common import act

    @numba.njit(
        "void(float32[:, :, ::1], float32[::1], int64, float32, float32)",
        parallel=True,
        cache=True,
        nogil=True,
    )
    def _channel_epilogue(y, bias, code, alpha, beta):  # type: ignore[no-untyped-def]
        # y (A, C, L) in place: y[a, c, :] = act(y[a, c, :] + bias[c])
        na, nc, nl = y.shape
        for t in numba.prange(na * nc):
            a = t // nc
            c = t - a * nc
            bc = bias[c]
            row = y[a, c]
            for i in range(nl):
                row[i] = act(row[i] + bc, code, alpha, beta)

    @numba.njit(
        "void(float32[:, ::1], float32[::1], int64, float32, float32)",
        parallel=True,
        cache=True,
        nogil=True,
    )
    def _row_epilogue(y, bias, code, alpha, beta):  # type: ignore[no-untyped-def]
        # y (M, N) in place: y[m, :] = act(y[m, :] + bias)
        for m in numba.prange(y.shape[0]):
            row = y[m]
            for i in range(y.shape[1]):
                row[i] = act(row[i] + bias[i], code, alpha, beta)

    _ADD_ACT_SIG = "void(float32[:, ::1], float32[:, ::1], int64, float32, float32)"

    @numba.njit(_ADD_ACT_SIG, parallel=True, cache=True, nogil=True)
    def _residual_epilogue(y, r, code, alpha, beta):  # type: ignore[no-untyped-def]
        # y (A, L) in place: y = act(y + r), r (A, L)
        for a in numba.prange(y.shape[0]):
            row, res = y[a], r[a]
            for i in range(y.shape[1]):
                row[i] = act(row[i] + res[i], code, alpha, beta)

    @numba.njit(_ADD_ACT_SIG, cache=True, nogil=True)
    def _residual_epilogue_serial(y, r, code, alpha, beta):  # type: ignore[no-untyped-def]
        for a in range(y.shape[0]):
            row, res = y[a], r[a]
            for i in range(y.shape[1]):
                row[i] = act(row[i] + res[i], code, alpha, beta)

    _ACT_SIG = "void(float32[:, ::1], int64, float32, float32)"

    @numba.njit(_ACT_SIG, parallel=True, cache=True, nogil=True)
    def _act_epilogue(y, code, alpha, beta):  # type: ignore[no-untyped-def]
        for a in numba.prange(y.shape[0]):
            row = y[a]
            for i in range(y.shape[1]):
                row[i] = act(row[i], code, alpha, beta)

    @numba.njit(_ACT_SIG, cache=True, nogil=True)
    def _act_epilogue_serial(y, code, alpha, beta):  # type: ignore[no-untyped-def]
        for a in range(y.shape[0]):
            row = y[a]
            for i in range(y.shape[1]):
                row[i] = act(row[i], code, alpha, beta)


def apply_activation_inplace(y: np.ndarray, act_: Activation | None, serial: bool) -> None:
    """y = act(y) in place, y C-contiguous (N, C, H, W) float32; a no-op without ``act_``.

    A pass of its own, vectorized: applying it inside the generated sparse conv kernels,
    to each stored tile, compiled to a branch per element, and a ReLU on random-signed
    outputs mispredicted half of them (ResNet-50's 7x7 stem: 1.0 ms bare, 2.7 ms with it).
    """
    code, alpha, beta = activation_code(act_)
    if code == 0:
        return
    fn = _act_epilogue_serial if serial else _act_epilogue
    fn(y.reshape(y.shape[0] * y.shape[1], -1), code, np.float32(alpha), np.float32(beta))


def add_residual(
    y: np.ndarray, residual: np.ndarray, act_: Activation | None, serial: bool = False
) -> None:
    """y = act(y + residual) in place; both C-contiguous (N, C, H, W) float32 of one shape.

    Fused into the conv that produced ``y`` (the planner folds a residual Add and its Relu
    into the Conv): while y is still in cache, instead of two passes of 50-200 MB arrays
    from memory at batch 64 (14% + 5% of a sparse ResNet-50 run).
    """
    code, alpha, beta = activation_code(act_)
    rows = y.shape[0] * y.shape[1]
    fn = _residual_epilogue_serial if serial else _residual_epilogue
    fn(y.reshape(rows, -1), residual.reshape(rows, -1), code, np.float32(alpha), np.float32(beta))


def _epilogue_args(
    bias: np.ndarray | None, act_: Activation | None, n: int
) -> tuple[np.ndarray, int, np.float32, np.float32] | None:
    """(bias, code, alpha, beta) for the epilogue, or None when there is nothing to do."""
    code, alpha, beta = activation_code(act_)
    if bias is None and code == 0:
        return None
    b = np.zeros(n, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    return b, code, np.float32(alpha), np.float32(beta)


def dense_linear(weight: np.ndarray, bias: np.ndarray | None, act_: Activation | None) -> Kernel:
    """y = act(x @ weight + bias) with sgemm; ``weight`` (K, N)."""
    w = np.ascontiguousarray(weight, dtype=np.float32)
    epi = _epilogue_args(bias, act_, w.shape[1])

    def run(x: np.ndarray) -> np.ndarray:
        y = matmul_split(np.ascontiguousarray(x, np.float32), w)  # (M, K) @ (K, N) -> (M, N)
        if epi is not None:
            _row_epilogue(y, *epi)
        return y

    return Kernel(run, "dense-blas")


def im2col_into(xp: np.ndarray, geo: ConvGeometry, ho: int, wo: int, cols: np.ndarray) -> None:
    """Patches of one padded image (C, Hp, Wp) into ``cols`` (C * kH * kW, Ho * Wo)."""
    c = xp.shape[0]
    sc, sh, sw = xp.strides
    (kh, kw), (dh, dw), (st_h, st_w) = geo.kernel, geo.dilations, geo.strides
    view = as_strided(
        xp,
        shape=(c, kh, kw, ho, wo),
        strides=(sc, sh * dh, sw * dw, sh * st_h, sw * st_w),
        writeable=False,
    )
    np.copyto(cols.reshape(c, kh, kw, ho, wo), view)


def parallel_images(n: int, image: Callable[[int], object]) -> None:
    """Call ``image(i)`` for i in range(n), the images split over the GEMM pool."""
    t = min(threads(), n)

    def images(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            image(i)

    run_parallel([partial(images, p * n // t, (p + 1) * n // t) for p in range(t)])


def dense_conv(
    weight: np.ndarray, bias: np.ndarray | None, geo: ConvGeometry, act_: Activation | None
) -> Kernel:
    """Conv as one sgemm per image and group: (Cout_g, Cg*kH*kW) @ (Cg*kH*kW, Ho*Wo).

    1x1 stride-1 unpadded convs skip im2col (the image already is the GEMM operand).
    """
    cout = weight.shape[0]
    g = geo.group
    cout_g = cout // g
    # (Cout, Cg, kH, kW) -> (G, Cout_g, Cg*kH*kW)
    w = np.ascontiguousarray(weight, dtype=np.float32).reshape(g, cout_g, -1)
    epi = _epilogue_args(bias, act_, cout)
    pointwise = geo.kernel == (1, 1) and geo.strides == (1, 1) and not any(geo.pads)
    scratch = Scratch()
    t, left, bot, r = geo.pads

    epi_bias = _epilogue_args(bias, None, cout)  # with a residual: the activation goes last

    def _finish(y4: np.ndarray, y: np.ndarray, residual: np.ndarray | None) -> np.ndarray:
        if residual is None:
            if epi is not None:
                _channel_epilogue(y, *epi)
            return y4
        if epi_bias is not None:
            _channel_epilogue(y, *epi_bias)
        add_residual(y4, residual, act_)
        return y4

    def run(x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, c, h, wd = x.shape
        ho, wo = geo.out_size(h, wd)
        if residual is not None:
            residual = np.ascontiguousarray(residual, dtype=np.float32)
            if residual.shape != (n, cout, ho, wo):
                raise ValueError(f"conv residual must have shape {(n, cout, ho, wo)}")
        y4 = empty((n, cout, ho, wo))  # returned as allocated: a view would not be recycled
        y = y4.reshape(n, cout, ho * wo)
        if pointwise and g == 1:
            xs = x.reshape(n, c, h * wd)
            if n == 1:  # (Cout, Cin) @ (Cin, H*W), output channels split over the pool
                matmul_rows(w[0], xs[0], y[0])
            else:
                parallel_images(n, lambda i: np.matmul(w[0], xs[i], out=y[i]))
            return _finish(y4, y, residual)
        if any(geo.pads):
            xp = scratch.get("xp", (n, c, h + t + bot, wd + left + r))  # zero border
            xp[:, :, t : t + h, left : left + wd] = x
        else:
            xp = x
        cg = c // g
        ck = cg * geo.kernel[0] * geo.kernel[1]

        def image(i: int) -> None:
            cols = scratch.get("cols", (ck, ho * wo))  # per worker thread
            for gi in range(g):
                im2col_into(xp[i, gi * cg : (gi + 1) * cg], geo, ho, wo, cols)
                out = y[i, gi * cout_g : (gi + 1) * cout_g]
                np.matmul(w[gi], cols, out=out)

        if n == 1 and g == 1 and threads() > 1:
            # batch 1: the im2col copy split by input channels, then the GEMM by output
            # channels, both over the pool (the copy on one thread was a serial part of
            # every conv: 7.4 MB for ResNet-50's stem)
            cols = scratch.get("cols1", (ck, ho * wo))
            kk = geo.kernel[0] * geo.kernel[1]
            spans = [(p * c // threads(), (p + 1) * c // threads()) for p in range(threads())]
            run_parallel(
                [
                    partial(im2col_into, xp[0, lo:hi], geo, ho, wo, cols[lo * kk : hi * kk])
                    for lo, hi in spans
                    if hi > lo
                ]
            )
            matmul_rows(w[0], cols, y[0])
        else:
            parallel_images(n, image)
        return _finish(y4, y, residual)

    return Kernel(run, "dense-im2col")
