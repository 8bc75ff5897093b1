"""float64 references for the kernel tests: plain numpy, no code shared with the kernels."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from zoo.runtime.kernels import Activation


def activate(y: np.ndarray, act: Activation | None) -> np.ndarray:
    """Apply ``act`` the way ONNX defines Relu / Clip / LeakyRelu."""
    if act is None:
        return y
    if act.kind == "relu":
        return np.maximum(y, 0.0)
    if act.kind == "clip":
        return np.minimum(np.maximum(y, act.alpha), act.beta)
    return np.where(y >= 0, y, y * act.alpha)


def linear(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, act: Activation | None
) -> np.ndarray:
    """act(x @ w + b) in float64; x (M, K), w (K, N)."""
    y = x.astype(np.float64) @ w.astype(np.float64)
    if b is not None:
        y = y + b
    return activate(y, act)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    group: int,
    act: Activation | None = None,
) -> np.ndarray:
    """ONNX Conv in float64 by windows; x (N, C, H, W), w (Cout, C/group, kH, kW)."""
    t, left, bot, r = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (t, bot), (left, r)))
    cout, cg, kh, kw = w.shape
    dh, dw = dilations
    # windows of the dilated kernel's extent, then every dh-th / dw-th tap of them
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, :: strides[0], :: strides[1], ::dh, ::dw]  # (N, C, Ho, Wo, kH, kW)
    og = cout // group
    outs = [
        np.einsum(
            "nchwij,ocij->nohw",
            win[:, gi * cg : (gi + 1) * cg],
            w[gi * og : (gi + 1) * og].astype(np.float64),
        )
        for gi in range(group)
    ]
    y = np.concatenate(outs, axis=1)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return activate(y, act)


def prune(w: np.ndarray, sparsity: float, rng: np.random.Generator) -> np.ndarray:
    """``w`` with a random ``sparsity`` fraction of its entries set to zero."""
    out = w.copy()
    out[rng.random(w.shape) < sparsity] = 0.0
    return out
