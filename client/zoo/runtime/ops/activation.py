"""Activation ops: Relu, Clip, Sigmoid, Gelu, Softmax ... (dtype-preserving)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.runtime.kernels import empty, erf_f32, gelu_f32, softmax_rows
from zoo.runtime.registry import Array, OpRun, register

_erf_ufunc: Callable[[Array], Array] | None = None


def erf(x: Array) -> Array:
    """Vectorised ``math.erf`` (numpy has none and scipy is not a dependency)."""
    global _erf_ufunc
    if _erf_ufunc is None:
        import numba

        # Compiled lazily: numba's JIT costs ~0.3 s, paid only by models that use Erf/Gelu.
        @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)  # type: ignore[untyped-decorator, no-untyped-call]
        def _erf(v: float) -> float:
            return math.erf(v)

        _erf_ufunc = _erf
    return _erf_ufunc(x)


@register
class Relu(OpRun):
    op_type = "Relu"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        if x.dtype.kind == "f":  # into a recycled buffer when the session has one (_buffers)
            return (np.maximum(x, 0, out=empty(x.shape, x.dtype)),)
        return (np.maximum(x, 0).astype(x.dtype, copy=False),)


@register
class LeakyRelu(OpRun):
    op_type = "LeakyRelu"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        alpha = x.dtype.type(self.attr("alpha", 0.01))
        return (np.where(x < 0, x * alpha, x).astype(x.dtype, copy=False),)


@register
class PRelu(OpRun):
    op_type = "PRelu"
    since = 9

    def run(self, x: Array, slope: Array) -> tuple[Array]:
        return (np.where(x < 0, x * slope, x).astype(x.dtype, copy=False),)


@register
class ThresholdedRelu(OpRun):
    op_type = "ThresholdedRelu"
    since = 10

    def run(self, x: Array) -> tuple[Array]:
        return (np.where(x > self.attr("alpha", 1.0), x, 0).astype(x.dtype),)


@register
class Elu(OpRun):
    op_type = "Elu"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        with np.errstate(over="ignore"):
            y = np.where(x < 0, self.attr("alpha", 1.0) * (np.exp(x) - 1), x)
        return (y.astype(x.dtype),)


@register
class Selu(OpRun):
    op_type = "Selu"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        alpha, gamma = (
            self.attr("alpha", 1.67326319217681884765625),
            self.attr("gamma", 1.05070102214813232421875),
        )
        with np.errstate(over="ignore"):
            y = gamma * np.where(x <= 0, alpha * (np.exp(x) - 1), x)
        return (y.astype(x.dtype),)


@register
class Sigmoid(OpRun):
    op_type = "Sigmoid"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        with np.errstate(over="ignore"):
            return ((1 / (1 + np.exp(-x))).astype(x.dtype, copy=False),)


@register
class Tanh(OpRun):
    op_type = "Tanh"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (np.tanh(x),)


@register
class Softplus(OpRun):
    op_type = "Softplus"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        with np.errstate(over="ignore"):
            return (np.log1p(np.exp(x)).astype(x.dtype),)


@register
class HardSigmoid(OpRun):
    op_type = "HardSigmoid"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        alpha, beta = self.attr("alpha", 0.2), self.attr("beta", 0.5)
        return (np.clip(alpha * x + beta, 0, 1).astype(x.dtype),)


@register
class HardSwish(OpRun):
    op_type = "HardSwish"
    since = 14

    def run(self, x: Array) -> tuple[Array]:
        return ((x * np.clip(x / 6 + 0.5, 0, 1)).astype(x.dtype),)


@register
class Erf(OpRun):
    op_type = "Erf"
    since = 9

    def run(self, x: Array) -> tuple[Array]:
        if x.dtype == np.float32:
            return (erf_f32(x),)
        # The ufunc has float32/float64 loops: compute float16 in float32, ints in float64.
        wide = x.astype(np.float64) if x.dtype.kind != "f" else x
        return (np.asarray(erf(wide)).astype(x.dtype, copy=False),)


@register
class Gelu(OpRun):
    op_type = "Gelu"
    since = 20

    def run(self, x: Array) -> tuple[Array]:
        if x.dtype == np.float32 and self.attr("approximate", "none") == "none":
            return (gelu_f32(x),)
        if self.attr("approximate", "none") == "tanh":
            inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
            return ((0.5 * x * (1 + np.tanh(inner))).astype(x.dtype),)
        return ((0.5 * x * (1 + erf(x / x.dtype.type(math.sqrt(2))))).astype(x.dtype),)


@register
class GeluContrib(Gelu):
    """onnxruntime's contrib ``com.microsoft::Gelu`` (exact, erf): what the planner fuses
    torch's Div/Erf/Add/Mul/Mul pattern into, at any opset."""

    domain = "com.microsoft"
    since = 1


class _ClipBase(OpRun):
    op_type = "Clip"

    def bounds(self, lo: Any, hi: Any) -> tuple[Any, Any]:
        return lo, hi

    def clip(self, x: Array, lo: Any, hi: Any) -> Array:
        y = x
        if lo is not None:
            y = np.maximum(y, lo)
        if hi is not None:
            y = np.minimum(y, hi)
        return np.asarray(y).astype(x.dtype, copy=False)


@register
class Clip1(_ClipBase):
    """min/max attributes (opsets 1-10; v1's consumed_inputs is irrelevant at inference)."""

    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (self.clip(x, self.attr("min", -np.inf), self.attr("max", np.inf)),)


@register
class Clip11(_ClipBase):
    """Since opset 11 min and max are optional inputs."""

    since = 11

    def run(self, x: Array, lo: Array | None = None, hi: Array | None = None) -> tuple[Array]:
        return (self.clip(x, lo, hi),)


def _softmax(x: Array, axis: int, log: bool) -> Array:
    # (…, axis, …): subtract the max for stability, normalise along axis.
    if x.dtype == np.float32 and x.ndim and axis in (-1, x.ndim - 1) and x.shape[-1]:
        # the last axis of a float32 array: one pass per row (kernels/_rowwise.py)
        rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
        return softmax_rows(rows, log).reshape(x.shape)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    s = np.sum(e, axis=axis, keepdims=True)
    y = shifted - np.log(s) if log else e / s
    return np.asarray(y).astype(x.dtype, copy=False)


class _SoftmaxLegacy(OpRun):
    """Before opset 13: coerce to 2-D at ``axis`` (default 1) and normalise each row."""

    log = False

    def run(self, x: Array) -> tuple[Array]:
        axis = self.attr("axis", 1)
        axis = axis + x.ndim if axis < 0 else axis
        rows = math.prod(x.shape[:axis])
        flat = x.reshape(rows, -1)  # (prod(shape[:axis]), prod(shape[axis:]))
        return (_softmax(flat, 1, self.log).reshape(x.shape),)


class _Softmax13(OpRun):
    """From opset 13: normalise along ``axis`` (default -1) only."""

    log = False

    def run(self, x: Array) -> tuple[Array]:
        return (_softmax(x, self.attr("axis", -1), self.log),)


@register
class Softmax1(_SoftmaxLegacy):
    op_type = "Softmax"
    since = 1


@register
class Softmax13(_Softmax13):
    op_type = "Softmax"
    since = 13


@register
class LogSoftmax1(_SoftmaxLegacy):
    op_type = "LogSoftmax"
    since = 1
    log = True


@register
class LogSoftmax13(_Softmax13):
    op_type = "LogSoftmax"
    since = 13
    log = True


@register
class Softsign(OpRun):
    op_type = "Softsign"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return ((x / (1 + np.abs(x))).astype(x.dtype),)


@register
class Mish(OpRun):
    op_type = "Mish"
    since = 18

    def run(self, x: Array) -> tuple[Array]:
        return ((x * np.tanh(np.log1p(np.exp(x)))).astype(x.dtype),)


@register
class Celu(OpRun):
    op_type = "Celu"
    since = 12

    def run(self, x: Array) -> tuple[Array]:
        alpha = float(self.attr("alpha", 1.0))
        y = np.maximum(x, 0) + np.minimum(0, alpha * (np.exp(x / alpha) - 1))
        return (y.astype(x.dtype),)


@register
class Swish(OpRun):
    op_type = "Swish"
    since = 24

    def run(self, x: Array) -> tuple[Array]:
        alpha = float(self.attr("alpha", 1.0))
        return ((x / (1 + np.exp(-alpha * x))).astype(x.dtype),)


@register
class Shrink(OpRun):
    op_type = "Shrink"
    since = 9

    def run(self, x: Array) -> tuple[Array]:
        bias, lambd = float(self.attr("bias", 0.0)), float(self.attr("lambd", 0.5))
        y = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))
        return (y.astype(x.dtype),)


def _hardmax(x: Array, axis: int) -> Array:
    idx = np.expand_dims(np.argmax(x, axis=axis), axis)
    y = np.zeros_like(x)
    np.put_along_axis(y, idx, 1, axis=axis)
    return y


@register
class Hardmax1(OpRun):
    """Before opset 13: coerce to 2-D at ``axis`` like Softmax."""

    op_type = "Hardmax"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        axis = self.attr("axis", 1)
        axis = axis + x.ndim if axis < 0 else axis
        rows = math.prod(x.shape[:axis])
        return (_hardmax(x.reshape(rows, -1), 1).reshape(x.shape),)


@register
class Hardmax13(OpRun):
    op_type = "Hardmax"
    since = 13

    def run(self, x: Array) -> tuple[Array]:
        return (_hardmax(x, self.attr("axis", -1)),)
