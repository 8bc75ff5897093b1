"""Dense direct convolution: register tiles of 8 output channels x 32 positions, no im2col.

The dense (unpruned) conv path for one group. It reads the same padded, phase-split, flat
input as the sparse direct conv (``_direct_conv.DirectConv`` lays it out and gives each tap
(ci, kh, kw) its constant offset), but every tap is present, so the tile keeps eight output
channels in registers: per tap two vectors of 16 input positions feed sixteen FMAs, two per
channel, with the block's eight weights of that tap side by side in ``wp`` (packed once at
plan time). No im2col copy, and no per-call packing of the weight as sgemm does.

Per call against onnxruntime's Conv (ResNet-50 shapes at 224x224, batch 1, time ratio
onnxruntime / ours, the input padding copy included; ``bench/runtime.py --kernels``):

=================  ==================  =================  ==================
layer              1 thread: before    1 thread: now      2 threads: before -> now
=================  ==================  =================  ==================
7x7 s2 stem        0.70 (im2col)       1.07               0.56 -> 1.03
128ch 3x3 s2 56²   0.77 (im2col)       0.93               0.63 -> 0.84
512ch 3x3 7²       0.66 (im2col)       0.79               0.52 -> 0.78
2048->512 1x1 7²   0.79 (sgemm)        0.80               0.44 -> 0.71
256->1024 1x1 14²  0.91 (sgemm)        1.01               0.93 -> 1.04
64->256 1x1 56²    0.99 (sgemm)        1.06               1.00 -> 1.10
=================  ==================  =================  ==================

(43-56 GMAC/s on one core; those were 8 x 16 tiles on the Zen 4 box.)

On the Zen 5 box (full-width AVX-512; a tile of 8 x 32 in C reaches 137 GMAC/s per core
from L1, onnxruntime's conv 125-130) the tile became 8 channels x 32 positions: sixteen
accumulators where eight could not keep both FMA pipes busy. Per call, 1 thread, against
onnxruntime (time ratio, 8 x 16 -> 8 x 32; 16 x 16 and 12 x 32 were slower): the stem
0.72x -> 0.95x, 64->256 1x1 at 56x56 0.79x -> 1.12x, 256->64 0.78x -> 1.09x, 128ch 3x3
stride 2 0.65x -> 0.85x, 1024->256 1x1 at 14x14 0.80x -> 0.90x, 512ch 3x3 at 7x7 0.61x
-> 0.80x, 2048->512 1x1 at 7x7 0.66x -> 0.78x, 64ch 3x3 at 56x56 0.70x -> 0.95x.
In a whole model the weights come from memory (ResNet-50's 100 MB do not stay in the L3),
and each layer took the time it took on a cold cache, not a warm one (2048->512 at 7x7:
0.48 against 0.29 ms; onnxruntime 0.23 either way). So each tap prefetches the weights of
the tap DENSE_PREFETCH (128) ahead: 4 KB ahead in the block's stream, which the hardware
prefetchers did not fetch in time on their own. Cold cache, 2 threads,
ms, none / 16 / 64 / 128 taps ahead: 512ch 3x3 at 7x7 0.89 / 0.79 / 0.73 / 0.65;
2048->512 1x1 at 7x7 0.49 / 0.40 / 0.35 / 0.35; the 14x14 and 56x56 layers unchanged
(their weights serve more positions). Prefetching each tile's input as well did not help.
Whole dense ResNet-50, A/B in one process against 8 x 16 tiles without the prefetch:
0.90x the time at batch 1 (the tile alone: 0.97x). Tried and not kept: tiles of 4 channels x 32
positions (as fast or up to 13% slower: 256->1024 1x1 at 14x14); an 8-wide last tile, so
that a 7x7 map's 49 positions cost 56 instead of 64 (2048->512 1x1 at 7x7: 1.16 ms against
1.21 - its FMAs on 8 lanes are as many instructions as on 16). Found on the way: numba's
parfor hoists a loop-invariant assignment out of a ``prange`` body even when a nested loop
assigns the same name (that tail's ``uq0 = full`` was hoisted, and it recomputed the last
16-wide tile instead) - straight-line code at the top of a generated ``prange`` body must
not reuse a name that the loops inside it assign. (The body is now a plain function,
``dense_conv_all_span``, that the prange calls: parfor no longer transforms it.)
"""

from __future__ import annotations

import numpy as np

from ._activation import Activation, activation_code
from ._codegen_conv import DENSE_ROWS, DENSE_WIDTH
from ._direct_conv import DirectCall, DirectConv, _Layout
from ._numba_env import slp_vectorize
from ._pool import threads
from ._types import ConvGeometry, Kernel

with slp_vectorize():
    from ._generated.dense_conv import dense_conv_all, dense_conv_all_serial


def dense_direct_conv(
    weight: np.ndarray, bias: np.ndarray | None, geo: ConvGeometry, act_: Activation | None
) -> Kernel:
    """Plan a dense conv of one group as 8 x 32 register tiles over the flat padded input."""
    if geo.group != 1:
        raise ValueError(f"the dense tiled conv takes one group, got {geo.group}")
    w = np.asarray(weight, dtype=np.float32)
    cout, cin, kh, kw = w.shape
    k = cin * kh * kw
    blocks = -(-cout // DENSE_ROWS)
    rows = blocks * DENSE_ROWS
    # (blocks, K, ROWS): the eight weights a tap multiplies, side by side; rows past cout 0
    padded = np.zeros((rows, k), np.float32)
    padded[:cout] = w.reshape(cout, k)
    wp = np.ascontiguousarray(padded.reshape(blocks, DENSE_ROWS, k).transpose(0, 2, 1))
    b = np.zeros(rows, np.float32)
    if bias is not None:
        b[:cout] = bias
    # the taps' offsets: one row of all-ones weights, in the order of w.reshape(cout, K)
    # (positions: a multiple of the tile width, and one tile at least, where the sparse kernel
    # computes 64: a 3x3 conv with a 2x2 output then does half the work. Planes
    # not starting on a cache line, which would save the copy of a 1x1 conv's input at
    # 14x14 and 7x7, made no difference here: 0.97-1.04x the time per call.)
    taps = DirectConv(
        np.ones((1, cin, kh, kw), np.float32),
        geo,
        True,
        tile=DENSE_WIDTH,
        min_positions=DENSE_WIDTH,
    )
    code, alpha, beta = activation_code(act_)
    fa, fb = np.float32(alpha), np.float32(beta)

    def launch(
        xb: np.ndarray, lay: _Layout, r: np.ndarray, rg: np.ndarray, out: np.ndarray, serial: bool
    ) -> None:
        parts = 1 if serial else min(threads(), xb.shape[0] * blocks)
        (dense_conv_all_serial if serial else dense_conv_all)(
            xb, lay.offs, wp, b, lay.lp, lay.chunk, parts, r, rg, lay.wq, code, fa, fb, cout, out
        )

    call = DirectCall(taps, cin, cout, rows, rows * k, launch)
    return Kernel(call, "dense-tiled-conv", takes_wide=True)
