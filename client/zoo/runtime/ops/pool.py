"""Pooling: MaxPool (with optional indices), AveragePool, GlobalAveragePool, GlobalMaxPool."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from zoo.runtime.kernels import Wide, maxpool2d, plane_means
from zoo.runtime.ops._common import resolve_pads
from zoo.runtime.registry import Array, OpRun, register


class _Pool(OpRun):
    """Shared window geometry: pads, ceil_mode, dilations, auto_pad."""

    def geometry(
        self, spatial: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        k = tuple(int(v) for v in self.attr("kernel_shape"))
        r = len(k)
        s = tuple(int(v) for v in self.attr("strides", (1,) * r))
        d = tuple(int(v) for v in self.attr("dilations", (1,) * r))
        auto_pad = self.attr("auto_pad", "NOTSET")
        pads_attr = self.attr("pads")
        pads = resolve_pads(
            auto_pad, spatial, k, s, d, None if pads_attr is None else tuple(pads_attr)
        )
        ceil = bool(self.attr("ceil_mode", 0))
        out = []
        for i in range(r):
            eff = (k[i] - 1) * d[i] + 1
            span = spatial[i] + pads[i] + pads[i + r] - eff
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                o = -(-spatial[i] // s[i])
            else:
                o = (-(-span // s[i]) if ceil else span // s[i]) + 1
                # ceil_mode: a window may not start inside the end padding.
                if ceil and (o - 1) * s[i] >= spatial[i] + pads[i]:
                    o -= 1
            out.append(o)
        return k, s, d, pads, tuple(out)

    def windows(
        self, x: Array, fill: Any, explicit_fill: Any = None
    ) -> tuple[Array, tuple[int, ...]]:
        """(N, C, *out, *k) window view of x padded with ``fill``, and the output size.

        ``explicit_fill`` (default ``fill``) is used for the explicit pads only; the extra
        tail that ceil_mode needs always gets ``fill``.
        """
        spatial = x.shape[2:]
        k, s, d, pads, out = self.geometry(spatial)
        r = len(k)
        xp = x
        if explicit_fill is not None:
            explicit = [(0, 0), (0, 0)] + [(pads[i], pads[i + r]) for i in range(r)]
            xp = np.pad(xp, explicit, constant_values=explicit_fill)
        width: list[tuple[int, int]] = [(0, 0), (0, 0)]
        for i in range(r):
            need = (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1
            begin = 0 if explicit_fill is not None else pads[i]
            have = xp.shape[2 + i] + begin
            width.append((begin, max(need - have, 0)))
        xp = np.pad(xp, width, constant_values=fill)
        eff = tuple((k[i] - 1) * d[i] + 1 for i in range(r))
        win = sliding_window_view(xp, eff, axis=tuple(range(2, 2 + r)))
        index: tuple[slice, ...] = (slice(None), slice(None))
        index += tuple(slice(0, (out[i] - 1) * s[i] + 1, s[i]) for i in range(r))
        index += tuple(slice(None, None, d[i]) for i in range(r))
        return win[index], out


def _lowest(dtype: np.dtype[Any]) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


@register
class MaxPool(_Pool):
    op_type = "MaxPool"
    since = 1

    def run(self, x: Array | Wide) -> tuple[Array, ...]:
        """``x`` may be a conv's output left uncropped (a ``Wide``): the kernel reads it."""
        r = x.ndim - 2
        with_indices = len(self.node.outputs) >= 2 and bool(self.node.outputs[1])
        if isinstance(x, Wide) and with_indices:  # only the kernel reads a Wide
            x = np.asarray(x)
        if x.dtype == np.float32 and r in (1, 2) and not with_indices:
            # the numba kernel: no padded copy, no window copy (see kernels/_maxpool.py)
            k, s, d, pads, out = self.geometry(x.shape[2:])
            if r == 1:  # (N, C, L) as (N, C, 1, L)
                assert not isinstance(x, Wide)
                y = maxpool2d(
                    x[:, :, None, :], (1, k[0]), (1, s[0]), (1, d[0]), (0, pads[0]), (1, out[0])
                )
                return (y[:, :, 0, :],)
            return (
                maxpool2d(
                    x,
                    (k[0], k[1]),
                    (s[0], s[1]),
                    (d[0], d[1]),
                    (pads[0], pads[1]),
                    (out[0], out[1]),
                ),
            )
        assert not isinstance(x, Wide)
        win, _ = self.windows(x, _lowest(x.dtype))
        flat = win.reshape(*win.shape[: 2 + r], -1)  # (N, C, *out, K)
        y = flat.max(axis=-1)
        if not with_indices:
            return (y,)
        # Indices: flat offsets into the unpadded input (row-major, or column-major per
        # storage_order=1), computed by pooling an index tensor through the same windows.
        idx = np.arange(x.size, dtype=np.int64).reshape(x.shape)
        if self.attr("storage_order", 0):
            n, c = x.shape[:2]
            sp = x.shape[2:]
            col = np.arange(int(np.prod(sp)), dtype=np.int64).reshape(sp[::-1]).T
            idx = (np.arange(n * c, dtype=np.int64).reshape(n, c, *(1,) * r) * col.size) + col
        iflat = self.windows(idx, -1)[0].reshape(flat.shape)
        arg = np.argmax(flat, axis=-1)[..., None]
        return y, np.take_along_axis(iflat, arg, axis=-1)[..., 0]


@register
class AveragePool(_Pool):
    op_type = "AveragePool"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        win, _ = self.windows(x, 0)
        r = x.ndim - 2
        axes = tuple(range(-r, 0))
        total = win.sum(axis=axes, dtype=np.float64)
        # Divide by the positions counted: real pixels, plus the explicit pads when
        # count_include_pad=1, never the extra tail that ceil_mode adds.
        ones = np.ones((1, 1, *x.shape[2:]))
        include = 1.0 if self.attr("count_include_pad", 0) else 0.0
        count = self.windows(ones, 0.0, explicit_fill=include)[0].sum(axis=axes)
        return ((total / count).astype(x.dtype),)


@register
class GlobalAveragePool(OpRun):
    op_type = "GlobalAveragePool"
    since = 1

    def run(self, x: Array | Wide) -> tuple[Array]:
        """``x`` may be a conv's output left uncropped (a ``Wide``), read where it is."""
        n, c = x.shape[:2]
        if isinstance(x, Wide):
            return (plane_means(x).reshape(n, c, 1, 1),)
        size = math.prod(x.shape[2:])
        if x.dtype == np.float32 and size and x.ndim > 2:
            # one BLAS matrix-vector product with 1/size: numpy's mean over the trailing
            # axes took 43 us for ResNet-50's (1, 2048, 7, 7), this 6 us (onnxruntime 13)
            planes = np.ascontiguousarray(x).reshape(n * c, size)
            y = planes @ np.full(size, 1 / size, np.float32)
            return (y.reshape(n, c, *(1,) * (x.ndim - 2)),)
        return (x.mean(axis=tuple(range(2, x.ndim)), keepdims=True).astype(x.dtype),)


@register
class GlobalMaxPool(OpRun):
    op_type = "GlobalMaxPool"
    since = 1

    def run(self, x: Array) -> tuple[Array]:
        return (x.max(axis=tuple(range(2, x.ndim)), keepdims=True),)
