"""Generated source of the stacked matmul kernel (see ``_codegen`` and ``_bmm``)."""

from __future__ import annotations

from ._codegen_text import HEADER, span_variants

BMM_ROWS = 8  # rows of A per register tile
BMM_COLS = 32  # columns of B per register tile (two AVX-512 vectors)

# (a, aoff, ars, acs, b, boff, brs, bcs, out, m, n, k, rb)
_BMM_SIG = (
    "void(float32[::1], int64[::1], int64, int64, float32[::1], int64[::1], int64, int64, "
    "float32[::1], int64, int64, int64, int64)"
)


def _tile(rows: int, indent: str) -> list[str]:
    """Lines computing out rows i0 .. i0+rows, columns j0 .. j0+BMM_COLS: per k, ``rows``
    broadcasts of A and two vectors of a row of B feed rows x 2 FMAs."""
    cols = BMM_COLS
    acc = [[f"a{r}_{j}" for j in range(cols)] for r in range(rows)]
    lines = [f"{a} = np.float32(0.0)" for row in acc for a in row]
    lines += [
        "ua = abase + _u64(i0) * uars",
        "kk = _u64(0)",
        "while kk < uk:  # unsigned positions: no negative-index wraparound code",
        "    wo = bbase + kk * ubrs + _u64(j0)",
        "    xo = ua + kk * uacs",
    ]
    lines += [f"    w{j} = bsrc[wo + _u64({j})]" for j in range(cols)]
    lines += [f"    x{r} = a[xo + _u64({r}) * uars]" for r in range(rows)]
    lines += [f"    {acc[r][j]} += x{r} * w{j}" for r in range(rows) for j in range(cols)]
    lines += ["    kk += _u64(1)"]
    for r in range(rows):
        lines += [f"oo = obase + _u64(i0 + {r}) * _u64(n) + _u64(j0)"]
        lines += [f"out[oo + _u64({j})] = {acc[r][j]}" for j in range(cols)]
    return [indent + line for line in lines]


def bmm_body() -> str:
    """Source of ``bmm``: out[s] = A[s] @ B[s] for every matrix s of a stack.

    ``a``, ``b`` are flat views of the operands' memory; matrix s of A starts at
    ``aoff[s]`` with element (i, k) at ``i * ars + k * acs`` (any strides: A is only
    broadcast), matrix s of B at ``boff[s]`` with (k, j) at ``k * brs + j * bcs``; ``out``
    is (S, M, N) flattened. A task is ``rb`` rows (a multiple of BMM_ROWS) of one matrix:
    when B's rows are not contiguous (``bcs != 1``: attention's K^T), the task first copies
    B into a (K, N) buffer; then register tiles of BMM_ROWS x BMM_COLS, a 1-row tile for the
    last rows, and a plain loop for the columns past the last multiple of BMM_COLS.
    """
    lines = [
        "def bmm(a, aoff, ars, acs, b, boff, brs, bcs, out, m, n, k, rb):",
        '    """Tasks of rb rows of one matrix of the stack each."""',
        "    nrb = (m + rb - 1) // rb",
        "    uars = _u64(ars)",
        "    uacs = _u64(acs)",
        "    uk = _u64(k)",
        "    nfull = n // 32 * 32",
        "    for t in PRANGE(aoff.shape[0] * nrb):",
        "        s = t // nrb",
        "        r0 = (t - s * nrb) * rb",
        "        r1 = min(m, r0 + rb)",
        "        abase = _u64(aoff[s])",
        "        obase = _u64(s) * _u64(m) * _u64(n)",
        "        if bcs == 1 or n == 1:",
        "            bsrc = b",
        "            bbase = _u64(boff[s])",
        "            ubrs = _u64(brs)",
        "        else:  # B's columns are its contiguous axis: its rows copied out once",
        "            bsrc = np.empty(k * n, np.float32)",
        "            src0 = boff[s]",
        "            for j in range(n):",
        "                col = src0 + j * bcs",
        "                for kk in range(k):",
        "                    bsrc[kk * n + j] = b[col + kk * brs]",
        "            bbase = _u64(0)",
        "            ubrs = _u64(n)",
        "        i0 = r0",
        f"        while i0 + {BMM_ROWS} <= r1:",
        "            for j0 in range(0, nfull, 32):",
    ]
    lines += _tile(BMM_ROWS, " " * 16)
    lines += [
        f"            i0 += {BMM_ROWS}",
        "        while i0 < r1:",
        "            for j0 in range(0, nfull, 32):",
    ]
    lines += _tile(1, " " * 16)
    lines += [
        "            i0 += 1",
        "        if nfull < n:  # the last columns, every row of the task",
        "            for i in range(r0, r1):",
        "                ua = abase + _u64(i) * uars",
        "                for j in range(nfull, n):",
        "                    acc = np.float32(0.0)",
        "                    for kk in range(k):",
        "                        bo = bbase + _u64(kk) * ubrs + _u64(j)",
        "                        acc += a[ua + _u64(kk) * uacs] * bsrc[bo]",
        "                    out[obase + _u64(i) * _u64(n) + _u64(j)] = acc",
    ]
    return "\n".join(lines) + "\n"


def bmm_module() -> str:
    """The whole ``_generated/bmm.py`` module."""
    return "\n\n".join([HEADER, span_variants(bmm_body(), _BMM_SIG)])
