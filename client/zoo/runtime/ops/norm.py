"""Normalisation: BatchNormalization, LayerNormalization, InstanceNormalization."""

from __future__ import annotations

import math

import numpy as np

from zoo.runtime.kernels import layer_norm_rows
from zoo.runtime.registry import Array, OpRun, register


def _per_channel(v: Array, rank: int) -> Array:
    """(C,) -> (1, C, 1, ..., 1) so it broadcasts over (N, C, *spatial)."""
    return v.reshape((1, -1) + (1,) * (rank - 2))


@register
class BatchNormalization(OpRun):
    """Inference semantics at every opset (running statistics); training_mode=1 uses batch ones.

    Before opset 9, ``spatial=0`` gives one statistic per (C, D1, ...) element instead of
    per channel.
    """

    op_type = "BatchNormalization"
    since = 1

    def run(self, x: Array, scale: Array, b: Array, mean: Array, var: Array) -> tuple[Array, ...]:
        eps = float(self.attr("epsilon", 1e-5))
        r = x.ndim
        if self.attr("spatial", 1) == 0:
            shape = (1, *x.shape[1:])  # statistics per element of (C, D1, ...)
            scale, b, mean, var = (v.reshape(shape) for v in (scale, b, mean, var))
            y = (x - mean) / np.sqrt(var + eps) * scale + b
            return (y.astype(x.dtype),)
        if self.attr("training_mode", 0):
            axes = (0, *range(2, r))
            batch_mean = x.mean(axis=axes)
            batch_var = x.var(axis=axes)
            y = (x - _per_channel(batch_mean, r)) / np.sqrt(_per_channel(batch_var, r) + eps)
            y = y * _per_channel(scale, r) + _per_channel(b, r)
            momentum = float(self.attr("momentum", 0.9))
            run_mean = mean * momentum + batch_mean * (1 - momentum)
            run_var = var * momentum + batch_var * (1 - momentum)
            return y.astype(x.dtype), run_mean.astype(mean.dtype), run_var.astype(var.dtype)
        factor = scale / np.sqrt(var + eps)  # (C,)
        shift = b - mean * factor
        y = x * _per_channel(factor, r) + _per_channel(shift, r)
        return (y.astype(x.dtype),)


@register
class LayerNormalization(OpRun):
    op_type = "LayerNormalization"
    since = 17

    def run(self, x: Array, scale: Array, b: Array | None = None) -> tuple[Array, Array, Array]:
        axis = int(self.attr("axis", -1))
        axis = axis + x.ndim if axis < 0 else axis
        eps = float(self.attr("epsilon", 1e-5))
        axes = tuple(range(axis, x.ndim))
        d = math.prod(x.shape[axis:])
        if (
            x.dtype == np.float32
            and d > 0
            and scale.dtype == np.float32
            and scale.size == d
            and (b is None or (b.dtype == np.float32 and b.size == d))
        ):  # statistics in float32 either way: one pass per row (kernels/_rowwise.py)
            stat_shape = x.shape[:axis] + (1,) * (x.ndim - axis)
            y, mean, inv = layer_norm_rows(
                np.ascontiguousarray(x).reshape(-1, d),
                np.ascontiguousarray(scale).reshape(d),
                None if b is None else np.ascontiguousarray(b).reshape(d),
                eps,
            )
            return y.reshape(x.shape), mean.reshape(stat_shape), inv.reshape(stat_shape)
        # stash_type=1 (the default): statistics in float32 whatever the input type.
        xs = x.astype(np.float32) if self.attr("stash_type", 1) == 1 else x
        mean = xs.mean(axis=axes, keepdims=True)
        centered = xs - mean
        inv_std = 1 / np.sqrt((centered * centered).mean(axis=axes, keepdims=True) + eps)
        y = centered * inv_std * scale
        if b is not None:
            y = y + b
        return y.astype(x.dtype), mean.astype(np.float32), inv_std.astype(np.float32)


@register
class InstanceNormalization(OpRun):
    op_type = "InstanceNormalization"
    since = 6

    def run(self, x: Array, scale: Array, b: Array) -> tuple[Array]:
        eps = float(self.attr("epsilon", 1e-5))
        axes = tuple(range(2, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        r = x.ndim
        y = (x - mean) / np.sqrt(var + eps) * _per_channel(scale, r) + _per_channel(b, r)
        return (y.astype(x.dtype),)


@register
class LpNormalization(OpRun):
    op_type = "LpNormalization"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        axis, p = int(self.attr("axis", -1)), int(self.attr("p", 2))
        norm = (
            np.abs(x).sum(axis=axis, keepdims=True)
            if p == 1
            else np.sqrt((x * x).sum(axis=axis, keepdims=True))
        )
        return (np.where(norm == 0, 0, x / np.where(norm == 0, 1, norm)).astype(x.dtype),)


@register
class RMSNormalization(OpRun):
    op_type = "RMSNormalization"
    since = 23

    def run(self, x: Array, scale: Array) -> tuple[Array]:
        axis = int(self.attr("axis", -1))
        axis = axis + x.ndim if axis < 0 else axis
        eps = float(self.attr("epsilon", 1e-5))
        xs = x.astype(np.float32) if self.attr("stash_type", 1) == 1 else x
        ms = (xs * xs).mean(axis=tuple(range(axis, x.ndim)), keepdims=True)
        return ((xs / np.sqrt(ms + eps) * scale).astype(x.dtype),)


class _GroupNormBase(OpRun):
    op_type = "GroupNormalization"
    per_channel = True

    def run(self, x: Array, scale: Array, b: Array) -> tuple[Array]:
        groups = int(self.attr("num_groups"))
        eps = float(self.attr("epsilon", 1e-5))
        n, c = x.shape[:2]
        g = x.astype(np.float32).reshape(n, groups, -1)  # (N, G, C/G * spatial)
        mean = g.mean(axis=-1, keepdims=True)
        var = g.var(axis=-1, keepdims=True)
        y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
        if not self.per_channel:  # opset 18: one scale/bias per group
            scale, b = np.repeat(scale, c // groups), np.repeat(b, c // groups)
        y = y * _per_channel(scale, x.ndim) + _per_channel(b, x.ndim)
        return (y.astype(x.dtype),)


@register
class GroupNormalization18(_GroupNormBase):
    since = 18
    per_channel = False


@register
class GroupNormalization21(_GroupNormBase):
    since = 21
