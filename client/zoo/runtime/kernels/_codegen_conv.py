"""Generated source of the direct conv kernel (see ``_codegen`` and ``_direct_conv``)."""

from __future__ import annotations

from ._codegen_text import HEADER, span_variants

MAIN_WIDTH = 128  # output positions per register tile of the main loop (eight vectors)
CONV_WIDTHS = (64, 32, 16, 8)  # the tiles of the remainder, largest first

# (xb, offs, indptr, values, bias, lp, chunk, parts, res, rg, wq, code, alpha, beta, out)
_CONV_SIG = (
    "void(float32[:, ::1], uint32[::1], int64[::1], float32[::1], float32[::1], "
    "int64, int64, int64, float32[:, :, ::1], int64[::1], int64, int64, float32, float32, "
    "float32[:, :, ::1])"
)


def _main_tile(q0: str, indent: str) -> list[str]:
    """Lines computing oo[q0:q0+MAIN_WIDTH] = bias + the row's taps, in one set of
    accumulators: eight vectors are eight FMA chains, enough for two FMAs per cycle, and
    each nonzero's scalar work (its value, its offset, the loop) now serves eight vectors
    instead of four. Per call, 1 thread, 90% sparse ResNet-50 layers, time against 64-wide
    tiles: 3x3 convs 0.90-0.96x (0.99x at 7x7, where a map is one 64-wide tile), 1x1 at
    14x14 0.92-0.93x, 1x1 at 56x56 0.98-1.04x; in sum 0.956x (two sets of eight: 0.955x).
    Whole models at batch 1 on 2 threads, A/B in one process: ResNet-50 90% 0.979x, 80%
    0.986x, 95% 0.981x, MobileNetV2 90% 0.989x; at batch 16 0.999x. The cost: a cold
    compile of both conv_all variants takes 31 s instead of 21 s (once: numba caches it)."""
    acc = [f"a{i}" for i in range(MAIN_WIDTH)]
    lines = [f"uq0 = _u64({q0})"]
    lines += [f"{a} = np.float32(0.0)" for a in acc]
    lines += [
        "j = lo",
        "while j < hi:",
        "    v = values[j]",
        "    base = _u64(offs[j]) + uq0",
    ]
    lines += [f"    {a} += v * xi[base + _u64({i})]" for i, a in enumerate(acc)]
    lines += ["    j += _u64(1)"]
    lines += [f"oo[uq0 + _u64({i})] = {a} + bn" for i, a in enumerate(acc)]
    return [indent + line for line in lines]


def _tile(width: int, q0: str, indent: str) -> list[str]:
    """Lines computing oo[q0:q0+width] = bias + the row's taps, in two sets of ``width``
    accumulators: the row's even nonzeros go to one, its odd ones to the other.

    With one set, a 64-wide tile has four FMA chains, each waiting for its last FMA (4
    cycles): enough for the Zen 4's one 512-bit FMA per cycle (two sets there: 0.94-1.05x
    the time per layer), not for the Zen 5's two. Two sets, whole ResNet-50 on the Zen 5
    box, A/B in one process: 90% sparse 0.970x-0.976x the time at batch 1, 0.975x at batch
    16; 80% 0.974x; 95% 0.977x (four sets: 0.969x, no better)."""
    acc = [f"a{i}" for i in range(width)]
    acc2 = [f"c{i}" for i in range(width)]
    lines = [f"uq0 = _u64({q0})"]
    lines += [f"{a} = np.float32(0.0)" for a in acc + acc2]
    lines += [
        "j = lo",
        "while j + _u64(1) < hi:",
        "    v = values[j]",
        "    base = _u64(offs[j]) + uq0",
        "    v2 = values[j + _u64(1)]",
        "    base2 = _u64(offs[j + _u64(1)]) + uq0",
    ]
    lines += [f"    {a} += v * xi[base + _u64({i})]" for i, a in enumerate(acc)]
    lines += [f"    {a} += v2 * xi[base2 + _u64({i})]" for i, a in enumerate(acc2)]
    lines += [
        "    j += _u64(2)",
        "if j < hi:",
        "    v = values[j]",
        "    base = _u64(offs[j]) + uq0",
    ]
    lines += [f"    {a} += v * xi[base + _u64({i})]" for i, a in enumerate(acc)]
    # stored through the unsigned position: with the signed q0 numba adds negative-index
    # wraparound code to each store, which kept them scalar (64 vmovss + cmov per tile;
    # unsigned: four vector stores, 1 thread per call 1.1-1.45x faster on ResNet-50 shapes)
    pairs = enumerate(zip(acc, acc2, strict=True))
    lines += [f"oo[uq0 + _u64({i})] = ({a} + {c}) + bn" for i, (a, c) in pairs]
    return [indent + line for line in lines]


_ROW = [
    "b = t // cout",
    "co = t - b * cout",
    "xi = xb[b]",
    "oo = out[b, co]",
    "bn = bias[co]",
    "lo = _u64(indptr[co])",
    "hi = _u64(indptr[co + 1])",
]


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

    One launch per conv: ``parts`` tasks (one per thread) each take a contiguous block of
    the B * Cout rows and run, for each ``chunk`` of positions in turn (the input window of
    a chunk stays in L2; a multiple of MAIN_WIDTH), MAIN_WIDTH-wide register tiles over
    their rows, then the remainder (a multiple of 8) as 64 + 32 + 16 + 8 wide tiles, then
    their rows' epilogue: the residual
    ``res`` (B, Cout, L; only when its batch dimension is not 0; its geometry in ``rg``) at
    q = oh * wq + ow, and the activation, in its own vectorizable loop. Before, each chunk,
    each remainder width and the epilogue was a launch of its own (171 launches for
    ResNet-50 at batch 1, 53 convs) and a woken worker thread starts late on a busy machine.
    (No software prefetch here, unlike the linear kernel: successive tiles of a tap read
    successive addresses, which the hardware prefetcher follows; measured with it, the
    ResNet-50 layers went from 2.2-3.5x to 2.4-3.9x ORT but the heavy 56x56 3x3 from 3.5x
    to 2.7x.)
    """
    lines = [
        "def conv_all(xb, offs, indptr, values, bias, lp, chunk, parts, res, rg, wq, code, "
        "alpha, beta, out):",
        '    """The direct conv of every row of ``out`` in ``parts`` tasks."""',
        "    cout = out.shape[1]",
        "    nt = xb.shape[0] * cout",
        f"    full = lp // {MAIN_WIDTH} * {MAIN_WIDTH}",
        "    for p in PRANGE(parts):",
        "        t_lo = p * nt // parts",
        "        t_hi = (p + 1) * nt // parts",
        "        for c_lo in range(0, full, chunk):",
        "            c_hi = min(full, c_lo + chunk)",
        "            for t in range(t_lo, t_hi):",
    ]
    lines += ["                " + line for line in _ROW]
    lines += [f"                for q0 in range(c_lo, c_hi, {MAIN_WIDTH}):"]
    lines += _main_tile("q0", " " * 20)
    lines += ["        if full < lp:", "            for t in range(t_lo, t_hi):"]
    lines += ["                " + line for line in _ROW]
    lines += ["                qr = full"]
    for w in CONV_WIDTHS:
        lines += [f"                if lp - qr >= {w}:"]
        lines += _tile(w, "qr", " " * 20)
        lines += [f"                    qr += {w}"]
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
