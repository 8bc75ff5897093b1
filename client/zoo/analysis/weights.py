"""Find the constant behind a node input, looking through what exporters put in between.

Quantized exports feed weights through ``DequantizeLinear`` (QDQ), TorchScript exports keep
them in ``Constant`` nodes, and some exporters add ``Identity``/``Transpose``/``Reshape``/``Cast``
on the way. :class:`WeightResolver` follows those back to the stored tensor and carries a mask
of which weights are zero: for a quantized tensor that is where it equals its zero point (the
value that dequantizes to 0.0), not where the integer is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

__all__ = ["Quantization", "Resolved", "WeightResolver", "bits_of", "broadcast_along"]

Array = npt.NDArray[Any]

# Ops that only reshuffle a constant: folding them is cheap and exact.
_PASS_THROUGH = {"Identity", "Transpose", "Reshape", "Cast", "Squeeze", "Unsqueeze", "Flatten"}


@dataclass(frozen=True)
class Quantization:
    """How a weight is stored: integer dtype, bit width, one scale per channel or per tensor."""

    dtype: str
    bits: int
    per_channel: bool


@dataclass(frozen=True)
class Resolved:
    """A constant found behind an input: stored values, their zero mask, where they came from.

    ``values`` keep the stored dtype (int8 for a quantized weight); ``zero`` has the same shape
    and is True where the weight is 0.0 once dequantized.
    """

    source: str
    values: Array
    zero: npt.NDArray[np.bool_]
    dtype: str
    quant: Quantization | None = None


def bits_of(dtype: str) -> int:
    """Bit width of a numpy/ml_dtypes dtype name: 'int8' -> 8, 'int4' -> 4, 'float32' -> 32."""
    if dtype in ("int4", "uint4", "float4_e2m1fn"):
        return 4
    if dtype.startswith("float8"):
        return 8
    return int(np.dtype(dtype).itemsize * 8)


def broadcast_along(param: Array, shape: tuple[int, ...], axis: int, block: int = 0) -> Array:
    """A scale or zero point, shaped to broadcast against a tensor of ``shape``.

    Scalars stay scalars; a 1-D parameter lies along ``axis`` (per-channel); with ``block`` > 0
    (blocked quantization, opset 21) each entry covers ``block`` consecutive elements of the axis.

    >>> broadcast_along(np.array([1, 2]), (3, 2), axis=1).shape   # (K, N) per column
    (1, 2)
    """
    if param.size == 1:
        return param.reshape(())
    axis = axis % len(shape)
    if block > 0 and param.ndim == len(shape):
        return np.repeat(param, block, axis=axis).take(range(shape[axis]), axis=axis)
    if param.ndim == 1:
        view = [1] * len(shape)
        view[axis] = param.shape[0]
        return param.reshape(view)
    return param


class WeightResolver:
    """Resolve node inputs to constants (memoized; one resolver per model).

    >>> r = WeightResolver(model)  # doctest: +SKIP
    >>> w = r.resolve("conv1.weight_dq")  # a DequantizeLinear output  # doctest: +SKIP
    >>> w.source, w.dtype, int(w.zero.sum())  # doctest: +SKIP
    ('conv1.weight_quantized', 'int8', 8467)
    """

    def __init__(self, model: ModelProto) -> None:
        graph = model.graph
        # Initializers also listed as graph inputs (IR < 4 exports) could be overridden at run
        # time, but every exporter that writes them means them as weights: they count.
        self.tensors: dict[str, TensorProto] = {t.name: t for t in graph.initializer}
        self.producer: dict[str, NodeProto] = {}
        for node in graph.node:
            for out in node.output:
                self.producer[out] = node
            if node.op_type == "Constant" and node.output:
                tensor = _constant_tensor(node)
                if tensor is not None:
                    self.tensors[node.output[0]] = tensor
        self._memo: dict[str, Resolved | None] = {}
        self.unreadable: set[str] = set()

    def is_constant(self, name: str) -> bool:
        """Whether ``name`` is a stored tensor or derived from one by the ops we fold."""
        return self.resolve(name) is not None or name in self.unreadable

    def array(self, name: str) -> Array | None:
        """A small constant (scale, zero point, shape) as an array, or None."""
        found = self.resolve(name)
        return None if found is None else found.values

    def resolve(self, name: str) -> Resolved | None:
        """The constant behind ``name``, or None if it is computed from graph inputs."""
        if not name:
            return None
        if name not in self._memo:
            self._memo[name] = None  # a cycle (invalid graph) resolves to "not constant"
            self._memo[name] = self._resolve(name)
        return self._memo[name]

    def _resolve(self, name: str) -> Resolved | None:
        tensor = self.tensors.get(name)
        if tensor is not None:
            if tensor.data_location == TensorProto.EXTERNAL:
                # External data the caller did not load (the server analyses without it).
                self.unreadable.add(tensor.name)
                return None
            values = numpy_helper.to_array(tensor)
            return Resolved(name, values, values == 0, str(values.dtype))
        node = self.producer.get(name)
        if node is None:
            return None
        if node.op_type == "DequantizeLinear":
            return self._dequantize(node)
        if node.op_type == "QuantizeLinear":
            return self._quantize(node)
        if node.op_type in _PASS_THROUGH and node.input:
            src = self.resolve(node.input[0])
            if src is None:
                if node.input[0] in self.unreadable:
                    self.unreadable.add(name)
                return None
            return self._fold(node, src)
        return None

    def _dequantize(self, node: NodeProto) -> Resolved | None:
        # y = (x - zero_point) * scale: y == 0 exactly where x == zero_point.
        x = self.resolve(node.input[0])
        scale = self.array(node.input[1]) if len(node.input) > 1 else None
        if x is None or scale is None:
            if node.input[0] in self.unreadable:
                self.unreadable.add(node.output[0])
            return None
        zp = self.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        axis, block = _int_attr(node, "axis", 1), _int_attr(node, "block_size", 0)
        zero_point = np.zeros((), x.values.dtype) if zp is None else zp
        zero = x.values == broadcast_along(zero_point, x.values.shape, axis, block)
        quant = Quantization(x.dtype, bits_of(x.dtype), per_channel=scale.size > 1)
        return Resolved(x.source, x.values, np.asarray(zero), x.dtype, quant)

    def _quantize(self, node: NodeProto) -> Resolved | None:
        # A float constant quantized in the graph (fake-quant left unfolded): quantize it here.
        x = self.resolve(node.input[0])
        scale = self.array(node.input[1]) if len(node.input) > 1 else None
        if x is None or scale is None or not np.issubdtype(x.values.dtype, np.floating):
            return None
        zp = self.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        zero_point = np.zeros((), np.uint8) if zp is None else zp
        axis, block = _int_attr(node, "axis", 1), _int_attr(node, "block_size", 0)
        shape = x.values.shape
        info = np.iinfo(zero_point.dtype) if zero_point.dtype.kind in "iu" else None
        q = np.rint(x.values / broadcast_along(scale, shape, axis, block))
        q = q + broadcast_along(zero_point, shape, axis, block).astype(np.int64)
        if info is not None:
            q = np.clip(q, info.min, info.max)
        values = q.astype(zero_point.dtype)
        zero = values == broadcast_along(zero_point, shape, axis, block)
        dtype = str(values.dtype)
        quant = Quantization(dtype, bits_of(dtype), per_channel=scale.size > 1)
        return Resolved(x.source, values, np.asarray(zero), dtype, quant)

    def _fold(self, node: NodeProto, src: Resolved) -> Resolved | None:
        op = node.op_type
        values, zero = src.values, src.zero
        if op == "Identity" or op == "Cast":
            return src
        if op == "Transpose":
            perm = _ints_attr(node, "perm") or list(range(values.ndim))[::-1]
            return replace(src, values=values.transpose(perm), zero=zero.transpose(perm))
        shape: list[int] | None = None
        if op == "Reshape" and len(node.input) > 1:
            target = self.array(node.input[1])
            if target is None:
                return None
            allow_zero = _int_attr(node, "allowzero", 0)
            shape = [
                values.shape[i] if d == 0 and not allow_zero else int(d)
                for i, d in enumerate(target.tolist())
            ]
        elif op == "Flatten":
            axis = _int_attr(node, "axis", 1) % max(values.ndim, 1)
            shape = [int(np.prod(values.shape[:axis])), -1]
        elif op in ("Squeeze", "Unsqueeze"):
            axes = _ints_attr(node, "axes")
            if not axes and len(node.input) > 1:
                found = self.array(node.input[1])
                axes = [] if found is None else [int(a) for a in found.ravel()]
            if op == "Squeeze":
                squeezed = tuple(a % values.ndim for a in axes) if axes else None
                return replace(src, values=values.squeeze(squeezed), zero=zero.squeeze(squeezed))
            out = values
            for a in sorted(a % (values.ndim + len(axes)) for a in axes):
                out = np.expand_dims(out, a)
            shape = list(out.shape)
        if shape is None:
            return None
        try:
            return replace(src, values=values.reshape(shape), zero=zero.reshape(shape))
        except ValueError:
            return None


def _constant_tensor(node: NodeProto) -> TensorProto | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.HasField("t"):
            tensor = TensorProto()
            tensor.CopyFrom(attr.t)
            tensor.name = node.output[0]
            return tensor
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            value = helper.get_attribute_value(attr)
            dtype = np.float32 if attr.name.startswith("value_float") else np.int64
            return numpy_helper.from_array(np.asarray(value, dtype=dtype), node.output[0])
    return None


def _int_attr(node: NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _ints_attr(node: NodeProto, name: str) -> list[int]:
    for attr in node.attribute:
        if attr.name == name:
            return [int(v) for v in attr.ints]
    return []
