"""Index-driven ops: GatherND, ScatterND, ScatterElements, OneHot, NonZero, Compress, Trilu,
CumSum, EyeLike, DepthToSpace, SpaceToDepth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.runtime.registry import Array, OpRun, register

_REDUCE_AT: dict[str, Callable[..., None]] = {
    "add": np.add.at,
    "mul": np.multiply.at,
    "max": np.maximum.at,
    "min": np.minimum.at,
}


def _gather_nd(data: Array, indices: Array) -> Array:
    # (…, k) indices pick data[i0, …, ik-1]: result (…) + data.shape[k:]
    return np.asarray(data[tuple(np.moveaxis(indices, -1, 0))])


@register
class GatherND(OpRun):
    op_type = "GatherND"
    since = 11

    def run(self, data: Array, indices: Array) -> tuple[Array]:
        bd = int(self.attr("batch_dims", 0))
        if bd == 0:
            return (_gather_nd(data, indices),)
        batch = data.shape[:bd]
        d = data.reshape(-1, *data.shape[bd:])
        i = indices.reshape(-1, *indices.shape[bd:])
        out = np.stack([_gather_nd(d[j], i[j]) for j in range(d.shape[0])])
        return (out.reshape(*batch, *out.shape[1:]),)


@register
class ScatterND(OpRun):
    op_type = "ScatterND"
    since = 11

    def run(self, data: Array, indices: Array, updates: Array) -> tuple[Array]:
        out = data.copy()
        reduction = self.attr("reduction", "none")
        k = indices.shape[-1]
        flat_idx = indices.reshape(-1, k)
        flat_upd = updates.reshape(-1, *data.shape[k:])
        for idx, upd in zip(flat_idx, flat_upd, strict=True):
            where = tuple(int(v) for v in idx)
            if reduction == "none":
                out[where] = upd
            else:
                _REDUCE_AT[reduction](out, where, upd)
        return (out,)


@register
class ScatterElements(OpRun):
    op_type = "ScatterElements"
    since = 11

    def run(self, data: Array, indices: Array, updates: Array) -> tuple[Array]:
        axis = int(self.attr("axis", 0))
        axis = axis + data.ndim if axis < 0 else axis
        idx = np.where(indices < 0, indices + data.shape[axis], indices)
        full: list[Any] = list(np.indices(indices.shape, sparse=True))
        full[axis] = idx
        out = data.copy()
        reduction = self.attr("reduction", "none")
        if reduction == "none":
            out[tuple(full)] = updates
        else:
            _REDUCE_AT[reduction](out, tuple(full), updates)
        return (out,)


@register
class OneHot(OpRun):
    op_type = "OneHot"
    since = 9

    def run(self, indices: Array, depth: Array, values: Array) -> tuple[Array]:
        n = int(depth.reshape(-1)[0])
        idx = indices.astype(np.int64)
        idx = np.where(idx < 0, idx + n, idx)
        axis = int(self.attr("axis", -1))
        axis = axis + indices.ndim + 1 if axis < 0 else axis
        hot = np.expand_dims(idx, -1) == np.arange(n)  # (…, depth); out-of-range: all off
        hot = np.moveaxis(hot, -1, axis)
        return (np.where(hot, values[1], values[0]).astype(values.dtype),)


@register
class NonZero(OpRun):
    op_type = "NonZero"
    since = 9

    def run(self, x: Array) -> tuple[Array]:
        return (np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1),)


@register
class Compress(OpRun):
    op_type = "Compress"
    since = 9

    def run(self, x: Array, condition: Array) -> tuple[Array]:
        axis = self.attr("axis")
        return (np.compress(condition.astype(bool), x, axis=axis),)


@register
class Trilu(OpRun):
    op_type = "Trilu"
    since = 14

    def run(self, x: Array, k: Array | None = None) -> tuple[Array]:
        kk = 0 if k is None else int(k.reshape(-1)[0])
        return (np.triu(x, kk) if self.attr("upper", 1) else np.tril(x, kk),)


@register
class CumSum(OpRun):
    op_type = "CumSum"
    since = 11

    def run(self, x: Array, axis: Array) -> tuple[Array]:
        a = int(axis.reshape(-1)[0])
        reverse, exclusive = bool(self.attr("reverse", 0)), bool(self.attr("exclusive", 0))
        y = np.flip(x, a) if reverse else x
        c = np.cumsum(y, axis=a, dtype=x.dtype)
        if exclusive:  # shift by one along the axis, starting from 0
            c = np.concatenate(
                [np.zeros_like(np.take(c, [0], axis=a)), np.delete(c, -1, axis=a)], axis=a
            )
        return (np.flip(c, a) if reverse else c,)


@register
class EyeLike(OpRun):
    op_type = "EyeLike"
    since = 9

    def run(self, x: Array) -> tuple[Array]:
        from onnx import helper

        code = self.attr("dtype")
        dtype: Any = x.dtype if code is None else helper.tensor_dtype_to_np_dtype(code)
        return (np.eye(x.shape[0], x.shape[1], int(self.attr("k", 0)), dtype=dtype),)


@register
class DepthToSpace(OpRun):
    op_type = "DepthToSpace"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        bs = int(self.attr("blocksize"))
        n, c, h, w = x.shape
        if self.attr("mode", "DCR") == "DCR":  # depth-column-row: block index outermost
            y = x.reshape(n, bs, bs, c // bs**2, h, w).transpose(0, 3, 4, 1, 5, 2)
        else:  # CRD: channel outermost
            y = x.reshape(n, c // bs**2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
        return (y.reshape(n, c // bs**2, h * bs, w * bs),)


@register
class SpaceToDepth(OpRun):
    op_type = "SpaceToDepth"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        bs = int(self.attr("blocksize"))
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // bs, bs, w // bs, bs)
        # DCR puts the block offset outermost in the output channels, CRD the input channel.
        perm = (0, 3, 5, 1, 2, 4) if self.attr("mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
        y = y.transpose(perm)
        return (y.reshape(n, c * bs * bs, h // bs, w // bs),)
