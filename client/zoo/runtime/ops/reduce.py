"""Reductions (ReduceMean, ReduceSum, ReduceMax ...), ArgMax/ArgMin and TopK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.runtime.registry import Array, OpRun, register

_Reducer = Callable[[Array, tuple[int, ...] | None, bool], Array]


def _ident(fn: Callable[..., Array], identity_hi: bool) -> _Reducer:
    """A max/min reducer that returns the identity (-inf/+inf or int limit) on empty input."""

    def run(x: Array, axes: tuple[int, ...] | None, keep: bool) -> Array:
        if x.size:
            return fn(x, axis=axes, keepdims=keep)
        if x.dtype.kind == "b":
            return fn(x, axis=axes, keepdims=keep, initial=identity_hi)
        info: Any = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
        init = (
            (np.inf if x.dtype.kind == "f" else info.max)
            if identity_hi
            else (-np.inf if x.dtype.kind == "f" else info.min)
        )
        return fn(x, axis=axes, keepdims=keep, initial=init)

    return run


_REDUCERS: dict[str, _Reducer] = {
    "ReduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "ReduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "ReduceMax": _ident(np.max, identity_hi=False),
    "ReduceMin": _ident(np.min, identity_hi=True),
    "ReduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "ReduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "ReduceL2": lambda x, a, k: np.sqrt(np.sum(np.square(x), axis=a, keepdims=k)),
    "ReduceSumSquare": lambda x, a, k: np.sum(np.square(x), axis=a, keepdims=k),
    "ReduceLogSum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "ReduceLogSumExp": lambda x, a, k: np.log(np.sum(np.exp(x), axis=a, keepdims=k)),
}


class _Reduce(OpRun):
    axes_from_input = False

    def reduce(self, x: Array, axes: Any) -> Array:
        keep = bool(self.attr("keepdims", 1))
        ax = None if axes is None else np.asarray(axes, dtype=np.int64).reshape(-1)
        if ax is not None and ax.size == 0:
            if self.attr("noop_with_empty_axes", 0):
                return x
            ax = None
        norm = None if ax is None else tuple(int(a) % max(x.ndim, 1) for a in ax)
        with np.errstate(all="ignore"):
            y = np.asarray(_REDUCERS[self.op_type](x, norm, keep))
        return y.astype(x.dtype, copy=False)


class _ReduceAttr(_Reduce):
    def run(self, x: Array) -> tuple[Array]:
        return (self.reduce(x, self.attr("axes")),)


class _ReduceInput(_Reduce):
    def run(self, x: Array, axes: Array | None = None) -> tuple[Array]:
        return (self.reduce(x, axes),)


# ReduceSum moved its axes to an input in opset 13, every other reduction in opset 18.
for _name in _REDUCERS:
    _switch = 13 if _name == "ReduceSum" else 18
    register(type(_name + "1", (_ReduceAttr,), {"op_type": _name, "since": 1}))
    register(type(_name + str(_switch), (_ReduceInput,), {"op_type": _name, "since": _switch}))


class _ArgBase(OpRun):
    largest = True

    def pick(self, x: Array, axis: int) -> Array:
        return np.asarray(np.argmax(x, axis=axis) if self.largest else np.argmin(x, axis=axis))

    def run(self, x: Array) -> tuple[Array]:
        axis = self.attr("axis", 0)
        axis = axis + x.ndim if axis < 0 else axis
        if self.attr("select_last_index", 0):
            flipped = np.flip(x, axis=axis)
            idx = x.shape[axis] - 1 - self.pick(flipped, axis)
        else:
            idx = self.pick(x, axis)
        if self.attr("keepdims", 1):
            idx = np.expand_dims(idx, axis)
        return (np.asarray(idx, dtype=np.int64),)


@register
class ArgMax(_ArgBase):
    op_type = "ArgMax"
    since = 1


@register
class ArgMin(_ArgBase):
    op_type = "ArgMin"
    since = 1
    largest = False


def _topk(x: Array, k: int, axis: int, largest: bool, sort: bool) -> tuple[Array, Array]:
    del sort  # a sorted result is a valid answer whether or not sorting was asked for
    key = x.astype(np.float64) if x.dtype.kind in "ui" else x
    # Stable sort keeps the lower index first among equal values, as ONNX requires.
    order = np.argsort(-key if largest else key, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


@register
class TopK1(OpRun):
    op_type = "TopK"
    since = 1

    def run(self, x: Array) -> tuple[Array, Array]:
        return _topk(x, self.attr("k"), self.attr("axis", -1), True, True)


@register
class TopK10(OpRun):
    op_type = "TopK"
    since = 10

    def run(self, x: Array, k: Array) -> tuple[Array, Array]:
        largest, sort = bool(self.attr("largest", 1)), bool(self.attr("sorted", 1))
        return _topk(x, int(k.reshape(-1)[0]), self.attr("axis", -1), largest, sort)
