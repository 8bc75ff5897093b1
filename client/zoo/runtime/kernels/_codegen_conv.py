"""Generated source of the direct conv kernel (see ``_codegen`` and ``_direct_conv``)."""

from __future__ import annotations

from ._codegen_text import HEADER, span_variants

MAIN_WIDTH = 128  # output positions per register tile of the main loop (eight vectors)
CONV_WIDTHS = (64, 32, 16, 8)  # the tiles of the remainder, largest first

# (xb, offs, segptr, values, bias, lp, parts, res, rg, wq, code, alpha, beta, out)
_CONV_SIG = (
    "void(float32[:, ::1], uint32[::1], int64[:, ::1], float32[::1], float32[::1], "
    "int64, int64, float32[:, :, ::1], int64[::1], int64, int64, float32, float32, "
    "float32[:, :, ::1])"
)


def _tile(width: int, q0: str, indent: str) -> list[str]:
    """Lines adding one segment of a row's taps (nonzeros lo .. hi, one block of input
    channels) to oo[q0:q0+width]: started from the bias in block 0, else from what the
    previous blocks left in ``oo``.

    The main tile (MAIN_WIDTH, eight vectors) keeps one set of accumulators: eight FMA
    chains are enough for two FMAs per cycle, and each nonzero's scalar work (its value,
    its offset, the loop) serves eight vectors. Per call, 1 thread, 90% sparse ResNet-50
    layers, against 64-wide tiles (before the channel blocks): 3x3 convs 0.90-0.96x the
    time, 1x1 at 14x14 0.92-0.93x, at 56x56 0.98-1.04x; whole models at batch 1, A/B:
    ResNet-50 90% 0.979x, 80% 0.986x, 95% 0.981x, MobileNetV2 0.989x.

    The narrower tiles of the remainder keep two sets, the segment's even nonzeros in one
    and its odd ones in the other: with one set a 64-wide tile has four FMA chains, each
    waiting for its last FMA (4 cycles), enough for the Zen 4's one 512-bit FMA per cycle,
    not for the Zen 5's two (whole ResNet-50, 90%, A/B: 0.970-0.976x the time)."""
    acc = [f"a{i}" for i in range(width)]
    acc2 = [f"c{i}" for i in range(width)] if width < MAIN_WIDTH else []
    lines = [f"uq0 = _u64({q0})", "if k == 0:"]
    lines += [f"    {a} = bn" for a in acc]
    lines += ["else:"]
    lines += [f"    {a} = oo[uq0 + _u64({i})]" for i, a in enumerate(acc)]
    lines += [f"{c} = np.float32(0.0)" for c in acc2]
    lines += ["j = lo"]
    if acc2:
        lines += [
            "while j + _u64(1) < hi:",
            "    v = values[j]",
            "    base = _u64(offs[j]) + uq0",
            "    v2 = values[j + _u64(1)]",
            "    base2 = _u64(offs[j + _u64(1)]) + uq0",
        ]
        lines += [f"    {a} += v * xi[base + _u64({i})]" for i, a in enumerate(acc)]
        lines += [f"    {c} += v2 * xi[base2 + _u64({i})]" for i, c in enumerate(acc2)]
        lines += ["    j += _u64(2)", "if j < hi:"]
    else:
        lines += ["while j < hi:"]
    lines += ["    v = values[j]", "    base = _u64(offs[j]) + uq0"]
    lines += [f"    {a} += v * xi[base + _u64({i})]" for i, a in enumerate(acc)]
    if not acc2:
        lines += ["    j += _u64(1)"]
    # stored through the unsigned position: with the signed q0 numba adds negative-index
    # wraparound code to each store, which kept them scalar (64 vmovss + cmov per tile;
    # unsigned: four vector stores, 1 thread per call 1.1-1.45x faster on ResNet-50 shapes)
    if acc2:
        pairs = enumerate(zip(acc, acc2, strict=True))
        lines += [f"oo[uq0 + _u64({i})] = {a} + {c}" for i, (a, c) in pairs]
    else:
        lines += [f"oo[uq0 + _u64({i})] = {a}" for i, a in enumerate(acc)]
    return [indent + line for line in lines]


def _segments(width: int, q0: str, indent: str) -> list[str]:
    """Lines running the ``width``-wide tile at ``q0`` over every channel block ``k`` and
    every row ``t`` of the task, block by block: a block's input window stays in L1 while
    all the task's rows read it. An empty segment past block 0 is skipped."""
    # The task's rows t = b * cout + co as a loop over images and, inside, a range of
    # channels: with (b, co) stepped along one loop over t (or t // cout per segment), the
    # blocked kernel ran at half the speed on a 1x1 conv at 7x7 (measured, 0.25 against
    # 0.13 ms; the generated code was not inspected).
    lines = [
        "for k in range(nblk):",
        "    for b in range(b_lo, b_end + 1):",
        "        xi = xb[b]",
        "        c_hi = co_end if b == b_end else cout",
        "        for co in range(co_lo if b == b_lo else 0, c_hi):",
        "            lo = _u64(segptr[k, co])",
        "            hi = _u64(segptr[k, co + 1])",
        "            if k == 0 or lo < hi:  # block 0 stores the bias even with no taps",
        "                oo = out[b, co]",
        "                bn = bias[co]",
    ]
    lines += _tile(width, q0, " " * 16)
    return [indent + line for line in lines]


def _row_epilogue(indent: str) -> list[str]:
    """Lines finishing row ``oo`` = out[b, co] in place: the residual ``res`` (B, Cout, L;
    only when its batch dimension is not 0) added at q = oh * wq + ow, then the activation,
    each in a loop that vectorizes. ``rg`` = (Ho, Wo, row stride of ``res``): the residual's
    pixel (oh, ow) is res[b, co, oh * rg[2] + ow] - a plain (Ho, Wo) plane, or another conv's
    output left in its own flat layout (``_wide.Wide``)."""
    lines = [
        "if res.shape[0] != 0:",
        "    rr = res[b, co]",
        "    wo = rg[1]",
        "    rwq = rg[2]",
        "    for oh in range(rg[0]):",
        "        orow = oo[oh * wq : oh * wq + wo]  # indexed from 0: no wraparound",
        "        rrow = rr[oh * rwq : oh * rwq + wo]",
        "        if code == 1:",
        "            for ow in range(wo):",
        "                v = orow[ow] + rrow[ow]",
        "                orow[ow] = v if v > 0 else np.float32(0.0)",
        "        else:",
        "            for ow in range(wo):",
        "                orow[ow] = act(orow[ow] + rrow[ow], code, alpha, beta)",
        "elif code == 1:  # spelled out: a select per element, vectorized",
        "    for i in range(lp):",
        "        v = oo[i]",
        "        oo[i] = v if v > 0 else np.float32(0.0)",
        "elif code != 0:",
        "    for i in range(lp):",
        "        oo[i] = act(oo[i], code, alpha, beta)",
    ]
    return [indent + line for line in lines]


def conv_body() -> str:
    """Source of ``conv_all``: out[b, co, :lp] for every image b and output channel co.

    ``xb`` (B, Lx) is each image padded (and split into stride phases) and flattened, so a
    weight w[co, ci, kh, kw] reads the input at a constant element offset ``offs[j]`` from
    the output's flat position q: out[b, co, q] = sum_j values[j] * xb[b, offs[j] + q].
    The nonzeros come sorted by block of input channels, then row: row co's nonzeros in
    block k are segptr[k, co] .. segptr[k, co + 1] (``segptr`` (K, Cout + 1)).

    One launch per conv: ``parts`` tasks (one per thread) each take a contiguous block of
    the B * Cout rows. For each MAIN_WIDTH-wide tile of positions, then for the remainder
    (a multiple of 8) as 64 + 32 + 16 + 8 wide tiles, the task runs the tile over its rows
    one channel block at a time (``_segments``): a block's input window (the block's
    channels at the tile's positions and its taps' reach) is sized to stay in L1
    (``_direct_conv``), where every row the task has reads it; the partial sums wait in
    ``out``. Then the task's rows get their epilogue: the residual ``res`` (B, Cout, L;
    only when its batch dimension is not 0; its geometry in ``rg``) at q = oh * wq + ow, and
    the activation, in its own vectorizable loop.

    Before, a task ran each row over all its tiles with every input channel at once, for
    chunks of positions whose input window stayed in L2: each nonzero's loads then came from
    L2, 6-9 cycles per nonzero of a 64-wide tile. Per call, 90% sparse ResNet-50 layers
    (blocks of 24-37 channels for the 3x3 convs, 240 for the 1x1), time against that: see
    ``_direct_conv``. (No software prefetch: measured with one of the row of the nonzero 16
    ahead, 1.014x the time in sum over ResNet-50's layers on the Zen 5 box.)
    """
    lines = [
        "def conv_all(xb, offs, segptr, values, bias, lp, parts, res, rg, wq, code, "
        "alpha, beta, out):",
        '    """The direct conv of every row of ``out`` in ``parts`` tasks."""',
        "    cout = out.shape[1]",
        "    nt = xb.shape[0] * cout",
        "    nblk = segptr.shape[0]",
        f"    full = lp // {MAIN_WIDTH} * {MAIN_WIDTH}",
        "    for p in PRANGE(parts):",
        "        t_lo = p * nt // parts",
        "        t_hi = (p + 1) * nt // parts",
        "        b_lo = t_lo // cout",
        "        co_lo = t_lo - b_lo * cout",
        "        b_end = (t_hi - 1) // cout if t_hi > t_lo else b_lo - 1  # the last image",
        "        co_end = t_hi - b_end * cout  # and its rows' end",
        f"        for q0 in range(0, full, {MAIN_WIDTH}):",
    ]
    lines += _segments(MAIN_WIDTH, "q0", " " * 12)
    lines += ["        qr = full"]
    for w in CONV_WIDTHS:
        lines += [f"        if lp - qr >= {w}:"]
        lines += _segments(w, "qr", " " * 12)
        lines += [f"            qr += {w}"]
    lines += [
        "        for t in range(t_lo, t_hi):",
        "            b = t // cout",
        "            co = t - b * cout",
        "            oo = out[b, co]",
    ]
    lines += _row_epilogue(" " * 12)
    return "\n".join(lines) + "\n"


def conv_module() -> str:
    """The whole ``_generated/conv.py`` module."""
    parts = [HEADER, span_variants(conv_body(), _CONV_SIG)]
    return "\n\n".join(parts)


DENSE_ROWS = 8  # output channels per register tile of the dense direct conv
DENSE_WIDTH = 32  # output positions per register tile (two AVX-512 vectors)
DENSE_PREFETCH = 128  # taps ahead whose weights each tap prefetches

# (xb, offs, wp, bias, lp, chunk, parts, res, rg, wq, code, alpha, beta, cout, out)
_DENSE_SIG = (
    "void(float32[:, ::1], uint32[::1], float32[:, :, ::1], float32[::1], int64, int64, "
    "int64, float32[:, :, ::1], int64[::1], int64, int64, float32, float32, int64, "
    "float32[:, :, ::1])"
)


def dense_conv_body() -> str:
    """Source of ``dense_conv_all``: the direct conv with dense weights, no im2col.

    Same flat input ``xb`` and tap offsets as :func:`conv_body`, but every tap of a row is
    present, so the register tile is DENSE_ROWS output channels x DENSE_WIDTH positions
    (8 x 32: sixteen AVX-512 accumulators): per tap, two vectors of input and eight
    broadcast weights feed sixteen FMAs - the input is loaded once for eight rows, where the
    sparse tile loads it once per nonzero. Each tap prefetches the weights DENSE_PREFETCH
    taps ahead (see ``_dense_direct``). ``wp`` (blocks, K, DENSE_ROWS) holds the weights packed
    once at plan time, a block's eight weights of a tap side by side (rows past ``cout`` are
    zero); ``out`` has blocks * DENSE_ROWS rows, of which the first ``cout`` are the conv's.
    Tasks are (image, block) pairs in ``parts`` contiguous runs; positions go in ``chunk``s
    whose input window stays in L2; then each task's rows get :func:`_row_epilogue`.
    """
    rows, width = DENSE_ROWS, DENSE_WIDTH
    acc = [[f"a{r}_{i}" for i in range(width)] for r in range(rows)]
    lines = [
        "def dense_conv_all(xb, offs, wp, bias, lp, chunk, parts, res, rg, wq, code, alpha, "
        "beta, cout, out):",
        '    """The dense direct conv of every row block of ``out`` in ``parts`` tasks."""',
        "    nb = wp.shape[0]",
        "    uk = _u64(wp.shape[1])",
        "    nt = xb.shape[0] * nb",
        "    for p in PRANGE(parts):",
        "        t_lo = p * nt // parts",
        "        t_hi = (p + 1) * nt // parts",
        "        for c_lo in range(0, lp, chunk):",
        "            c_hi = min(lp, c_lo + chunk)",
        "            for t in range(t_lo, t_hi):",
        "                b = t // nb",
        "                cb = t - b * nb",
        "                xi = xb[b]",
        "                wb = wp[cb]",
        "                wf = wb.reshape(wb.size)",
        "                ob = out[b]",
        f"                for q0 in range(c_lo, c_hi, {width}):",
        "                    uq0 = _u64(q0)",
    ]
    lines += [f"                    {a} = np.float32(0.0)" for row in acc for a in row]
    lines += [
        "                    j = _u64(0)",
        "                    while j < uk:",
        "                        base = _u64(offs[j]) + uq0",
        f"                        prefetch(wf, (j + _u64({DENSE_PREFETCH})) * _u64({rows}))",
        "                        wr = wb[j]",
    ]
    lines += [f"                        w{r} = wr[{r}]" for r in range(rows)]
    lines += [f"                        x{i} = xi[base + _u64({i})]" for i in range(width)]
    lines += [
        f"                        {acc[r][i]} += w{r} * x{i}"
        for r in range(rows)
        for i in range(width)
    ]
    lines += ["                        j += _u64(1)"]
    for r in range(rows):
        lines += [
            f"                    oo = ob[cb * {rows} + {r}]",
            f"                    bn = bias[cb * {rows} + {r}]",
        ]
        lines += [
            f"                    oo[uq0 + _u64({i})] = {a} + bn" for i, a in enumerate(acc[r])
        ]
    lines += [
        "        for t in range(t_lo, t_hi):",
        "            b = t // nb",
        "            cb = t - b * nb",
        f"            for co in range(cb * {rows}, min(cout, cb * {rows} + {rows})):",
        "                oo = out[b, co]",
    ]
    lines += _row_epilogue(" " * 16)
    return "\n".join(lines) + "\n"


def dense_conv_module() -> str:
    """The whole ``_generated/dense_conv.py`` module."""
    return "\n\n".join([HEADER, span_variants(dense_conv_body(), _DENSE_SIG)])
