"""Quantized ops: QuantizeLinear/DequantizeLinear (per-tensor, per-axis, blocked),
DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv.

Integer convolutions and matmuls with a constant weight run through the float kernels on the
zero-point-shifted weight (small integers, exact in float32), so sparse int8 weights skip
zeros too. float32 accumulation is exact while |partial sums| < 2**24: MatMulInteger and
ConvInteger (whose int32 output must be exact) use the kernels only when that bound holds
for any uint8/int8 input; QLinear* ops always do, since a rare ±1 in a ~1e6 accumulator
disappears in requantization.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.runtime.kernels import plan_conv2d, plan_linear
from zoo.runtime.ops._common import conv_nd, resolve_pads
from zoo.runtime.registry import Array, OpRun, register


def _onnx_dtype(code: int) -> np.dtype[Any]:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(code))


def _broadcast_param(p: Array, x: Array, axis: int, block: int) -> Array:
    """Scale/zero-point to x's rank: scalar, per-axis (1-D along ``axis``) or blocked."""
    if p.size == 1 and block == 0:
        return p.reshape(())
    axis = axis + x.ndim if axis < 0 else axis
    if block > 0:  # (…, ceil(D/block), …) -> repeat each entry block times along axis
        return np.repeat(p, block, axis=axis).take(np.arange(x.shape[axis]), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    return p.reshape(shape)


def _saturate(y: Array, dtype: np.dtype[Any]) -> Array:
    info = np.iinfo(dtype)
    return np.clip(y, info.min, info.max).astype(dtype)


def quantize(x: Array, scale: Array, zp: Array | None, dtype: np.dtype[Any]) -> Array:
    """``saturate(round_half_even(x / scale) + zp)`` in float32."""
    q = np.rint(x.astype(np.float32) / scale.astype(np.float32))
    if zp is not None:
        q = q + zp.astype(np.float32)
    return _saturate(q, dtype)


class _QuantizeBase(OpRun):
    op_type = "QuantizeLinear"

    def run(self, x: Array, scale: Array, zp: Array | None = None) -> tuple[Array]:
        axis, block = int(self.attr("axis", 1)), int(self.attr("block_size", 0))
        if zp is not None:
            dtype = zp.dtype
        elif self.attr("output_dtype", 0):
            dtype = _onnx_dtype(int(self.attr("output_dtype")))
        else:
            dtype = np.dtype(np.uint8)
        s = _broadcast_param(scale, x, axis, block)
        z = None if zp is None else _broadcast_param(zp, x, axis, block)
        return (quantize(x, s, z, dtype),)


@register
class QuantizeLinear10(_QuantizeBase):
    since = 10


@register
class QuantizeLinear13(_QuantizeBase):
    """Adds per-axis scales (``axis``); 19 adds float8 (unsupported), 21 blocks and output_dtype."""

    since = 13


class _DequantizeBase(OpRun):
    op_type = "DequantizeLinear"

    def run(self, x: Array, scale: Array, zp: Array | None = None) -> tuple[Array]:
        axis, block = int(self.attr("axis", 1)), int(self.attr("block_size", 0))
        s = _broadcast_param(scale, x, axis, block)
        shifted = x.astype(np.int64)
        if zp is not None:
            shifted = shifted - _broadcast_param(zp, x, axis, block).astype(np.int64)
        y = shifted.astype(np.float32) * s.astype(np.float32)
        return (y.astype(scale.dtype),)


@register
class DequantizeLinear10(_DequantizeBase):
    since = 10


@register
class DequantizeLinear13(_DequantizeBase):
    since = 13


@register
class DynamicQuantizeLinear(OpRun):
    """float32 -> uint8 with a scale/zero-point covering [min(x, 0), max(x, 0)]."""

    op_type = "DynamicQuantizeLinear"
    since = 11

    def run(self, x: Array) -> tuple[Array, Array, Array]:
        lo = np.float32(min(float(x.min(initial=0)), 0.0))
        hi = np.float32(max(float(x.max(initial=0)), 0.0))
        scale = np.float32((hi - lo) / np.float32(255))
        if scale == 0:
            scale = np.float32(1)
        zp = np.uint8(np.clip(np.rint(-lo / scale), 0, 255))
        y = quantize(x, np.array(scale), np.array(zp), np.dtype(np.uint8))
        return y, np.array(scale, dtype=np.float32), np.array(zp, dtype=np.uint8)


def _row_param(p: Array | None, a: Array) -> Array | float:
    """A's per-row (M,) scale/zero-point as an (M, 1) column; scalars pass through."""
    if p is None:
        return 0.0
    if p.size > 1 and p.ndim == 1 and a.ndim >= 2:
        return p.reshape(-1, 1)
    return p


_EXACT_F32 = 2**24


def _exact_in_f32(w_shifted: Array, reduce_axes: tuple[int, ...]) -> bool:
    """Whether any uint8/int8 input (|x - zp| <= 255) keeps float32 sums of x*w exact."""
    worst = np.abs(w_shifted.astype(np.float64)).sum(axis=reduce_axes).max(initial=0.0)
    return bool(255 * worst < _EXACT_F32)


class _IntegerLinear(OpRun):
    """Shared by MatMulInteger and QLinearMatMul: (A - a_zp) @ (B - b_zp)."""

    b_index = 1
    bzp_index = 3
    exact = True  # int32 output: only use float kernels when they are exact

    def setup(self) -> None:
        b, bzp = self.const_input(self.b_index), self.const_input(self.bzp_index)
        self.kernel: Callable[[Array], Array] | None = None
        if self._runtime_input(self.bzp_index):
            return  # the zero point is only known at run time: nothing to bake
        if b is not None and b.ndim == 2 and (bzp is None or bzp.size in (1, b.shape[1])):
            shifted = b.astype(np.float32) - (0 if bzp is None else bzp.astype(np.float32))
            if self.exact and not _exact_in_f32(shifted, (0,)):
                return
            self.kernel = plan_linear(shifted, None, sparse=self.ctx.sparse)
            self.kernel_kind = str(getattr(self.kernel, "kind", "unknown"))

    def accumulate(self, a: Array, azp: Array | None, b: Array, bzp: Array | None) -> Array:
        a_shift = a.astype(np.float64) - _row_param(azp, a)
        if self.kernel is not None and (azp is None or azp.size == 1):
            k = b.shape[0]
            flat = a_shift.reshape(-1, k).astype(np.float32)  # (M, K), exact small integers
            y = self.kernel(flat).reshape(*a.shape[:-1], b.shape[1]).astype(np.float64)
            return y
        b_shift = b.astype(np.float64) - (0 if bzp is None else bzp.astype(np.float64))
        return np.asarray(np.matmul(a_shift, b_shift))


@register
class MatMulInteger(_IntegerLinear):
    op_type = "MatMulInteger"
    since = 10
    b_index, bzp_index = 1, 3

    def run(
        self, a: Array, b: Array, azp: Array | None = None, bzp: Array | None = None
    ) -> tuple[Array]:
        return (np.rint(self.accumulate(a, azp, b, bzp)).astype(np.int32),)


@register
class QLinearMatMul(_IntegerLinear):
    op_type = "QLinearMatMul"
    since = 10
    exact = False
    b_index, bzp_index = 3, 5

    def run(
        self,
        a: Array,
        a_s: Array,
        azp: Array,
        b: Array,
        b_s: Array,
        bzp: Array,
        y_s: Array,
        yzp: Array,
    ) -> tuple[Array]:
        acc = self.accumulate(a, azp, b, bzp)
        scale = (
            np.asarray(_row_param(a_s.astype(np.float32), a))
            * b_s.astype(np.float32)
            / y_s.astype(np.float32)
        )
        y = np.rint(acc * scale.astype(np.float32)) + yzp.astype(np.float64)
        return (_saturate(y, yzp.dtype),)


class _IntegerConv(OpRun):
    """Shared by ConvInteger and QLinearConv: conv of zero-point-shifted integers."""

    w_index = 1
    wzp_index = 3
    exact = True

    def setup(self) -> None:
        self._kernels: dict[tuple[int, ...], Callable[[Array], Array]] = {}
        w, wzp = self.const_input(self.w_index), self.const_input(self.wzp_index)
        self.shifted_w: Array | None = None
        if w is not None and w.ndim == 4 and not self._runtime_input(self.wzp_index):
            zp = 0 if wzp is None else wzp.astype(np.float32).reshape(-1, 1, 1, 1)
            shifted = (w.astype(np.float32) - zp).astype(np.float32)
            if not self.exact or _exact_in_f32(shifted, (1, 2, 3)):
                self.shifted_w = shifted

    def geometry(self, x: Array, w: Array) -> tuple[tuple[int, ...], ...]:
        r = w.ndim - 2
        kernel = tuple(self.attr("kernel_shape", w.shape[2:]))
        strides = tuple(self.attr("strides", (1,) * r))
        dil = tuple(self.attr("dilations", (1,) * r))
        pads_attr = self.attr("pads")
        pads = resolve_pads(
            self.attr("auto_pad", "NOTSET"),
            x.shape[2:],
            kernel,
            strides,
            dil,
            None if pads_attr is None else tuple(pads_attr),
        )
        return strides, pads, dil

    def accumulate(self, x: Array, xzp: Array | None, w: Array, wzp: Array | None) -> Array:
        strides, pads, dil = self.geometry(x, w)
        group = int(self.attr("group", 1))
        x_shift = x.astype(np.float32) - (0 if xzp is None else xzp.astype(np.float32))
        if self.shifted_w is not None:
            kernel = self._kernels.get(pads)
            if kernel is None:
                kernel = plan_conv2d(
                    self.shifted_w,
                    None,
                    strides=(strides[0], strides[1]),
                    pads=(pads[0], pads[1], pads[2], pads[3]),
                    dilations=(dil[0], dil[1]),
                    group=group,
                    sparse=self.ctx.sparse,
                )
                self._kernels[pads] = kernel
                self.kernel_kind = str(getattr(kernel, "kind", "unknown"))
            return kernel(x_shift).astype(np.float64)
        r = w.ndim - 2
        zp = 0 if wzp is None else wzp.astype(np.float64).reshape((-1,) + (1,) * (r + 1))
        w_shift = w.astype(np.float64) - zp
        return conv_nd(x_shift.astype(np.float64), w_shift, None, strides, pads, dil, group)


@register
class ConvInteger(_IntegerConv):
    op_type = "ConvInteger"
    since = 10
    w_index, wzp_index = 1, 3

    def run(
        self, x: Array, w: Array, xzp: Array | None = None, wzp: Array | None = None
    ) -> tuple[Array]:
        return (np.rint(self.accumulate(x, xzp, w, wzp)).astype(np.int32),)


@register
class QLinearConv(_IntegerConv):
    op_type = "QLinearConv"
    since = 10
    exact = False
    w_index, wzp_index = 3, 5

    def run(
        self,
        x: Array,
        x_s: Array,
        xzp: Array,
        w: Array,
        w_s: Array,
        wzp: Array,
        y_s: Array,
        yzp: Array,
        b: Array | None = None,
    ) -> tuple[Array]:
        acc = self.accumulate(x, xzp, w, wzp)  # (N, Cout, *out)
        r = acc.ndim - 2
        if b is not None:
            acc = acc + b.astype(np.float64).reshape((1, -1) + (1,) * r)
        w_scale = w_s.astype(np.float32).reshape((1, -1) + (1,) * r) if w_s.size > 1 else w_s
        scale = (x_s.astype(np.float32) * w_scale / y_s.astype(np.float32)).astype(np.float32)
        y = np.rint(acc * scale) + yzp.astype(np.float64)
        return (_saturate(y, yzp.dtype),)
