"""Source generator for the kernels in ``_generated/``.

Two reasons to generate source instead of writing it by hand:

* numba cannot keep a runtime-sized accumulator array in registers, so the batched kernels
  spell out one scalar accumulator per batch column (``a0 ... a63``); LLVM's SLP vectorizer
  then packs them into AVX-512 registers.
* every kernel exists twice, ``name`` (``parallel=True``, prange) and ``name_serial``: a
  parallel launch costs 5-200 us (the latter on a loaded machine), more than a small layer's
  whole work. They must be distinct functions: numba's cache key ignores the flags. The big
  kernels also have ``name_span``, their prange loop's body as a plain function that both
  call (``_codegen_text.span_variants``): it compiles 5-8x faster than inside a prange.

The generated modules are shipped in the package (numba caches only functions defined in
real files) and a test checks that they are current:

    python -m zoo.runtime.kernels._codegen   # rewrite _generated/*.py
"""

from __future__ import annotations

from pathlib import Path

from ._codegen_bmm import bmm_module
from ._codegen_conv import conv_module, dense_conv_module
from ._codegen_text import HEADER, both_variants, span_variants

GENERATED = Path(__file__).parent / "_generated"
LINEAR_WIDTHS = (64, 32, 16, 8)

LONG_ROW = 128  # nonzeros from which csr_b1 runs a row as one vectorized loop
# (x, indptr, indices, values, bias, code, alpha, beta, out)
_B1_SIG = (
    "void(float32[:, ::1], int64[::1], uint16[::1], float32[::1], float32[::1], "
    "int64, float32, float32, float32[:, ::1])"
)

_B1_BODY = f'''
def csr_b1(x, indptr, indices, values, bias, code, alpha, beta, out):
    """out[m, n] = act(x[m] . W^T[n] + bias[n]); x (M, K), out (M, N), W^T (N, K) in CSR."""
    # Compiled with REDUCE_FASTMATH. A row of {LONG_ROW} nonzeros or more is one plain loop,
    # which LLVM vectorizes (its sum reordered, x's entries fetched by AVX-512 gathers); a
    # shorter one, mostly left to the vector loop's scalar tail, goes through eight scalar
    # accumulators instead (see _sparse_linear). Unsigned 64-bit positions: signed ones
    # make numba emit negative-index wraparound code on every load.
    n_out = indptr.shape[0] - 1
    one = _u64(1)
    eight = _u64(8)
    for n in PRANGE(n_out):
        lo = _u64(indptr[n])
        hi = _u64(indptr[n + 1])
        end8 = lo + (hi - lo) // eight * eight
        for m in range(x.shape[0]):
            xm = x[m]
            if hi - lo >= _u64({LONG_ROW}):
                total = np.float32(0.0)
                for j in range(lo, hi):
                    total += values[j] * xm[_u64(indices[j])]
            else:
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                a4 = np.float32(0.0)
                a5 = np.float32(0.0)
                a6 = np.float32(0.0)
                a7 = np.float32(0.0)
                j = lo
                while j < end8:
                    a0 += values[j] * xm[_u64(indices[j])]
                    a1 += values[j + one] * xm[_u64(indices[j + one])]
                    a2 += values[j + _u64(2)] * xm[_u64(indices[j + _u64(2)])]
                    a3 += values[j + _u64(3)] * xm[_u64(indices[j + _u64(3)])]
                    a4 += values[j + _u64(4)] * xm[_u64(indices[j + _u64(4)])]
                    a5 += values[j + _u64(5)] * xm[_u64(indices[j + _u64(5)])]
                    a6 += values[j + _u64(6)] * xm[_u64(indices[j + _u64(6)])]
                    a7 += values[j + _u64(7)] * xm[_u64(indices[j + _u64(7)])]
                    j += eight
                while j < hi:
                    a0 += values[j] * xm[_u64(indices[j])]
                    j += one
                total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
            out[m, n] = act(total + bias[n], code, alpha, beta)
'''

# (xf, mp, indptr, indices, values, bias, b_lo, b_hi, code, alpha, beta, out)
_TILED_SIG = (
    "void(float32[::1], int64, int64[::1], uint16[::1], float32[::1], float32[::1], "
    "int64, int64, int64, float32, float32, float32[:, ::1])"
)
PREFETCH_AHEAD = 16  # nonzeros; CSR.indices carries this many padding entries


ROW_BLOCK = 16  # output features per task: their tiles are written out together


def tiled_body(width: int) -> str:
    """Source of ``csr_t{width}``: out[b, n] for batch columns b in [b_lo, b_hi).

    ``xf`` is x transposed and padded, (K, mp) flattened; ``out`` is (mp, N): the padding
    rows are computed too and sliced off by the caller. A task takes ROW_BLOCK output
    features: each one's tile goes to a small buffer, transposed, then the block is written
    to ``out`` 16 features (64 bytes) at a time with the activation applied. (A tile stored
    straight into out is 64 scalar stores N * 4 bytes apart, all in one L1 set; producing
    out transposed needs a transpose afterwards: each cost 30-55% of the call on 768x3072.)
    The block's write-out was a loop of act() calls reading the buffer 64 floats apart,
    which stayed scalar: about 170 cycles per feature and tile, half the call at K = 96.
    With the buffer transposed and one loop per activation code, each row's 16 features
    are one vector store: per call, 1 thread, M = 128, 90% sparse, K x N 768x3072 0.87 ->
    0.71 ms, 768x768 0.24 -> 0.20, 3072x768 0.95 -> 0.90, 768x2304 0.66 -> 0.53, 96x3072
    0.36 -> 0.20 (relu: 0.82 -> 0.70 on 768x3072). Each nonzero prefetches the xT row of
    the nonzero PREFETCH_AHEAD steps later.
    """
    return _tiled_source(width, transposed=False)


def tiled_transposed_body(width: int) -> str:
    """Source of ``csr_tt{width}``: :func:`tiled_body` with the output transposed, ``out``
    (N, mp): a tile is one contiguous row slice out[n, b0:b0+width], stored straight from
    the accumulators. That is the layout the next sparse layer reads (xT), so a chain of
    sparse layers (an MLP) skips the buffer-and-scatter here and the transpose there."""
    return _tiled_source(width, transposed=True)


def _tiled_source(width: int, *, transposed: bool) -> str:
    # the two tiled kernels differ only in where a finished tile goes
    acc = [f"a{i}" for i in range(width)]
    name, doc = (
        (f"csr_tt{width}", f"out (N, mp) gets out[n, b0:b0+{width}] = acc")
        if transposed
        else (f"csr_t{width}", f"acc += w[n, k] * xT[k, b0:b0+{width}]")
    )
    lines = [
        f"def {name}(xf, mp, indptr, indices, values, bias, b_lo, b_hi, code, alpha, beta, out):",
        f'    """{width} batch columns per tile: {doc}."""',
        "    ump = _u64(mp)",
        "    n_out = indptr.shape[0] - 1",
        f"    for nb in PRANGE((n_out + {ROW_BLOCK - 1}) // {ROW_BLOCK}):",
    ]
    if not transposed:
        lines += [f"        buf = np.empty({ROW_BLOCK * width}, np.float32)"]
    lines += [
        f"        n0 = nb * {ROW_BLOCK}",
        f"        n1 = min(n_out, n0 + {ROW_BLOCK})",
        f"        for b0 in range(b_lo, b_hi, {width}):",
        "            ub0 = _u64(b0)",
        "            for n in range(n0, n1):",
        "                lo = _u64(indptr[n])",
        "                hi = _u64(indptr[n + 1])",
        "                bn = bias[n]",
    ]
    lines += [f"                {a} = bn" for a in acc]
    lines += [
        "                j = lo",
        "                while j < hi:  # unsigned positions: no negative-index wraparound code",
        "                    v = values[j]",
        "                    base = _u64(indices[j]) * ump + ub0",
        f"                    pf = _u64(indices[j + _u64({PREFETCH_AHEAD})]) * ump + ub0",
        "                    prefetch(xf, pf)",
        "                    prefetch(xf, pf + _u64(16))",
    ]
    lines += [f"                    {a} += v * xf[base + _u64({i})]" for i, a in enumerate(acc)]
    lines += ["                    j += _u64(1)"]
    if transposed:
        lines += ["                row = out[n]"]
        lines += [
            f"                row[ub0 + _u64({i})] = act({a}, code, alpha, beta)"
            for i, a in enumerate(acc)
        ]
        return "\n".join(lines) + "\n"
    # the tile goes into buf transposed (batch column i's features side by side), so that
    # each output row's block is written by a contiguous loop; one loop per activation
    # code, as a call of act() per element kept it scalar (see tiled_body)
    lines += ["                o = _u64(n - n0)"]
    lines += [f"                buf[_u64({i * ROW_BLOCK}) + o] = {a}" for i, a in enumerate(acc)]
    lines += [
        "            nn = n1 - n0",
        f"            for i in range({width}):",
        f"                src = buf[i * {ROW_BLOCK} : i * {ROW_BLOCK} + nn]",
        "                dst = out[b0 + i, n0:n1]",
        "                if code == 0:",
        "                    for j in range(nn):",
        "                        dst[j] = src[j]",
        "                elif code == 1:",
        "                    for j in range(nn):",
        "                        v = src[j]",
        "                        dst[j] = v if v > 0 else np.float32(0.0)",
        "                else:",
        "                    for j in range(nn):",
        "                        dst[j] = act(src[j], code, alpha, beta)",
    ]
    return "\n".join(lines) + "\n"


GEMM_COLS = 32  # output features per register tile of the dense GEMM (two AVX-512 vectors)
GEMM_ROWS = (8, 1)  # rows per register tile: 8, or 1 for a single row (M = 1)
# rows of a weight panel (k steps) ahead that the 8-row tile prefetches. In a whole model
# the weights come from memory (BERT-base's 340 MB), and the first row tile of each panel
# streams it: dense 4-layer BERT-base at batch 1, A/B in one process, 0.984x the time with
# 16 ahead, 0.960x with 32, 0.958x with 64; 2 layers at batch 16 0.993x; with 32, the
# 12-layer model 0.958x. Not in the 1-row tile (M = 1), which only streams the weight: the
# dense MLP at batch 1 took 1.064x with it.
GEMM_PREFETCH = 32

# (xt, mp, wp, k, bias, res, code, alpha, beta, out, m, n)
_GEMM_SIG = (
    "void(float32[::1], int64, float32[::1], int64, float32[::1], float32[::1], int64, "
    "float32, float32, float32[::1], int64, int64)"
)


def gemm_body(rows: int) -> str:
    """Source of ``gemm_r{rows}``: out (M, N) = act(x @ W + bias [+ res]), W packed.

    ``wp`` is W (K, N) packed once at plan time into panels of GEMM_COLS output features,
    (P, K, GEMM_COLS) flattened, zero past N; ``xt`` is x transposed, (K, Mp) flattened, Mp
    a multiple of ``rows`` (padding columns zero). A task is one panel: for each ``rows``
    rows, a register tile of rows x GEMM_COLS accumulators (16 AVX-512 registers at 8
    rows); per k, two vector loads of the panel and ``rows`` broadcasts of xT feed 2 x rows
    FMAs. The tile goes through ``buf`` and is written with the bias, the residual ``res``
    ((M, N) flattened, or empty) and the activation. No per-call packing of W, which is
    what sgemm spends its time on at these sizes (see ``_dense``).
    """
    cols = GEMM_COLS
    acc = [[f"a{r}_{j}" for j in range(cols)] for r in range(rows)]
    lines = [
        f"def gemm_r{rows}(xt, mp, wp, k, bias, res, code, alpha, beta, out, m, n):",
        f'    """{rows}-row tiles over panels of {cols} output features."""',
        "    ump = _u64(mp)",
        "    uk = _u64(k)",
        f"    for p in PRANGE((n + {cols - 1}) // {cols}):",
        f"        buf = np.empty({rows * cols}, np.float32)",
        f"        wbase = _u64(p) * uk * _u64({cols})",
        f"        c0 = p * {cols}",
        f"        cw = min({cols}, n - c0)",
        f"        for i0 in range(0, mp, {rows}):",
        "            ui0 = _u64(i0)",
    ]
    lines += [f"            {a} = np.float32(0.0)" for row in acc for a in row]
    lines += [
        "            kk = _u64(0)",
        "            while kk < uk:  # unsigned positions: no negative-index wraparound code",
        f"                wo = wbase + kk * _u64({cols})",
        "                xo = kk * ump + ui0",
    ]
    if rows > 1:  # the panel row GEMM_PREFETCH steps ahead (two cache lines); see GEMM_PREFETCH
        lines += [
            f"                prefetch(wp, wo + _u64({GEMM_PREFETCH * cols}))",
            f"                prefetch(wp, wo + _u64({GEMM_PREFETCH * cols + 16}))",
        ]
    lines += [f"                w{j} = wp[wo + _u64({j})]" for j in range(cols)]
    lines += [f"                x{r} = xt[xo + _u64({r})]" for r in range(rows)]
    lines += [
        f"                {acc[r][j]} += x{r} * w{j}" for r in range(rows) for j in range(cols)
    ]
    lines += ["                kk += _u64(1)"]
    lines += [
        f"            buf[_u64({r * cols + j})] = {acc[r][j]}"
        for r in range(rows)
        for j in range(cols)
    ]
    lines += [
        f"            for r in range(min({rows}, m - i0)):",
        "                ob = (i0 + r) * n + c0",
        f"                tb = r * {cols}",
        "                for j in range(cw):",
        "                    v = buf[tb + j] + bias[c0 + j]",
        "                    if res.shape[0] != 0:",
        "                        v += res[ob + j]",
        "                    out[ob + j] = act(v, code, alpha, beta)",
    ]
    return "\n".join(lines) + "\n"


def gemm_module() -> str:
    """The whole ``_generated/dense_gemm.py`` module."""
    parts = [HEADER] + [span_variants(gemm_body(r), _GEMM_SIG) for r in GEMM_ROWS]
    table = ", ".join(f"{r}: (gemm_r{r}, gemm_r{r}_serial)" for r in GEMM_ROWS)
    parts.append(f"GEMM = {{{table}}}\n")
    return "\n\n".join(parts)


def linear_module() -> str:
    """The whole ``_generated/csr_linear.py`` module."""
    parts = [HEADER, both_variants(_B1_BODY, _B1_SIG, fastmath="REDUCE_FASTMATH")]
    parts += [span_variants(tiled_body(w), _TILED_SIG) for w in LINEAR_WIDTHS]
    parts += [span_variants(tiled_transposed_body(w), _TILED_SIG) for w in LINEAR_WIDTHS]
    tiled = ", ".join(f"{w}: (csr_t{w}, csr_t{w}_serial)" for w in LINEAR_WIDTHS)
    parts.append(f"TILED = {{{tiled}}}\n")
    tiled_t = ", ".join(f"{w}: (csr_tt{w}, csr_tt{w}_serial)" for w in LINEAR_WIDTHS)
    parts.append(f"TILED_T = {{{tiled_t}}}\n")
    return "\n\n".join(parts)


def modules() -> dict[str, str]:
    """File name -> source of every generated module."""
    return {
        "csr_linear.py": linear_module(),
        "dense_gemm.py": gemm_module(),
        "conv.py": conv_module(),
        "dense_conv.py": dense_conv_module(),
        "bmm.py": bmm_module(),
    }


def write() -> None:
    """Rewrite the generated modules in place."""
    GENERATED.mkdir(exist_ok=True)
    (GENERATED / "__init__.py").write_text('"""Generated kernels; see ``_codegen``."""\n')
    for name, src in modules().items():
        (GENERATED / name).write_text(src)


if __name__ == "__main__":
    write()
