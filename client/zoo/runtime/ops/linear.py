"""Gemm, MatMul and Einsum adapters.

A Gemm or MatMul whose weight is a constant 2-D float32 matrix is planned once through
:func:`zoo.runtime.kernels.plan_linear` (dense or sparse by measured sparsity); the planner may
have folded a bias Add (MatMul's optional 3rd input here) and an activation into it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoo.runtime.kernels import Kernel, matmul_batched, plan_linear
from zoo.runtime.ops._common import apply_activation
from zoo.runtime.registry import Array, OpRun, register


def _bias_vector(c: Array | None, n: int) -> Array | None:
    """C as an (N,) vector when it broadcasts along rows only, else None (added at run time)."""
    if c is None:
        return None
    if c.size == 1:
        return np.full(n, c.reshape(-1)[0], dtype=np.float32)
    if c.ndim >= 1 and c.shape[-1] == n and c.size == n:
        return c.reshape(n).astype(np.float32)
    return None


@register
class Gemm(OpRun):
    """``Y = alpha * A' @ B' + beta * C`` with optional transposes."""

    op_type = "Gemm"
    since = 1  # v1-v6's `broadcast` attribute only allowed what numpy broadcasting does

    def setup(self) -> None:
        self.alpha = float(self.attr("alpha", 1.0))
        self.beta = float(self.attr("beta", 1.0))
        self.trans_a = bool(self.attr("transA", 0))
        self.trans_b = bool(self.attr("transB", 0))
        self.activation = self.attr("_activation")
        self.kernel: Callable[[Array], Array] | None = None
        self.bias_in_kernel = False
        w = self.const_input(1)
        if w is not None and w.dtype == np.float32 and w.ndim == 2:
            weight = (w.T if self.trans_b else w) * np.float32(self.alpha)  # (K, N)
            c = self.const_input(2)
            bias = _bias_vector(None if c is None else c * np.float32(self.beta), weight.shape[1])
            self.bias_in_kernel = (
                bias is not None or len(self.node.inputs) < 3 or not self.node.inputs[2]
            )
            act = self.activation if self.bias_in_kernel else None
            self.kernel = plan_linear(
                np.ascontiguousarray(weight), bias, activation=act, sparse=self.ctx.sparse
            )
            self.kernel_kind = str(getattr(self.kernel, "kind", "unknown"))

    def run(self, a: Array, b: Array, c: Array | None = None) -> tuple[Array]:
        x = a.T if self.trans_a else a  # (M, K)
        if self.kernel is not None and a.dtype == np.float32:
            y = self.kernel(np.ascontiguousarray(x))  # (M, K) -> (M, N)
            if self.bias_in_kernel:
                return (y,)
            y = y + np.float32(self.beta) * c if c is not None else y
            return (apply_activation(self.activation, y),)
        y = self.alpha * (x @ (b.T if self.trans_b else b))
        if c is not None:
            y = y + self.beta * c
        return (apply_activation(self.activation, np.asarray(y).astype(a.dtype, copy=False)),)


@register
class MatMul(OpRun):
    """numpy.matmul semantics; (…, K) @ constant (K, N) goes through the kernels."""

    op_type = "MatMul"
    since = 1

    def setup(self) -> None:
        self.activation = self.attr("_activation")
        # merged sibling MatMuls (planner): the result's column blocks are the outputs
        self.splits: tuple[int, ...] = tuple(self.attr("_splits", ()))
        self.kernel: Kernel | None = None
        w = self.const_input(1)
        if w is not None and w.dtype == np.float32 and w.ndim == 2:
            bias = self.const_input(2)  # folded from a following Add by the planner
            self.kernel = plan_linear(
                w,
                None if bias is None else bias.reshape(-1).astype(np.float32),
                activation=self.activation,
                sparse=self.ctx.sparse,
                transposed_out=bool(self.attr("_transposed_out", False)),
            )
            self.kernel_kind = str(getattr(self.kernel, "kind", "unknown"))

    def run(
        self, a: Array, b: Array, bias: Array | None = None, residual: Array | None = None
    ) -> tuple[Array, ...]:
        # bias and residual are planner-added inputs (a folded bias Add, a residual Add)
        if self.kernel is None or a.dtype != np.float32 or a.ndim < 1:
            y = matmul_batched(a, b)  # attention's Q @ K^T: the heads split over threads
            if bias is not None:
                y = y + bias
            if residual is not None:
                y = y + residual
            y = apply_activation(self.activation, y)
            return (y,) if not self.splits else self._split(y.reshape(-1, y.shape[-1]), a)
        k, n = b.shape
        # no copy here: the kernels make their input contiguous if they need to, and a
        # sparse one reads a transposed layout (see _chain_sparse_layouts) as it is
        x = a.reshape(-1, k)
        shape = (*a.shape[:-1], n)
        if residual is None or residual.shape != shape or residual.dtype != np.float32:
            y = self.kernel(x).reshape(shape)  # (M, K) -> (M, N)
            if residual is not None:  # one that broadcasts (or casts): numpy's Add
                return (y + residual,)
            return (y,) if not self.splits else self._split(y.reshape(-1, n), a)
        return (self.kernel(x, residual.reshape(-1, n)).reshape(shape),)

    def _split(self, y: Array, a: Array) -> tuple[Array, ...]:
        # (M, sum N_i) -> the siblings' outputs as column views, no copies: reshaping one to
        # (batch, seq, heads, head size) splits its last axis, which stays a view too
        ends = np.cumsum(self.splits).tolist()
        return tuple(
            y[:, e - n : e].reshape(*a.shape[:-1], n)
            for e, n in zip(ends, self.splits, strict=True)
        )


@register
class Einsum(OpRun):
    op_type = "Einsum"
    since = 12

    def run(self, *xs: Array) -> tuple[Array]:
        equation = str(self.attr("equation")).replace(" ", "")
        return (np.asarray(np.einsum(equation, *xs)).astype(xs[0].dtype, copy=False),)
