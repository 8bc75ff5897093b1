"""Shape and data-movement ops: Reshape, Transpose, Concat, Slice, Gather, Pad ..."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zoo.runtime.registry import Array, OpRun, register


def _axes(axes: Any, rank: int) -> list[int]:
    return [int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(axes).reshape(-1)]


@register
class Identity(OpRun):
    op_type = "Identity"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (x,)


@register
class Constant(OpRun):
    op_type = "Constant"
    since = 1

    def run(self) -> tuple[Array]:
        for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
            if key in self.node.attrs:
                return (np.array(self.node.attrs[key], dtype=dtype),)
        for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in self.node.attrs:
                return (np.array(self.node.attrs[key], dtype=dtype).reshape(-1),)
        if "value_string" in self.node.attrs:
            return (np.array(self.node.attrs["value_string"], dtype=object),)
        if "value_strings" in self.node.attrs:
            return (np.array(self.node.attrs["value_strings"], dtype=object),)
        value = self.attr("value", self.attr("sparse_value"))
        if value is None:
            raise ValueError("Constant node has no value attribute")
        return (np.asarray(value),)


@register
class Dropout(OpRun):
    """Inference only: the identity, with an all-true mask when asked."""

    op_type = "Dropout"
    since = 1

    def run(self, x: Array, *_: Any) -> tuple[Array, Array]:
        return x, np.ones(x.shape, dtype=bool)


@register
class Flatten(OpRun):
    op_type = "Flatten"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        axis = self.attr("axis", 1)
        axis = axis + x.ndim if axis < 0 else axis
        # math.prod, not np.prod: after a run's convs numpy's reduction code is out of the
        # caches, and np.prod of the shape took 43 us in ResNet-50 (math.prod: < 1 us)
        rows = math.prod(x.shape[:axis])
        return (x.reshape(rows, -1) if x.size else x.reshape(rows, math.prod(x.shape[axis:])),)


@register
class Reshape(OpRun):
    op_type = "Reshape"
    since = 5

    def run(self, x: Array, shape: Array) -> tuple[Array]:
        dims = [int(d) for d in shape]
        if not self.attr("allowzero", 0):
            # 0 copies the input's dimension (unless allowzero, opset 14+).
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return (x.reshape(dims),)


@register
class Transpose(OpRun):
    op_type = "Transpose"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        perm = self.attr("perm")
        return (np.transpose(x, perm if perm is None else list(perm)),)


@register
class Concat(OpRun):
    op_type = "Concat"
    since = 4

    def run(self, *xs: Array) -> tuple[Array]:
        return (np.concatenate(xs, axis=self.attr("axis")),)


class _SplitBase(OpRun):
    op_type = "Split"

    def split(self, x: Array, sizes: Array | None) -> tuple[Array, ...]:
        axis = self.attr("axis", 0)
        n = len(self.node.outputs)
        if sizes is None or len(sizes) == 0:
            n = self.attr("num_outputs", n)
            chunk = -(-x.shape[axis] // n)  # ceil: the last chunk may be smaller (opset 18)
            sizes = np.array([min(chunk, x.shape[axis] - i * chunk) for i in range(n)])
        cuts = np.cumsum(np.asarray(sizes, dtype=np.int64))[:-1]
        return tuple(np.split(x, cuts, axis=axis))


@register
class Split2(_SplitBase):
    since = 2

    def run(self, x: Array) -> tuple[Array, ...]:
        split = self.attr("split")
        return self.split(x, None if split is None else np.asarray(split))


@register
class Split13(_SplitBase):
    since = 13

    def run(self, x: Array, split: Array | None = None) -> tuple[Array, ...]:
        return self.split(x, split)


def _slice(x: Array, starts: Array, ends: Array, axes: Array | None, steps: Array | None) -> Array:
    index = [slice(None)] * x.ndim
    axes_ = _axes(np.arange(len(starts)) if axes is None else axes, x.ndim)
    steps_ = np.ones(len(starts), dtype=np.int64) if steps is None else steps
    for a, s, e, st in zip(axes_, starts, ends, steps_, strict=True):
        # Python slices clamp out-of-range bounds exactly as ONNX specifies.
        index[a] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


@register
class Slice1(OpRun):
    op_type = "Slice"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        axes = self.attr("axes")
        return (
            _slice(
                x,
                np.asarray(self.attr("starts")),
                np.asarray(self.attr("ends")),
                None if axes is None else np.asarray(axes),
                None,
            ),
        )


@register
class Slice10(OpRun):
    op_type = "Slice"
    since = 10

    def run(
        self,
        x: Array,
        starts: Array,
        ends: Array,
        axes: Array | None = None,
        steps: Array | None = None,
    ) -> tuple[Array]:
        return (_slice(x, starts, ends, axes, steps),)


def _squeeze(x: Array, axes: Any) -> Array:
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(_axes(axes, x.ndim)))


def _unsqueeze(x: Array, axes: Any) -> Array:
    rank = x.ndim + len(np.asarray(axes).reshape(-1))
    return np.expand_dims(x, axis=tuple(sorted(_axes(axes, rank))))


@register
class Squeeze1(OpRun):
    op_type = "Squeeze"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (_squeeze(x, self.attr("axes")),)


@register
class Squeeze13(OpRun):
    op_type = "Squeeze"
    since = 13

    def run(self, x: Array, axes: Array | None = None) -> tuple[Array]:
        return (_squeeze(x, axes),)


@register
class Unsqueeze1(OpRun):
    op_type = "Unsqueeze"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (_unsqueeze(x, self.attr("axes")),)


@register
class Unsqueeze13(OpRun):
    op_type = "Unsqueeze"
    since = 13

    def run(self, x: Array, axes: Array) -> tuple[Array]:
        return (_unsqueeze(x, axes),)


@register
class Gather(OpRun):
    op_type = "Gather"
    since = 1

    def run(self, x: Array, indices: Array) -> tuple[Array]:
        return (np.take(x, indices.astype(np.int64), axis=self.attr("axis", 0)),)


@register
class GatherElements(OpRun):
    op_type = "GatherElements"
    since = 11

    def run(self, x: Array, indices: Array) -> tuple[Array]:
        axis = self.attr("axis", 0)
        idx = indices.astype(np.int64)
        idx = np.where(idx < 0, idx + x.shape[axis], idx)
        return (np.take_along_axis(x, idx, axis=axis),)


@register
class Shape(OpRun):
    op_type = "Shape"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        # start/end exist from opset 15; absent attributes select the whole shape.
        start, end = self.attr("start", 0), self.attr("end")
        return (np.array(x.shape[start:end], dtype=np.int64),)


@register
class Size(OpRun):
    op_type = "Size"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (np.array(x.size, dtype=np.int64),)


@register
class Expand(OpRun):
    op_type = "Expand"
    since = 8

    def run(self, x: Array, shape: Array) -> tuple[Array]:
        out = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape))
        return (np.array(np.broadcast_to(x, out)),)


@register
class Tile(OpRun):
    op_type = "Tile"
    since = 6

    def run(self, x: Array, repeats: Array) -> tuple[Array]:
        return (np.tile(x, [int(r) for r in repeats]),)


@register
class ConstantOfShape(OpRun):
    op_type = "ConstantOfShape"
    since = 9

    def run(self, shape: Array) -> tuple[Array]:
        value = self.attr("value")
        fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
        return (np.full([int(d) for d in shape], fill[0], dtype=fill.dtype),)


@register
class Range(OpRun):
    op_type = "Range"
    since = 11

    def run(self, start: Array, limit: Array, delta: Array) -> tuple[Array]:
        # Count from the spec (ceil((limit - start) / delta)), not from float accumulation.
        n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
        return ((start + np.arange(n) * delta).astype(start.dtype),)


def _pad(x: Array, pads: list[int], mode: str, value: Any, axes: list[int] | None) -> Array:
    rank = x.ndim
    axes = list(range(rank)) if axes is None else axes
    n = len(axes)
    before, after = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[i + n]
    # Negative pads crop; apply them as a slice first.
    crop = tuple(
        slice(max(-b, 0), x.shape[i] - max(-e, 0))
        for i, (b, e) in enumerate(zip(before, after, strict=True))
    )
    x = x[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in zip(before, after, strict=True)]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    if mode == "reflect":
        return np.pad(x, width, mode="reflect")
    if mode == "edge":
        return np.pad(x, width, mode="edge")
    if mode == "wrap":
        return np.pad(x, width, mode="wrap")
    raise ValueError(f"unknown Pad mode {mode!r}")


@register
class Pad2(OpRun):
    op_type = "Pad"
    since = 2

    def run(self, x: Array) -> tuple[Array]:
        pads = [int(p) for p in self.attr("pads")]
        return (_pad(x, pads, self.attr("mode", "constant"), self.attr("value", 0.0), None),)


@register
class Pad11(OpRun):
    op_type = "Pad"
    since = 11

    def run(
        self, x: Array, pads: Array, value: Array | None = None, axes: Array | None = None
    ) -> tuple[Array]:
        fill = 0 if value is None or value.size == 0 else value.reshape(-1)[0]
        ax = None if axes is None else _axes(axes, x.ndim)
        return (_pad(x, [int(p) for p in pads], self.attr("mode", "constant"), fill, ax),)
