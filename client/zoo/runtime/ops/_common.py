"""Helpers shared by the conv/pool/linear adapters: auto_pad arithmetic, N-D im2col conv."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from zoo.runtime.registry import Array


def apply_activation(act: Any, y: Array) -> Array:
    """Apply a planner-fused activation on the numpy path (the kernels apply it themselves)."""
    if act is None:
        return y
    if act.kind == "relu":
        return np.maximum(y, 0).astype(y.dtype, copy=False)
    if act.kind == "clip":
        return np.clip(y, act.alpha, act.beta).astype(y.dtype, copy=False)
    if act.kind == "leaky_relu":
        return np.where(y < 0, y * y.dtype.type(act.alpha), y).astype(y.dtype, copy=False)
    raise ValueError(f"unknown fused activation {act.kind!r}")


def resolve_pads(
    auto_pad: str,
    in_shape: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dilations: tuple[int, ...],
    pads: tuple[int, ...] | None,
) -> tuple[int, ...]:
    """ONNX pads ``(b1, ..., bn, e1, ..., en)`` for the spatial dims, resolving ``auto_pad``."""
    n = len(in_shape)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(in_shape, kernel, strides, dilations, strict=True):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            # SAME_UPPER puts the odd extra pixel at the end, SAME_LOWER at the beginning.
            b = small if auto_pad == "SAME_UPPER" else total - small
            begin.append(b)
            end.append(total - b)
        return tuple(begin + end)
    if auto_pad == "VALID" or pads is None:
        return (0,) * (2 * n)
    return tuple(int(p) for p in pads)


def conv_nd(
    x: Array,
    w: Array,
    bias: Array | None,
    strides: tuple[int, ...],
    pads: tuple[int, ...],
    dilations: tuple[int, ...],
    group: int,
) -> Array:
    """Any-rank convolution with numpy (im2col + one matmul per group).

    x: (N, C, *in), w: (Cout, C/group, *k) -> (N, Cout, *out). Used for 1-D/3-D convs,
    non-float dtypes and weights that are not constants; 2-D float convs go to the kernels.
    """
    n = x.shape[0]
    cout, cg = w.shape[:2]
    k = w.shape[2:]
    r = len(k)
    width = [(0, 0), (0, 0)] + [(pads[i], pads[i + r]) for i in range(r)]
    xp = np.pad(x, width) if any(pads) else x
    eff = tuple((k[i] - 1) * dilations[i] + 1 for i in range(r))
    out = tuple((xp.shape[2 + i] - eff[i]) // strides[i] + 1 for i in range(r))
    win = sliding_window_view(xp, eff, axis=tuple(range(2, 2 + r)))  # (N, C, *in', *eff)
    index = (slice(None), slice(None))
    index += tuple(slice(0, (out[i] - 1) * strides[i] + 1, strides[i]) for i in range(r))
    index += tuple(slice(None, None, dilations[i]) for i in range(r))
    win = win[index]  # (N, C, *out, *k)
    npix = int(np.prod(out, dtype=np.int64))
    kk = int(np.prod(k, dtype=np.int64))
    # (N, G, Cg, P, K) -> (G, N*P, Cg*K)
    cols = (
        win.reshape(n, group, cg, npix, kk)
        .transpose(1, 0, 3, 2, 4)
        .reshape(group, n * npix, cg * kk)
    )
    coutg = cout // group
    wmat = w.reshape(group, coutg, cg * kk).transpose(0, 2, 1)  # (G, Cg*K, Cout/G)
    y = np.matmul(cols, wmat)  # (G, N*P, Cout/G)
    y = y.reshape(group, n, npix, coutg).transpose(1, 0, 3, 2).reshape((n, cout, *out))
    if bias is not None:
        y = y + bias.reshape((1, cout) + (1,) * r)
    return np.ascontiguousarray(y).astype(np.result_type(x, w), copy=False)
