"""Dense GEMMs split over numba's OpenMP threads, each part a call of numpy's cblas_sgemm.

Each part of a split GEMM is one single-threaded sgemm (OpenBLAS is pinned to 1 thread by
``set_threads``) on a block of the output, followed by that block's epilogue (bias, residual,
activation) while the block is still in the core's cache - one OpenMP launch per GEMM. Why
on the OpenMP threads rather than Python threads: see ``_cblas``; these threads spin
briefly between launches (``_numba_env``), which a pool of Python threads cannot share a
2-core box with.

Measured in isolation, 2 threads, 1 ms between calls (ms, Python pool -> OpenMP threads,
spinning): 256x64x3136 0.70 -> 0.61, 64x576x3136 1.60 -> 1.36, 128x1152x784 1.25 -> 1.20.
Inside whole models the gain is in the other kernels' launches: see the runtime README.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic as _intrinsic

from ._cblas import NO_TRANS, ROW_MAJOR
from ._numba_env import kernel, numba, slp_vectorize

# numba's own type hints make mypy count ``typingctx`` as a call argument
intrinsic: Any = _intrinsic


@intrinsic
def _sgemm(typingctx, fn, ilp64, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):  # type: ignore[no-untyped-def]
    """cblas_sgemm(RowMajor, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc) through the
    function's address ``fn`` (int64), with 64-bit integers if ``ilp64`` else 32-bit.

    The address is an argument, not a constant: it differs between processes, and a
    constant would make the kernels uncacheable.
    """
    sig = types.void(
        types.int64, types.boolean, types.int64, types.int64, types.int64, types.int64,
        types.int64, types.int64, types.int64, types.int64, types.int64, types.float32,
        types.int64, types.int64,
    )  # fmt: skip

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn_, ilp, ta_, tb_, m_, n_, k_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args
        i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
        vp = ir.IntType(8).as_pointer()
        one = ir.Constant(f32, 1.0)
        enums = [ir.Constant(i32, ROW_MAJOR), builder.trunc(ta_, i32), builder.trunc(tb_, i32)]
        ptrs = [builder.inttoptr(p, vp) for p in (a_, b_, c_)]

        def call(it: ir.IntType) -> None:
            def cast(v: ir.Value) -> ir.Value:
                return v if it is i64 else builder.trunc(v, it)

            fnty = ir.FunctionType(
                ir.VoidType(), [i32, i32, i32, it, it, it, f32, vp, it, vp, it, f32, vp, it]
            )
            builder.call(
                builder.inttoptr(fn_, fnty.as_pointer()),
                [
                    *enums, cast(m_), cast(n_), cast(k_), one, ptrs[0], cast(lda_), ptrs[1],
                    cast(ldb_), beta_, ptrs[2], cast(ldc_),
                ],
            )  # fmt: skip

        _by_width(builder, ilp, call)
        return context.get_dummy_value()

    return sig, codegen


def _by_width(builder: ir.IRBuilder, ilp64: ir.Value, call: Any) -> None:
    # call(i64) if ilp64 else call(i32): the BLAS's integer width, a run-time flag
    with builder.if_else(builder.icmp_unsigned("!=", ilp64, ir.Constant(ilp64.type, 0))) as (
        wide,
        narrow,
    ):
        with wide:
            call(ir.IntType(64))
        with narrow:
            call(ir.IntType(32))


@intrinsic
def _addr(typingctx, arr):  # type: ignore[no-untyped-def]
    """The address of ``arr``'s first element as int64 (``arr.ctypes.data`` is uint64 in
    numba, and uint64 + int64 is float64 there)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        data = context.make_array(signature.args[0])(context, builder, value=args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))

    return types.int64(arr), codegen


NONE1 = np.zeros(0, np.float32)  # "no bias" / "no residual" for block_epilogue
NONE2 = np.zeros((0, 1), np.float32)

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

    # (fn, ilp64, a, b, k, out, by_cols, bounds, brow, bcol, res, code, alpha, beta)
    _PARTS_SIG = (
        "void(int64, boolean, int64, int64, int64, float32[:, ::1], boolean, int64[::1], "
        "float32[::1], float32[::1], float32[:, ::1], int64, float32, float32)"
    )

    @kernel(_PARTS_SIG, parallel=True, cache=True, nogil=True)
    def gemm_parts(fn, ilp64, a, b, k, out, by_cols, bounds, brow, bcol, res, code, alpha, beta):  # type: ignore[no-untyped-def]
        # out = A @ B, (M, K) @ (K, N), A and B C-contiguous at addresses a and b (read-only
        # operands - constants - are passed by address: numba types them apart), in
        # len(bounds) - 1 parts: column blocks [bounds[p], bounds[p + 1]) of out if by_cols,
        # else row blocks; then each part's block_epilogue on its own block. (Computing a
        # part in blocks of 256 KB, each with its epilogue while in L2, measured no faster:
        # dense ResNet-50 at batch 1, 0.997x.)
        m, n = out.shape
        for p in numba.prange(bounds.shape[0] - 1):
            lo, hi = bounds[p], bounds[p + 1]
            r0, r1, c0, c1 = (0, m, lo, hi) if by_cols else (lo, hi, 0, n)
            if r1 > r0 and c1 > c0:
                _sgemm(
                    fn, ilp64, NO_TRANS, NO_TRANS, r1 - r0, c1 - c0, k, a + 4 * r0 * k, k,
                    b + 4 * c0, n, np.float32(0.0), _addr(out) + 4 * (r0 * n + c0), n,
                )  # fmt: skip
                block_epilogue(out, r0, r1, c0, c1, brow, bcol, res, code, alpha, beta)

    # (fn, ilp64, pa, pb, pc, ta, tb, m, n, k, lda, ldb, ldc, bounds)
    _STACK_SIG = (
        "void(int64, boolean, int64[::1], int64[::1], int64[::1], int64, int64, int64, int64, "
        "int64, int64, int64, int64, int64[::1])"
    )

    @kernel(_STACK_SIG, parallel=True, cache=True, nogil=True)
    def gemm_stack(fn, ilp64, pa, pb, pc, ta, tb, m, n, k, lda, ldb, ldc, bounds):  # type: ignore[no-untyped-def]
        # for every i: C_i = op(A_i) @ op(B_i), the matrices given by their addresses;
        # entries [bounds[p], bounds[p + 1]) are part p
        for p in numba.prange(bounds.shape[0] - 1):
            for i in range(bounds[p], bounds[p + 1]):
                _sgemm(
                    fn, ilp64, ta, tb, m, n, k, pa[i], lda, pb[i], ldb, np.float32(0.0), pc[i],
                    ldc,
                )  # fmt: skip
