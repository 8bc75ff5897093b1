"""Resize (nearest, linear, cubic, with optional antialiasing) and Upsample, one axis at a time.

Every mode is separable, so an N-D resize is a sequence of 1-D resamplings: nearest is a
gather, linear and cubic are weighted sums over a few taps (more when antialiasing widens
the filter for downscaling). Taps outside the input repeat the edge value, or are dropped
and the weights renormalised when ``exclude_outside=1``.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.runtime.registry import Array, OpRun, register


def _source_coords(
    mode: str, out_size: int, in_size: int, scale: float, roi: tuple[float, float]
) -> Array:
    """Map output indices to (fractional) input coordinates for one axis."""
    x = np.arange(out_size, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out_size / (scale * in_size)
        offset = in_size / 2 * (1 - adjustment)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if in_size * scale > 1 else np.full_like(x, -0.5)
    if mode == "align_corners":
        # The spec divides by the unrounded resized length (in_size * scale), not out_size.
        length = in_size * scale
        return x * (in_size - 1) / (length - 1) if length > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out_size > 1:
            return start * (in_size - 1) + x * (end - start) * (in_size - 1) / (out_size - 1)
        return np.full_like(x, 0.5 * (start + end) * (in_size - 1))
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def _nearest(coords: Array, mode: str) -> Array:
    if mode == "round_prefer_floor":
        return np.ceil(coords - 0.5)
    if mode == "round_prefer_ceil":
        return np.floor(coords + 0.5)
    if mode == "floor":
        return np.floor(coords)
    if mode == "ceil":
        return np.ceil(coords)
    raise ValueError(f"unknown nearest_mode {mode!r}")


class _ResizeBase(OpRun):
    op_type = "Resize"

    def resize(
        self, x: Array, roi: Array | None, scales: Array | None, sizes: Array | None
    ) -> Array:
        mode = self.attr("mode", "nearest")
        if mode not in ("nearest", "linear", "cubic"):
            raise ValueError(f"unknown Resize mode {mode!r}; expected nearest, linear or cubic")
        rank = x.ndim
        axes = [int(a) % rank for a in self.attr("axes", list(range(rank)))]
        full_scales = [1.0] * rank
        out_shape = list(x.shape)
        if sizes is not None and sizes.size:
            target = [int(s) for s in sizes]
            policy = self.attr("keep_aspect_ratio_policy", "stretch")
            ratios = [target[i] / x.shape[a] for i, a in enumerate(axes)]
            if policy != "stretch":
                # One scale for every resized axis: the largest that fits, or smallest covering.
                common = min(ratios) if policy == "not_larger" else max(ratios)
                ratios = [common] * len(axes)
                target = [math.floor(common * x.shape[a] + 0.5) for a in axes]
            for i, a in enumerate(axes):
                out_shape[a], full_scales[a] = target[i], ratios[i]
        elif scales is not None and scales.size:
            for i, a in enumerate(axes):
                full_scales[a] = float(scales[i])
                out_shape[a] = math.floor(x.shape[a] * float(scales[i]))
        else:
            raise ValueError("Resize needs either scales or sizes")
        roi_full: list[tuple[float, float]] = [(0.0, 1.0)] * rank
        if roi is not None and roi.size:
            n = len(axes)
            for i, a in enumerate(axes):
                roi_full[a] = (float(roi[i]), float(roi[i + n]))
        coord_mode = self.attr("coordinate_transformation_mode", "half_pixel")
        y = x.astype(np.float64) if mode != "nearest" else x
        for a in range(rank):
            if (
                out_shape[a] == x.shape[a]
                and full_scales[a] == 1.0
                and coord_mode != "tf_crop_and_resize"
            ):
                continue
            coords = _source_coords(
                coord_mode, out_shape[a], x.shape[a], full_scales[a], roi_full[a]
            )
            y = self._axis(y, a, coords, x.shape[a], mode, full_scales[a])
        return np.asarray(y).astype(x.dtype) if x.dtype.kind == "f" else np.rint(y).astype(x.dtype)

    def _axis(
        self, y: Array, axis: int, coords: Array, size: int, mode: str, scale: float
    ) -> Array:
        """Resample ``y`` along ``axis`` at ``coords`` (fractional input positions)."""
        outside = (coords < 0) | (coords > size - 1)
        shape = [1] * y.ndim
        shape[axis] = -1
        if mode == "nearest":
            idx = np.clip(
                _nearest(coords, self.attr("nearest_mode", "round_prefer_floor")), 0, size - 1
            )
            out = np.take(y, idx.astype(np.int64), axis=axis)
        else:
            taps, weights = self._taps(coords, size, mode, scale)  # (out, n) each
            out = np.zeros((*y.shape[:axis], len(coords), *y.shape[axis + 1 :]))
            for t in range(taps.shape[1]):
                out += np.take(y, taps[:, t], axis=axis) * weights[:, t].reshape(shape)
        if self.attr("coordinate_transformation_mode") == "tf_crop_and_resize" and outside.any():
            fill = float(self.attr("extrapolation_value", 0.0))
            out = np.where(outside.reshape(shape), fill, out)
        return np.asarray(out)

    def _taps(self, coords: Array, size: int, mode: str, scale: float) -> tuple[Array, Array]:
        """Input indices and weights of the filter taps for each output position."""
        base = np.ceil(coords) - 1  # an integral coordinate uses ratio 1 on its left tap
        ratio = (coords - base)[:, None]  # (out, 1), in (0, 1]
        a = float(self.attr("cubic_coeff_a", -0.75))
        s = min(scale, 1.0) if self.attr("antialias", 0) else 1.0
        # Antialiasing widens the support by 1/scale when downscaling.
        start = math.floor(-(1 if mode == "linear" else 2) / s) + 1
        offsets = np.arange(start, 2 - start)[None, :]  # (1, n)
        dist = np.abs((offsets - ratio) * s)
        if mode == "linear":
            w = np.clip(1 - dist, 0, 1)
        else:  # Keys cubic convolution kernel with coefficient a
            w = np.where(
                dist <= 1,
                ((a + 2) * dist - (a + 3)) * dist * dist + 1,
                np.where(dist < 2, ((a * dist - 5 * a) * dist + 8 * a) * dist - 4 * a, 0.0),
            )
        taps = (base[:, None] + offsets).astype(np.int64)
        if self.attr("exclude_outside", 0):
            w = np.where((taps >= 0) & (taps < size), w, 0.0)
        w = w / w.sum(axis=1, keepdims=True)
        return np.clip(taps, 0, size - 1), w


@register
class Resize10(_ResizeBase):
    """Opset 10: scales only, asymmetric coordinates."""

    since = 10

    def run(self, x: Array, scales: Array) -> tuple[Array]:
        self.node.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
        self.node.attrs.setdefault("nearest_mode", "floor")
        return (self.resize(x, None, scales, None),)


@register
class Resize11(_ResizeBase):
    since = 11

    def run(
        self,
        x: Array,
        roi: Array | None = None,
        scales: Array | None = None,
        sizes: Array | None = None,
    ) -> tuple[Array]:
        return (self.resize(x, roi, scales, sizes),)


class _UpsampleBase(_ResizeBase):
    """Upsample (opsets 7-9, replaced by Resize): asymmetric coordinates, floor for nearest."""

    op_type = "Upsample"

    def upsample(self, x: Array, scales: Array) -> Array:
        self.node.attrs["coordinate_transformation_mode"] = "asymmetric"
        self.node.attrs.setdefault("nearest_mode", "floor")
        return self.resize(x, None, np.asarray(scales, dtype=np.float32), None)


@register
class Upsample7(_UpsampleBase):
    since = 7

    def run(self, x: Array) -> tuple[Array]:
        return (self.upsample(x, np.asarray(self.attr("scales"))),)


@register
class Upsample9(_UpsampleBase):
    since = 9

    def run(self, x: Array, scales: Array) -> tuple[Array]:
        return (self.upsample(x, scales),)
