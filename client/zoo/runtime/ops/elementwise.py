"""Element-wise arithmetic, comparison and logic ops (numpy broadcasting = ONNX broadcasting)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.runtime.kernels import empty
from zoo.runtime.registry import Array, OpRun, register


def _binary(name: str, since: int, fn: Callable[[Array, Array], Array], keep: bool) -> type[OpRun]:
    """An op ``y = fn(a, b)``; ``keep`` casts back to a's dtype (arithmetic keeps the type)."""

    def run(self: OpRun, a: Array, b: Array) -> tuple[Array]:
        if keep and isinstance(fn, np.ufunc) and a.dtype == b.dtype and a.dtype.kind == "f":
            # into a recycled buffer when the session has one of this shape (_buffers)
            out = empty(np.broadcast_shapes(a.shape, b.shape), a.dtype)
            with np.errstate(all="ignore"):
                return (fn(a, b, out=out),)
        with np.errstate(all="ignore"):  # inf/nan follow IEEE like every ONNX runtime
            y = np.asarray(fn(a, b))
        return (y.astype(a.dtype, copy=False) if keep else y,)

    return register(type(name, (OpRun,), {"op_type": name, "since": since, "run": run}))


def _unary(name: str, since: int, fn: Callable[[Array], Array]) -> type[OpRun]:
    """An op ``y = fn(x)`` keeping x's dtype.

    Versions before 6 differ only by the legacy ``consumed_inputs`` attribute, so the simple
    math ops register since opset 1.
    """

    def run(self: OpRun, x: Array) -> tuple[Array]:
        with np.errstate(all="ignore"):
            return (np.asarray(fn(x)).astype(x.dtype, copy=False),)

    return register(type(name, (OpRun,), {"op_type": name, "since": since, "run": run}))


def _int_div(a: Array, b: Array) -> Array:
    if np.issubdtype(a.dtype, np.integer):
        # ONNX integer division truncates toward zero (C semantics), numpy floors.
        q = np.floor_divide(a, b)
        return np.asarray(q + ((np.remainder(a, b) != 0) & ((a < 0) ^ (b < 0))).astype(q.dtype))
    return np.asarray(np.divide(a, b))


def _pow(a: Array, b: Array) -> Array:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.floating):
        return np.asarray(np.power(a.astype(np.float64), b))
    if np.issubdtype(a.dtype, np.floating):
        return np.asarray(np.power(a, b.astype(a.dtype)))
    return np.asarray(np.power(a, b.astype(np.int64)))


Add = _binary("Add", 7, np.add, keep=True)
Sub = _binary("Sub", 7, np.subtract, keep=True)
Mul = _binary("Mul", 7, np.multiply, keep=True)
Div = _binary("Div", 7, _int_div, keep=True)
Pow = _binary("Pow", 7, _pow, keep=True)
Equal = _binary("Equal", 7, np.equal, keep=False)
Less = _binary("Less", 7, np.less, keep=False)
LessOrEqual = _binary("LessOrEqual", 12, np.less_equal, keep=False)
Greater = _binary("Greater", 7, np.greater, keep=False)
GreaterOrEqual = _binary("GreaterOrEqual", 12, np.greater_equal, keep=False)
And = _binary("And", 7, np.logical_and, keep=False)
Or = _binary("Or", 7, np.logical_or, keep=False)
Xor = _binary("Xor", 7, np.logical_xor, keep=False)

Sqrt = _unary("Sqrt", 1, np.sqrt)
Exp = _unary("Exp", 1, np.exp)
Log = _unary("Log", 1, np.log)
Neg = _unary("Neg", 1, np.negative)
Abs = _unary("Abs", 1, np.abs)
Reciprocal = _unary("Reciprocal", 1, np.reciprocal)
Floor = _unary("Floor", 1, np.floor)
Ceil = _unary("Ceil", 1, np.ceil)
Round = _unary("Round", 11, np.round)  # numpy rounds half to even, as ONNX requires
Sign = _unary("Sign", 9, np.sign)
Sin = _unary("Sin", 7, np.sin)
Cos = _unary("Cos", 7, np.cos)
Not = _unary("Not", 1, np.logical_not)


@register
class Mod(OpRun):
    op_type = "Mod"
    since = 10

    def run(self, a: Array, b: Array) -> tuple[Array]:
        with np.errstate(all="ignore"):
            y = np.fmod(a, b) if self.attr("fmod", 0) else np.mod(a, b)
        return (y.astype(a.dtype, copy=False),)


def _variadic(name: str, since: int, fn: Callable[[Array, Array], Array]) -> type[OpRun]:
    def run(self: OpRun, *xs: Array) -> tuple[Array]:
        y = xs[0]
        for x in xs[1:]:
            y = fn(y, x)
        if name == "Mean":
            y = y / len(xs)
        return (np.asarray(y).astype(xs[0].dtype, copy=False),)

    return register(type(name, (OpRun,), {"op_type": name, "since": since, "run": run}))


Max = _variadic("Max", 8, np.maximum)
Min = _variadic("Min", 8, np.minimum)
Sum = _variadic("Sum", 8, np.add)
Mean = _variadic("Mean", 8, np.add)


@register
class Where(OpRun):
    op_type = "Where"
    since = 9

    def run(self, cond: Array, x: Array, y: Array) -> tuple[Array]:
        return (np.where(cond, x, y).astype(x.dtype, copy=False),)


@register
class IsNaN(OpRun):
    op_type = "IsNaN"
    since = 9

    def run(self, x: Array) -> tuple[Array]:
        return (np.isnan(x),)


@register
class IsInf(OpRun):
    op_type = "IsInf"
    since = 10

    def run(self, x: Array) -> tuple[Array]:
        pos, neg = self.attr("detect_positive", 1), self.attr("detect_negative", 1)
        return (np.isinf(x) & (((x > 0) & bool(pos)) | ((x < 0) & bool(neg))),)


def _onnx_dtype(to: int) -> np.dtype[Any]:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(to))


def cast_array(x: Array, dtype: np.dtype[Any]) -> Array:
    """Cast with ONNX rules: strings parse as numbers; float -> int saturates nothing."""
    if x.dtype.kind in "OUS" and dtype.kind not in "OUS":
        return (
            np.array([float(v) for v in x.reshape(-1)], dtype=np.float64)
            .astype(dtype)
            .reshape(x.shape)
        )
    if dtype.kind == "O":
        if x.dtype.kind == "f":
            return np.array([_float_str(v) for v in x.reshape(-1)], dtype=object).reshape(x.shape)
        return x.astype(str).astype(object)
    with np.errstate(all="ignore"):
        return x.astype(dtype)


def _float_str(v: Any) -> str:
    # ONNX prints floats the way C++'s std::to_string-with-precision does: shortest round-trip.
    f = float(np.float32(v))
    if np.isnan(f):
        return "NaN"
    if np.isinf(f):
        return "INF" if f > 0 else "-INF"
    return repr(np.float32(v)).removeprefix("np.float32(").removesuffix(")")


@register
class Cast(OpRun):
    op_type = "Cast"
    since = 6

    def run(self, x: Array) -> tuple[Array]:
        return (cast_array(np.asarray(x), _onnx_dtype(self.attr("to"))),)


@register
class CastLike(OpRun):
    op_type = "CastLike"
    since = 15

    def run(self, x: Array, like: Array) -> tuple[Array]:
        return (cast_array(np.asarray(x), like.dtype),)


Tan = _unary("Tan", 7, np.tan)
Asin = _unary("Asin", 7, np.arcsin)
Acos = _unary("Acos", 7, np.arccos)
Atan = _unary("Atan", 7, np.arctan)
Sinh = _unary("Sinh", 9, np.sinh)
Cosh = _unary("Cosh", 9, np.cosh)
Asinh = _unary("Asinh", 9, np.arcsinh)
Acosh = _unary("Acosh", 9, np.arccosh)
Atanh = _unary("Atanh", 9, np.arctanh)
BitwiseNot = _unary("BitwiseNot", 18, np.invert)
BitwiseAnd = _binary("BitwiseAnd", 18, np.bitwise_and, keep=True)
BitwiseOr = _binary("BitwiseOr", 18, np.bitwise_or, keep=True)
BitwiseXor = _binary("BitwiseXor", 18, np.bitwise_xor, keep=True)


@register
class BitShift(OpRun):
    op_type = "BitShift"
    since = 11

    def run(self, x: Array, y: Array) -> tuple[Array]:
        shift = np.left_shift if self.attr("direction") == "LEFT" else np.right_shift
        return (np.asarray(shift(x, y.astype(x.dtype))).astype(x.dtype),)
