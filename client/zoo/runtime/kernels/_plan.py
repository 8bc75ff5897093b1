"""Plan-time kernel choice for weighted ops: a dense or a sparse kernel, per layer.

Thresholds, measured on this project's reference box (2-core AMD EPYC Zen 4, AVX-512, and
since session 10 a Zen 5 with full-width AVX-512) with 1 thread (2-thread numbers on the
shared box were too noisy to place a threshold):

* linear, sparse CSR time / dense time (``SPARSE_LINEAR_MIN``), at M = 1 / 64 / 128, CPU
  time. Against numpy's sgemm first:
    sparsity 0.70: 4096x4096 1.22 / 0.68 / 1.13; 768x768 1.89 / 0.84 / 0.79
    sparsity 0.80: 4096x4096 0.68 / 0.50 / 1.20;  768x3072 1.22 / 0.49 / 0.78;
                   768x768 1.25 / 0.55 / 0.79;    4096x1000 0.91 / 0.52 / 0.71
    sparsity 0.85: 768x768 1.08 / 0.38 / 0.41;    4096x1000 0.88 / 0.37 / 0.70
  then against the packed dense kernel that replaced it (``_dense.dense_linear``, faster):
    sparsity 0.80: 4096x4096 0.70 / 0.54 / 0.72;  768x3072 1.22 / 0.46 / 0.47;
                   768x768 1.51 / 0.49 / 0.50;    4096x1000 1.14 / 0.44 / 0.57
    sparsity 0.85: 4096x4096 0.30 / 0.45 / 0.53;  768x3072 0.92 / 0.35 / 0.37;
                   768x768 1.13 / 0.38 / 0.44;    4096x1000 0.81 / 0.32 / 0.41
  so sparse from 80% zeros: from there it wins at every batch but 1 on small layers (where
  it loses at most 50%, 15% from 85%). Model level (bench/runtime.py, 2 threads, against
  sgemm): the 80%-sparse MLP ran 1.57x / 1.24x onnxruntime at batch 1 / 64, its dense form
  1.11x / 0.78x. Measured again on the Zen 5 box (same method):
    sparsity 0.70: 768x768 1.81 / 0.88 / 0.74;  4096x4096 0.97 / 0.80 / 1.06
    sparsity 0.75: 768x768 1.45 / 0.74 / 0.63;  4096x4096 0.79 / 0.63 / 0.88
    sparsity 0.80: 768x768 1.37 / 0.58 / 0.53;  768x3072 1.31 / 0.56 / 0.49;
                   3072x768 1.13 / 0.55 / 0.66; 4096x4096 0.59 / 0.50 / 0.69;
                   4096x1000 1.23 / 0.58 / 0.66
  - the same picture, so 0.8 stays.
* conv, direct sparse vs im2col + sgemm (``SPARSE_CONV_MIN``), six ResNet-50 3x3 and 1x1
  layers at batch 1, summed (ms): sparsity 0.5 17.4 vs 15.6; 0.65 14.0 vs 17.3; 0.8 9.9 vs
  15.6; 0.9 3.7 vs 14.7 - the crossover is near 0.6. Measured again against the faster
  dense path of then (the tiled direct conv, Winograd where it applied), nine ResNet-50
  layers at batch 1 summed: sparsity 0.5 16.8 vs 14.5; 0.6 13.9 vs 14.9; 0.65 12.2 vs 14.7;
  0.7 10.8 vs 15.3; 0.8 7.5 vs 14.9 - still between 0.5 and 0.6. On the Zen 5 box, against
  the 8 x 32 tiled conv, nine layers summed, 1 thread, CPU time: 0.3 13.6 vs 11.1; 0.4 11.5;
  0.5 9.8; 0.6 8.0; 0.7 6.1; 0.8 4.4 - the crossover moved down to about 0.42. The threshold
  stays at 0.6, above both boxes' crossovers, so no conv is made slower on either: a model
  pruned to 45-60% runs its convs dense here, which costs it up to 1.4x (at 0.6: 11.1
  against 8.0 ms), while a threshold of 0.5 would make a 50%-pruned model's convs 16%
  slower on the other box.
* depthwise convs (one input channel per group) always use the direct kernel: per-group
  GEMMs of one channel are far slower; dense weights run it with their zeros kept.
* every dense conv of one group uses the tiled direct conv (``_dense_direct``: 8 output
  channels x 32 positions per register tile, no im2col, weights packed once), which
  replaced im2col + sgemm there (per-layer numbers in its docstring; the dense ResNet-50 on
  2 threads went from 0.62-0.73x to 0.73-0.80x onnxruntime at batch 1 and from 0.71-0.81x
  to 0.84-0.88x at batch 64, over five runs on a noisy day). Grouped convs (not depthwise)
  keep im2col + sgemm per group.
* Winograd F(2x2, 3x3) for the dense 3x3 stride-1 convs (16 sgemms on transformed planes,
  2.25x fewer multiply-adds) was removed once the box became a Zen 5 (full-width AVX-512:
  onnxruntime's conv and our packed kernels reach 110-137 GMAC/s per core, OpenBLAS's
  sgemm 65). The tiled conv then won per call (2 threads, ms, warm / cold cache, tiled vs
  Winograd): 64ch 56x56 0.57 / 0.65 vs 0.80 / 0.85; 128ch 28x28 0.55 / 0.60 vs 0.66 /
  0.71; 256ch 14x14 0.55 / 0.57 vs 0.59 / 0.69; and the dense ResNet-50 without Winograd
  took 0.96x the time at batch 1 and 0.86x at batch 64 (A/B in one process). Winograd's
  GEMMs run on the packed kernel instead of sgemm (a prototype, 111-154 GMAC/s on 2
  threads) won only at 14x14 (0.44 against 0.55 ms). On the Zen 4 box before it, Winograd
  won on these layers (64ch 56x56 1.23 vs 1.10 ms, 256ch 14x14 1.30 vs 0.77, against the
  tiled conv's 8 x 16 tiles of then).
"""

from __future__ import annotations

import numpy as np

from ._activation import Activation
from ._dense import dense_conv, dense_linear
from ._dense_direct import dense_direct_conv
from ._direct_conv import direct_conv
from ._sparse_linear import sparse_linear
from ._types import ConvGeometry, Kernel

SPARSE_LINEAR_MIN = 0.8
SPARSE_CONV_MIN = 0.6


def sparsity(weight: np.ndarray) -> float:
    """Fraction of exact zeros in ``weight``."""
    return 1.0 - np.count_nonzero(weight) / max(1, weight.size)


def plan_linear(
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    activation: Activation | None = None,
    sparse: bool = True,
    transposed_out: bool = False,
) -> Kernel:
    """Plan ``y = activation(x @ weight + bias)``; ``weight`` float32 (K, N), ``bias`` (N,).

    Returns a callable (M, K) float32 -> (M, N) float32 with a ``.kind`` attribute:
    ``dense-packed``, or ``sparse-csr-b1`` / ``sparse-csr-batched`` when ``sparse`` and the
    weight has at least ``SPARSE_LINEAR_MIN`` zeros. ``transposed_out``: a sparse kernel may
    return its (M, N) result as the transpose of a C-contiguous array, the layout the next
    sparse layer reads without a copy (see ``sparse_linear``).

    >>> w = np.zeros((8, 4), np.float32); w[0, 0] = 2.0
    >>> f = plan_linear(w, np.ones(4, np.float32))
    >>> f(np.ones((1, 8), np.float32)).tolist(), f.kind
    ([[3.0, 1.0, 1.0, 1.0]], 'sparse-csr-b1')
    """
    if weight.ndim != 2:
        raise ValueError(f"linear weight must be 2-D (K, N), got shape {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[1],):
        raise ValueError(f"linear bias must have shape ({weight.shape[1]},), got {bias.shape}")
    if linear_is_sparse(weight, sparse=sparse):
        return sparse_linear(weight, bias, activation, transposed_out=transposed_out)
    return dense_linear(weight, bias, activation)


def linear_is_sparse(weight: np.ndarray, *, sparse: bool = True) -> bool:
    """Whether :func:`plan_linear` gives ``weight`` (K, N) a sparse kernel."""
    return sparse and weight.shape[0] <= 65536 and sparsity(weight) >= SPARSE_LINEAR_MIN


def plan_conv2d(
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    group: int,
    activation: Activation | None = None,
    sparse: bool = True,
) -> Kernel:
    """Plan a 2-D convolution; ``weight`` float32 (Cout, Cin // group, kH, kW).

    ``pads`` is (top, left, bottom, right). Returns a callable
    (N, Cin, H, W) float32 -> (N, Cout, Ho, Wo) float32 with a ``.kind`` attribute:
    ``sparse-direct-conv`` (at least ``SPARSE_CONV_MIN`` zeros); with dense weights
    ``dense-direct-conv`` (depthwise), ``dense-tiled-conv`` (one group) or ``dense-im2col``
    (other grouped convs).
    """
    if weight.ndim != 4:
        raise ValueError(f"conv weight must be 4-D (Cout, Cin/group, kH, kW), got {weight.shape}")
    cout = weight.shape[0]
    if group < 1 or cout % group:
        raise ValueError(f"conv group {group} must divide the output channels {cout}")
    if bias is not None and bias.shape != (cout,):
        raise ValueError(f"conv bias must have shape ({cout},), got {bias.shape}")
    geo = ConvGeometry(
        kernel=(int(weight.shape[2]), int(weight.shape[3])),
        strides=(int(strides[0]), int(strides[1])),
        pads=(int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])),
        dilations=(int(dilations[0]), int(dilations[1])),
        group=int(group),
    )
    if sparse and sparsity(weight) >= SPARSE_CONV_MIN:
        return direct_conv(weight, bias, geo, activation)
    if group > 1 and weight.shape[1] == 1:  # depthwise
        return direct_conv(weight, bias, geo, activation, keep_zeros=True)
    if group > 1:
        return dense_conv(weight, bias, geo, activation)
    return dense_direct_conv(weight, bias, geo, activation)
