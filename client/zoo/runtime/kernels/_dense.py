"""Dense kernels: a packed-weight GEMM for linear, im2col + sgemm for grouped convs.

(Dense convs of one group go to ``_dense_direct``'s tiled kernel; ``dense_conv`` here
serves grouped convs, and the tests check it beside the others.)

In the sgemm paths, the bias, a conv's residual and the activation run as one pass
(``block_epilogue``) over each block of the GEMM output, by the thread that computed the
block, right after it: the block is still in that core's cache, and there is no parallel
launch of its own (on a busy 2-core box a woken worker thread starts 0.05-0.3 ms late, and
a ResNet-50 at batch 1 had about 50 such launches for its epilogues alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._activation import Activation, activation_code
from ._buffers import empty
from ._codegen import GEMM_COLS, GEMM_ROWS
from ._gemm import NONE1
from ._numba_env import kernel, numba, slp_vectorize
from ._pool import SPLIT_MIN_WORK, Epilogue, matmul_into, run_parallel, threads
from ._transpose import transpose_to_work
from ._types import ConvGeometry, Kernel, Scratch

with slp_vectorize():
    from ._common import act
    from ._generated.dense_gemm import GEMM

    _IM2COL_SIG = (
        "void(float32[:, :, ::1], int64, int64, int64, int64, int64, int64, int64, int64, "
        "int64, int64, float32[:, ::1])"
    )

    @kernel(_IM2COL_SIG, parallel=True, cache=True, nogil=True)
    def im2col_parallel(x, kh, kw, sh, sw, dh, dw, top, left, ho, wo, cols):  # type: ignore[no-untyped-def]
        # cols[(c * kh + i) * kw + j, oh * wo + ow] = x[c, ih, iw] with ih = oh * sh + i * dh
        # - top and iw = ow * sw + j * dw - left, zero outside the image (the padding): one
        # image (C, H, W), its rows of cols split over the threads
        h, w = x.shape[1], x.shape[2]
        for r in numba.prange(x.shape[0] * kh * kw):
            c, i, j = r // (kh * kw), r // kw % kh, r % kw
            row = cols[r]
            shift = j * dw - left
            # the output columns whose input column lies inside the image
            lo = min(wo, max(0, (-shift + sw - 1) // sw))
            hi = max(lo, min(wo, (w - 1 - shift) // sw + 1))
            for oh in range(ho):
                ih = oh * sh + i * dh - top
                dst = row[oh * wo : (oh + 1) * wo]
                if ih < 0 or ih >= h:
                    for q in range(wo):
                        dst[q] = np.float32(0.0)
                    continue
                src = x[c, ih]
                for q in range(lo):
                    dst[q] = np.float32(0.0)
                if sw == 1:
                    seg = src[lo + shift : hi + shift]
                    out = dst[lo:hi]
                    for q in range(hi - lo):
                        out[q] = seg[q]
                else:
                    for q in range(lo, hi):
                        dst[q] = src[q * sw + shift]
                for q in range(hi, wo):
                    dst[q] = np.float32(0.0)

    _ADD_ACT_SIG = "void(float32[:, ::1], float32[:, ::1], int64, float32, float32)"

    @kernel(_ADD_ACT_SIG, parallel=True, cache=True, nogil=True)
    def _residual_epilogue(y, r, code, alpha, beta):  # type: ignore[no-untyped-def]
        # y (A, L) in place: y = act(y + r), r (A, L)
        for a in numba.prange(y.shape[0]):
            row, res = y[a], r[a]
            for i in range(y.shape[1]):
                row[i] = act(row[i] + res[i], code, alpha, beta)

    @kernel(_ADD_ACT_SIG, cache=True, nogil=True)
    def _residual_epilogue_serial(y, r, code, alpha, beta):  # type: ignore[no-untyped-def]
        for a in range(y.shape[0]):
            row, res = y[a], r[a]
            for i in range(y.shape[1]):
                row[i] = act(row[i] + res[i], code, alpha, beta)


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


_L2_HALF = 1 << 19  # bytes of xT one chunk of rows may take: half the 1 MB L2


def dense_linear(weight: np.ndarray, bias: np.ndarray | None, act_: Activation | None) -> Kernel:
    """y = act(x @ weight + bias [+ residual]); ``weight`` (K, N), packed once here.

    The weight is packed at plan time into panels of GEMM_COLS output features (``wp``, see
    ``_codegen.gemm_body``); a call transposes x (M, K) into xT and runs register tiles of
    8 rows (1 when M = 1) x 32 features over the panels, bias, residual and activation
    applied as each tile is written. This replaces numpy's sgemm, which packs the weight on
    every call: onnxruntime prepacks it at load, and that alone was its lead (MLAS with the
    weight as a graph input ran at OpenBLAS's speed). Per call, 2 threads, ms, sgemm split
    over the threads -> this kernel -> onnxruntime: 128x768x768 0.77 -> 0.67 -> 0.66,
    128x768x3072 3.43 -> 2.83 -> 2.86, 128x3072x768 3.36 -> 2.76 -> 3.13, 64x4096x4096
    13.8 -> 9.9 -> 11.8; at M = 1 (1 row, streaming W): 1024x4096 0.140 -> 0.101, 4096x4096
    1.86 -> 1.52, 4096x1000 0.128 -> 0.100. Rows go in chunks whose xT fits in half the L2.
    Open: at large M it is slower than sgemm was - dense BERT-base at batch 64 (M = 8192),
    2 layers, 1.08-1.10x -> 0.98-1.00x onnxruntime; larger chunks did not help.
    """
    w = np.asarray(weight, dtype=np.float32)
    k, n = w.shape
    panels = -(-n // GEMM_COLS)
    padded = np.zeros((k, panels * GEMM_COLS), np.float32)
    padded[:, :n] = w
    # (P, K, GEMM_COLS): panel p holds columns p * GEMM_COLS ... of every row of W
    wp = np.ascontiguousarray(padded.reshape(k, panels, GEMM_COLS).transpose(1, 0, 2)).ravel()
    del padded
    b = np.zeros(panels * GEMM_COLS, np.float32)
    if bias is not None:
        b[:n] = bias
    code, alpha, beta = activation_code(act_)
    fa, fb = np.float32(alpha), np.float32(beta)

    def run(x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != k:
            raise ValueError(f"linear input must be (M, {k}), got {x.shape}")
        m = x.shape[0]
        res = NONE1
        if residual is not None:
            if residual.shape != (m, n):
                raise ValueError(f"linear residual must have shape {(m, n)}, got {residual.shape}")
            res = np.ascontiguousarray(residual, np.float32).reshape(-1)
        y = empty((m, n))
        if m == 0:
            return y
        serial = numba.get_num_threads() == 1 or m * k * n < SPLIT_MIN_WORK
        if m == 1:  # (1, K): already xT
            GEMM[1][serial](x.reshape(-1), 1, wp, k, b, res, code, fa, fb, y.reshape(-1), 1, n)
            return y
        rows = GEMM_ROWS[0]
        # rows in chunks whose xT stays in L2: each panel re-reads the whole xT, and at
        # M = 8192 (BERT-base at batch 64) that came from memory (0.82x onnxruntime)
        chunk = max(64, _L2_HALF // (4 * k) // rows * rows)
        for r0 in range(0, m, chunk):
            r1 = min(m, r0 + chunk)
            mc = r1 - r0
            mp = -(-mc // rows) * rows
            xt = transpose_to_work(x[r0:r1], mp, serial=serial)
            if mp > mc:  # padding columns: computed, never stored; zero, not stale values
                xt[:, mc:] = 0
            rc = res if res.size == 0 else res[r0 * n : r1 * n]
            out = y[r0:r1].reshape(-1)
            GEMM[rows][serial](xt.reshape(-1), mp, wp, k, b, rc, code, fa, fb, out, mc, n)
        return y

    return Kernel(run, "dense-packed")


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
    """Call ``image(i)`` once for each i in range(n), on the Python thread pool.

    The images are handed out one at a time (each worker takes the next one when it is done),
    not split into one fixed block per worker: on a shared machine one core is often slower
    for a while, and a layer waited for the worker whose block landed there. Whole models at
    batch 64 on 2 threads, A/B in one process, handed out against fixed halves: 90% ResNet-50
    0.950x and 0.956x the time (median of 10 and 12 rounds; 0.75-1.10x), dense 0.970x.
    """
    t = min(threads(), n)
    todo = iter(range(n))  # shared: next() on a range iterator is atomic (the GIL)

    def images() -> None:
        for i in todo:
            image(i)

    run_parallel([images] * t)


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
    bias_c = NONE1 if bias is None else np.ascontiguousarray(bias, np.float32)
    # the epilogue of one image's (Cout, Ho*Wo) output: bias per channel (row), then the
    # residual, then the activation
    base = Epilogue(brow=bias_c, code=code, alpha=alpha, beta=beta)
    pointwise = geo.kernel == (1, 1) and geo.strides == (1, 1) and not any(geo.pads)
    scratch = Scratch()
    t, left, bot, r = geo.pads
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.strides, geo.dilations

    def epilogue(res: np.ndarray | None) -> Epilogue:
        return base if res is None else replace(base, res=res.reshape(cout, -1))

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
                matmul_into(w[0], xs[0], y[0], epilogue(res(0)))
            else:

                def pointwise_image(i: int) -> None:
                    np.matmul(w[0], xs[i], out=y[i])
                    epilogue(res(i)).apply(y[i], 0, cout, 0, ho * wo)

                parallel_images(n, pointwise_image)
            return y4
        cg = c // g
        ck = cg * kh * kw
        if n == 1 and g == 1 and threads() > 1:
            # batch 1: the im2col copy (padding included) in parallel, then the GEMM, both
            # on the kernel threads (the copy on one thread was a serial part of every
            # conv: 7.4 MB for ResNet-50's stem)
            cols = scratch.get("cols1", (ck, ho * wo))
            im2col_parallel(x[0], kh, kw, sh, sw, dh, dw, t, left, ho, wo, cols)
            matmul_into(w[0], cols, y[0], epilogue(res(0)))
            return y4
        if any(geo.pads):
            xp = scratch.get("xp", (n, c, h + t + bot, wd + left + r))  # zero border
            xp[:, :, t : t + h, left : left + wd] = x
        else:
            xp = x

        def image(i: int) -> None:
            cols = scratch.get("cols", (ck, ho * wo))  # per worker thread
            for gi in range(g):
                im2col_into(xp[i, gi * cg : (gi + 1) * cg], geo, ho, wo, cols)
                out = y[i, gi * cout_g : (gi + 1) * cout_g]
                np.matmul(w[gi], cols, out=out)
            epilogue(res(i)).apply(y[i], 0, cout, 0, ho * wo)

        parallel_images(n, image)
        return y4

    return Kernel(run, "dense-im2col")
