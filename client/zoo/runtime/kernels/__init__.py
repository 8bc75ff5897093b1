"""Weighted-op kernels of the runtime: linear (Gemm/MatMul) and 2-D convolution.

``plan_linear`` / ``plan_conv2d`` look at a layer's weight once, pick a kernel and return a
callable that only computes (always into a fresh array). Its ``.kind`` says which:

=====================  =====================================================================
``dense-packed``       linear: weight packed at plan time, 8 x 32 register tiles (``_dense``)
``sparse-csr-b1``      linear, batch < 3: CSR dot products, uint16 indices (``_sparse_linear``)
``sparse-csr-batched`` linear, batch >= 3: CSR x register tile of 64 batch columns
``dense-tiled-conv``   conv, dense, one group: direct, 8 output channels x 32 positions per
                       register tile, weights packed at plan time, no im2col (``_dense_direct``)
``dense-im2col``       conv, dense, grouped: im2col + sgemm per image and group (``_dense``)
``sparse-direct-conv`` conv: direct, zero weights skipped, 128 output positions per register
                       tile, input channels in L1-sized blocks, strides / dilations / groups /
                       depthwise (``_direct_conv``)
``dense-direct-conv``  depthwise conv with dense weights: the direct kernel, zeros kept
=====================  =====================================================================

``matmul_batched`` (np.matmul of two stacks of matrices, the stack split over the threads:
attention's products in one launch of ``_bmm``'s register tiles),
``maxpool2d`` (float32 MaxPool without padded copies), ``erf_f32`` and ``gelu_f32`` (one
pass each), ``softmax_rows`` and ``layer_norm_rows`` (last axis, one pass per row) are the
unweighted kernels.
Outputs come from ``empty``: inside ``recycling(pool)`` (as ``InferenceSession.run``
does) a released intermediate of the same shape is reused instead of a new mapping.

The dense/sparse thresholds and their measurements are in ``_plan``; why numba needs the
SLP vectorizer and briefly spinning OpenMP threads in ``_numba_env``; the kernels' source in
``_generated/`` comes from ``_codegen``.

>>> import numpy as np
>>> from zoo.runtime.kernels import Activation, plan_linear
>>> f = plan_linear(np.eye(4, dtype=np.float32), None, activation=Activation("relu"))
>>> f(-np.ones((2, 4), np.float32)).tolist(), f.kind
([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], 'dense-packed')
"""

from ._activation import Activation
from ._buffers import BufferPool, empty, recycling
from ._erf import erf_f32, gelu_f32
from ._maxpool import maxpool2d
from ._plan import linear_is_sparse, plan_conv2d, plan_linear
from ._pool import matmul_batched
from ._rowwise import layer_norm_rows, softmax_rows
from ._threads import set_threads
from ._types import Kernel
from ._wide import Wide, plane_means

__all__ = [
    "Activation",
    "BufferPool",
    "Kernel",
    "Wide",
    "empty",
    "erf_f32",
    "gelu_f32",
    "layer_norm_rows",
    "linear_is_sparse",
    "matmul_batched",
    "maxpool2d",
    "plan_conv2d",
    "plan_linear",
    "plane_means",
    "recycling",
    "set_threads",
    "softmax_rows",
]
