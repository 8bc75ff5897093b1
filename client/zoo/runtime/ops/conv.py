"""Conv and ConvTranspose adapters.

2-D (and 1-D, seen as 2-D with H=1) float32 convolutions with a constant weight are planned
once through :func:`zoo.runtime.kernels.plan_conv2d`, which picks dense or sparse from the
weight's measured sparsity. Other ranks, dtypes and runtime weights use numpy.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from zoo.runtime.kernels import Kernel, Wide, plan_conv2d
from zoo.runtime.ops._common import apply_activation, conv_nd, resolve_pads
from zoo.runtime.registry import Array, OpRun, register


@register
class Conv(OpRun):
    """Conv with groups, dilations, strides, pads and auto_pad; a fused activation may follow."""

    op_type = "Conv"
    since = 1

    def setup(self) -> None:
        self.weight = self.const_input(1)
        self.bias = self.const_input(2)
        self.activation = self.attr("_activation")
        # the padding of the only reader, a padded conv with stride 1 (planner): the output
        # may then be written inside its zero frame (kernels/_wide.py)
        frame = self.attr("_frame")
        self.frame: tuple[int, int, int, int] | None = None if frame is None else tuple(frame)
        self.group = int(self.attr("group", 1))
        self._planned: dict[tuple[int, ...], Kernel] = {}
        # pads per (input spatial shape, weight shape): resolved once, not on every call (5
        # attribute lookups and resolve_pads were 2 of a conv step's 11 us of Python)
        self._pads_for: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
        w = self.weight
        static_pads = self.attr("auto_pad", "NOTSET") in ("NOTSET", "VALID")
        if w is not None and w.dtype == np.float32 and w.ndim in (3, 4) and static_pads:
            # Plan now when pads do not depend on the input size (everything but SAME_*).
            self._kernel_for(self._pads((1,) * (w.ndim - 2), w))

    def _geometry(self, w: Array) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        r = w.ndim - 2
        kernel = tuple(self.attr("kernel_shape", w.shape[2:]))
        strides = tuple(self.attr("strides", (1,) * r))
        dilations = tuple(self.attr("dilations", (1,) * r))
        return kernel, strides, dilations

    def _pads(self, in_spatial: tuple[int, ...], w: Array) -> tuple[int, ...]:
        key = (tuple(in_spatial), w.shape)
        cached = self._pads_for.get(key)
        if cached is not None:
            return cached
        kernel, strides, dilations = self._geometry(w)
        pads = self.attr("pads")
        resolved = resolve_pads(
            self.attr("auto_pad", "NOTSET"),
            in_spatial,
            kernel,
            strides,
            dilations,
            None if pads is None else tuple(pads),
        )
        self._pads_for[key] = resolved
        return resolved

    def _kernel_for(self, pads: tuple[int, ...]) -> Kernel:
        planned = self._planned.get(pads)
        if planned is None:
            w = self.weight
            assert w is not None
            _, strides, dilations = self._geometry(w)
            if w.ndim == 3:  # 1-D conv as 2-D with H=1: (Cout, Cg, k) -> (Cout, Cg, 1, k)
                w4 = w[:, :, None, :]
                st, dl, pd = (1, strides[0]), (1, dilations[0]), (0, pads[0], 0, pads[1])
            else:
                w4, st, dl = w, (strides[0], strides[1]), (dilations[0], dilations[1])
                pd = (pads[0], pads[1], pads[2], pads[3])
            bias = None if self.bias is None else self.bias.astype(np.float32)
            planned = plan_conv2d(
                w4,
                bias,
                strides=st,
                pads=pd,
                dilations=dl,
                group=self.group,
                activation=self.activation,
                sparse=self.ctx.sparse,
            )
            self.kernel_kind = str(getattr(planned, "kind", "unknown"))
            self._planned[pads] = planned
        return planned

    def run(
        self,
        x: Array | Wide,
        w: Array,
        b: Array | None = None,
        residual: Array | Wide | None = None,
    ) -> tuple[Array | Wide]:
        """``residual``, a 4th input only the planner adds (a fused residual Add, same shape
        as the output): the result is then ``act(conv(x) + residual)``.

        ``x``, ``residual`` and the result may be a :class:`~zoo.runtime.kernels.Wide`, a
        direct conv's output left uncropped: only Conv steps get one (``_inputs_of``)."""
        pads = self._pads(x.shape[2:], w)
        if (
            self.weight is not None
            and w is self.weight
            and (b is None or b is self.bias)  # a runtime bias is not baked into the kernel
            and x.dtype == np.float32
            and w.ndim in (3, 4)
            and (residual is None or (w.ndim == 4 and residual.dtype == np.float32))
        ):
            kernel = self._kernel_for(pads)
            if w.ndim == 3:  # (N, C, L) -> (N, C, 1, L) -> (N, Cout, 1, Lo) -> (N, Cout, Lo)
                return (kernel(np.asarray(x)[:, :, None, :])[:, :, 0, :],)
            return (kernel.wide(x, residual, self.frame),)
        x, residual = np.asarray(x), None if residual is None else np.asarray(residual)
        _, strides, dilations = self._geometry(w)
        y = conv_nd(x, w, b, strides, pads, dilations, self.group)
        if residual is not None:
            y = (y + residual).astype(y.dtype, copy=False)
        return (apply_activation(self.activation, y),)


@register
class ConvTranspose(OpRun):
    """Transposed convolution of any rank, as a scatter-add of one GEMM per kernel offset."""

    op_type = "ConvTranspose"
    since = 1

    def run(self, x: Array, w: Array, b: Array | None = None) -> tuple[Array]:
        n, cin = x.shape[:2]
        r = x.ndim - 2
        in_sp = x.shape[2:]
        group = int(self.attr("group", 1))
        k = tuple(self.attr("kernel_shape", w.shape[2:]))
        s = tuple(self.attr("strides", (1,) * r))
        d = tuple(self.attr("dilations", (1,) * r))
        outpad = tuple(self.attr("output_padding", (0,) * r))
        eff = tuple((k[i] - 1) * d[i] + 1 for i in range(r))
        full = tuple(s[i] * (in_sp[i] - 1) + outpad[i] + eff[i] for i in range(r))
        pads, out = self._output(full, in_sp, s, r)
        coutg = w.shape[1]
        cing = cin // group
        kk = int(np.prod(k, dtype=np.int64))
        # x: (N, G, Cin/G, P) -> (G, N*P, Cin/G); w: (G, Cin/G, Cout/G * K)
        npix = int(np.prod(in_sp, dtype=np.int64))
        xm = x.reshape(n, group, cing, npix).transpose(1, 0, 3, 2)
        wm = w.reshape(group, cing, coutg * kk)
        cols = np.matmul(xm, wm[:, None]).reshape(
            group, n, *in_sp, coutg, kk
        )  # (G, N, *in, Cout/G, K)
        size = tuple(max(full[i], pads[i] + out[i]) for i in range(r))
        buf = np.zeros((n, group, coutg, *size), dtype=np.result_type(x, w))
        for j, offset in enumerate(itertools.product(*(range(ki) for ki in k))):
            part = np.moveaxis(cols[..., j], -1, 2).transpose(1, 0, *range(2, 3 + r))
            dst = tuple(
                slice(offset[i] * d[i], offset[i] * d[i] + s[i] * (in_sp[i] - 1) + 1, s[i])
                for i in range(r)
            )
            buf[(slice(None), slice(None), slice(None), *dst)] += part
        crop = tuple(slice(pads[i], pads[i] + out[i]) for i in range(r))
        y = buf.reshape(n, group * coutg, *size)[(slice(None), slice(None), *crop)]
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * r)
        return (np.ascontiguousarray(y),)

    def _output(
        self, full: tuple[int, ...], in_sp: tuple[int, ...], s: tuple[int, ...], r: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Begin pads and output size from pads, output_shape or auto_pad."""
        output_shape: Any = self.attr("output_shape")
        auto_pad = self.attr("auto_pad", "NOTSET")
        if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            target = (
                tuple(output_shape)[-r:]
                if output_shape is not None
                else tuple(in_sp[i] * s[i] for i in range(r))
            )
            begin = []
            for i in range(r):
                total = max(full[i] - target[i], 0)
                # SAME_UPPER keeps the extra output at the end: fewer pads at the beginning.
                begin.append(total // 2 if auto_pad != "SAME_LOWER" else total - total // 2)
                if auto_pad == "SAME_UPPER":
                    begin[-1] = total // 2
            return tuple(begin), target
        pads = tuple(self.attr("pads", (0,) * (2 * r)))
        if auto_pad == "VALID":
            pads = (0,) * (2 * r)
        out = tuple(full[i] - pads[i] - pads[i + r] for i in range(r))
        return pads[:r], out
