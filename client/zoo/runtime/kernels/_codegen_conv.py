"""Generated source of the direct conv kernels (see ``_codegen`` and ``_direct_conv``)."""

from __future__ import annotations

from ._codegen_text import HEADER, both_variants

CONV_WIDTHS = (64, 32, 16, 8)

# (xb, offs, indptr, values, bias, q_lo, q_hi, code, alpha, beta, out)
_CONV_SIG = (
    "void(float32[:, ::1], uint32[::1], int64[::1], float32[::1], float32[::1], "
    "int64, int64, int64, float32, float32, float32[:, :, ::1])"
)


def conv_body(width: int) -> str:
    """Source of ``conv_t{width}``: out[b, co, q0:q0+width] for q0 in [q_lo, q_hi).

    ``xb`` (B, Lx) is each image padded (and split into stride phases) and flattened, so a
    weight w[co, ci, kh, kw] reads the input at a constant element offset ``offs[j]`` from
    the output's flat position q: out[b, co, q] = sum_j values[j] * xb[b, offs[j] + q].
    (No software prefetch here, unlike the linear kernel: successive tiles of a tap read
    successive addresses, which the hardware prefetcher follows; measured with it, the
    ResNet-50 layers went from 2.2-3.5x to 2.4-3.9x ORT but the heavy 56x56 3x3 from 3.5x
    to 2.7x.)
    """
    acc = [f"a{i}" for i in range(width)]
    lines = [
        f"def conv_t{width}(xb, offs, indptr, values, bias, q_lo, q_hi, code, alpha, beta, out):",
        f'    """{width} flat output positions per register tile."""',
        "    cout = out.shape[1]",
        "    for t in PRANGE(xb.shape[0] * cout):",
        "        b = t // cout",
        "        co = t - b * cout",
        "        xi = xb[b]",
        "        oo = out[b, co]",
        "        bn = bias[co]",
        "        lo = _u64(indptr[co])",
        "        hi = _u64(indptr[co + 1])",
        f"        for q0 in range(q_lo, q_hi, {width}):",
        "            uq0 = _u64(q0)",
    ]
    lines += [f"            {a} = np.float32(0.0)" for a in acc]
    lines += [
        "            j = lo",
        "            while j < hi:",
        "                v = values[j]",
        "                base = _u64(offs[j]) + uq0",
    ]
    lines += [f"                {a} += v * xi[base + _u64({i})]" for i, a in enumerate(acc)]
    lines += ["                j += _u64(1)"]
    lines += [f"            oo[q0 + {i}] = {a} + bn" for i, a in enumerate(acc)]
    lines += [
        "            if code != 0:",
        f"                for i in range(q0, q0 + {width}):",
        "                    oo[i] = act(oo[i], code, alpha, beta)",
    ]
    return "\n".join(lines) + "\n"


def conv_module() -> str:
    """The whole ``_generated/conv.py`` module."""
    parts = [HEADER] + [both_variants(conv_body(w), _CONV_SIG) for w in CONV_WIDTHS]
    tiled = ", ".join(f"{w}: (conv_t{w}, conv_t{w}_serial)" for w in CONV_WIDTHS)
    parts.append(f"TILED = {{{tiled}}}\n")
    return "\n\n".join(parts)
