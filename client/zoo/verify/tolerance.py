"""How close a reproduced output must be to the stored one.

fp32 models: ``|got - want| <= atol + rtol * |want|`` with rtol 1e-4, atol 1e-5 (numpy's
``allclose``), room for summation order and BLAS differences, nothing more.

Quantized models (QDQ or QLinear ops): engines round intermediate values differently, so an
output may land one quantization step away. The step is the scale of the last
QuantizeLinear/DequantizeLinear feeding the output (an integer output: 1). Without one on
the output's path the step is unknown, and 1% of the output's range is allowed instead; the
tolerance's ``reason`` says which rule applied.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from onnx import ModelProto, NodeProto, numpy_helper

__all__ = ["FP32_ATOL", "FP32_RTOL", "Tolerance", "output_tolerances"]

FP32_RTOL = 1e-4
FP32_ATOL = 1e-5
# Ops that move or copy values without changing them: a step measured before them still holds.
_VALUE_PRESERVING = frozenset(
    {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Concat", "Slice"}
)
_QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class Tolerance:
    """The allowed difference for one output; ``step`` is set for a quantized one (None: the
    1%-of-range rule, resolved against the stored values by :meth:`atol_for`)."""

    rtol: float
    atol: float
    quantized: bool
    step: float | None
    reason: str

    def atol_for(self, want: np.ndarray) -> float:
        if self.quantized and self.step is None:
            finite = want[np.isfinite(want)] if want.dtype.kind == "f" else want
            span = float(np.ptp(finite)) if finite.size else 0.0
            return max(0.01 * span, FP32_ATOL)
        return self.atol


def _constant(model: ModelProto, name: str) -> np.ndarray | None:
    for tensor in model.graph.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor)
    for node in model.graph.node:
        if node.op_type == "Constant" and name in node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _nearest_qdq(
    model: ModelProto, producers: dict[str, NodeProto], output: str
) -> tuple[NodeProto | None, list[str]]:
    """The Q/DQ node nearest upstream of ``output`` (breadth-first), and the ops on the way."""
    seen: set[str] = set()
    queue: deque[tuple[str, list[str]]] = deque([(output, [])])
    while queue:
        name, path = queue.popleft()
        node = producers.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        if node.op_type in _QDQ:
            return node, path
        for inp in node.input:
            if inp:
                queue.append((inp, [*path, node.op_type]))
    return None, []


def output_tolerances(model: ModelProto, quantized: bool) -> dict[str, Tolerance]:
    """The tolerance of every graph output of ``model``."""
    if not quantized:
        fp32 = Tolerance(FP32_RTOL, FP32_ATOL, False, None, "fp32: rtol 1e-4, atol 1e-5")
        return {o.name: fp32 for o in model.graph.output}
    producers = {out: node for node in model.graph.node for out in node.output}
    result: dict[str, Tolerance] = {}
    for out in model.graph.output:
        node, path = _nearest_qdq(model, producers, out.name)
        scale = None if node is None or len(node.input) < 2 else _constant(model, node.input[1])
        if node is not None and node.op_type == "QuantizeLinear" and not path:
            # The output is the integer tensor itself: one step is 1.
            result[out.name] = Tolerance(0.0, 1.0, True, 1.0, "quantized integer output: 1 step")
        elif node is not None and scale is not None and scale.size:
            step = float(np.max(np.abs(scale)))
            via = "" if not path else f" (then {' -> '.join(reversed(path))})"
            exact = all(op in _VALUE_PRESERVING for op in path)
            reason = (
                f"quantized: one step = scale {step:.6g} of {node.op_type} "
                f"'{node.name or node.output[0]}'{via}"
                + ("" if exact else "; ops after it may stretch the step, so it is approximate")
            )
            # A hair over one step: float arithmetic on either side of the comparison.
            result[out.name] = Tolerance(0.0, step * 1.001 + FP32_ATOL, True, step, reason)
        else:
            reason = (
                "quantized, but no QuantizeLinear/DequantizeLinear with a constant scale "
                f"feeds '{out.name}': allowed 1% of the output's range"
            )
            result[out.name] = Tolerance(0.0, 0.0, True, None, reason)
    return result
