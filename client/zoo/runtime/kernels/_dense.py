"""Dense kernels: numpy BLAS (sgemm) for linear, im2col + sgemm for conv.

The bias, a conv's residual and the activation run as one pass (``block_epilogue``) over
each block of the GEMM output, by the thread that computed the block, right after it: the
block is still in that core's cache, and there is no parallel launch of its own (on a busy
2-core box a woken worker thread starts 0.05-0.3 ms late, and a ResNet-50 at batch 1 had
about 50 such launches for its epilogues alone).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._activation import Activation, activation_code
from ._buffers import empty
from ._numba_env import numba, slp_vectorize
from ._pool import matmul_into, matmul_split, run_parallel, threads
from ._types import ConvGeometry, Kernel, Scratch

with slp_vectorize():
    from ._common import act

    _BLOCK_SIG = (
        "void(float32[:, ::1], int64, int64, int64, int64, float32[::1], float32[::1], "
        "float32[:, ::1], int64, float32, float32)"
    )

    @numba.njit(_BLOCK_SIG, cache=True, nogil=True)
    def block_epilogue(y, r0, r1, c0, c1, brow, bcol, res, code, alpha, beta):  # type: ignore[no-untyped-def]
        # y[r0:r1, c0:c1] in place: act(y + brow[:, None] + bcol[None, :] + res), where an
        # empty brow / bcol / res (length 0) is left out. Run by the thread that computed
        # that block of a GEMM, right after it: the block is still in its cache, and no
        # parallel launch of its own (a woken worker starts late on a busy machine).
        # the loops index slices from 0: with a start of c0 numba cannot tell the index is
        # non-negative and adds wraparound code to every access (5-30x slower, unvectorized)
        nc = c1 - c0
        bc = bcol[c0:c1]
        for i in range(r0, r1):
            row = y[i, c0:c1]
            if bcol.shape[0] != 0:
                for j in range(nc):
                    row[j] += bc[j]
            bi = brow[i] if brow.shape[0] != 0 else np.float32(0.0)
            if res.shape[0] != 0:
                rr = res[i, c0:c1]
                if code == 1:
                    for j in range(nc):
                        v = row[j] + bi + rr[j]
                        row[j] = v if v > 0 else np.float32(0.0)
                else:
                    for j in range(nc):
                        row[j] = act(row[j] + bi + rr[j], code, alpha, beta)
            elif code == 1:  # spelled out: a select per element, vectorized
                for j in range(nc):
                    v = row[j] + bi
                    row[j] = v if v > 0 else np.float32(0.0)
            elif code != 0 or brow.shape[0] != 0:
                for j in range(nc):
                    row[j] = act(row[j] + bi, code, alpha, beta)

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


_NONE1 = np.zeros(0, np.float32)  # "no bias" / "no residual" for block_epilogue
_NONE2 = np.zeros((0, 1), np.float32)


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


def dense_linear(weight: np.ndarray, bias: np.ndarray | None, act_: Activation | None) -> Kernel:
    """y = act(x @ weight + bias [+ residual]) with sgemm; ``weight`` (K, N)."""
    w = np.ascontiguousarray(weight, dtype=np.float32)
    code, alpha, beta = activation_code(act_)
    b = _NONE1 if bias is None else np.ascontiguousarray(bias, np.float32)
    fa, fb = np.float32(alpha), np.float32(beta)
    finish = None
    if bias is not None or code != 0:

        def finish(y: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
            block_epilogue(y, r0, r1, c0, c1, _NONE1, b, _NONE2, code, fa, fb)

    def run(x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        # (M, K) @ (K, N) -> (M, N), bias, residual (M, N) and activation by each part on
        # its own block
        x = np.ascontiguousarray(x, np.float32)
        if residual is None:
            return matmul_split(x, w, finish)
        res = np.ascontiguousarray(residual, np.float32)

        def finish_res(y: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
            block_epilogue(y, r0, r1, c0, c1, _NONE1, b, res, code, fa, fb)

        return matmul_split(x, w, finish_res)

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
    code, alpha, beta = activation_code(act_)
    fa, fb = np.float32(alpha), np.float32(beta)
    bias_c = _NONE1 if bias is None else np.ascontiguousarray(bias, np.float32)
    pointwise = geo.kernel == (1, 1) and geo.strides == (1, 1) and not any(geo.pads)
    scratch = Scratch()
    t, left, bot, r = geo.pads
    plain = bias is None and code == 0  # no epilogue at all without a residual

    def finisher(res: np.ndarray | None) -> Callable[[np.ndarray, int, int, int, int], None]:
        # the epilogue of one image's (Cout, Ho*Wo) output block: bias per channel (row),
        # then the residual, then the activation
        r2 = _NONE2 if res is None else res.reshape(cout, -1)

        def finish(y: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
            if res is not None or not plain:
                block_epilogue(y, r0, r1, c0, c1, bias_c, _NONE1, r2, code, fa, fb)

        return finish

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

        def res(i: int) -> np.ndarray | None:
            return None if residual is None else residual[i]

        if pointwise and g == 1:
            xs = x.reshape(n, c, h * wd)
            if n == 1:  # (Cout, Cin) @ (Cin, H*W), split over the pool
                matmul_into(w[0], xs[0], y[0], finisher(res(0)))
            else:

                def pointwise_image(i: int) -> None:
                    np.matmul(w[0], xs[i], out=y[i])
                    finisher(res(i))(y[i], 0, cout, 0, ho * wo)

                parallel_images(n, pointwise_image)
            return y4
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
            finisher(res(i))(y[i], 0, cout, 0, ho * wo)

        if n == 1 and g == 1 and threads() > 1:
            # batch 1: the im2col copy split by input channels, then the GEMM, both over
            # the pool (the copy on one thread was a serial part of every conv: 7.4 MB for
            # ResNet-50's stem)
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
            matmul_into(w[0], cols, y[0], finisher(res(0)))
        else:
            parallel_images(n, image)
        return y4

    return Kernel(run, "dense-im2col")
