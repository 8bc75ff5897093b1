"""From an ONNX graph to a plan: nodes in topological order, constants, value specs.

This module speaks the graph (names, order, liveness); what the planner does to the graph
(folding, fusing) lives in :mod:`zoo.runtime.planner`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto, helper, numpy_helper

from zoo.runtime.errors import InvalidModel
from zoo.runtime.registry import Array, Node

__all__ = [
    "ValueSpec",
    "graph_nodes",
    "last_uses",
    "model_opset",
    "topological_order",
    "value_specs",
]

# onnxruntime's NodeArg.type spelling for each TensorProto element type.
_ORT_TYPE = {
    TensorProto.FLOAT: "float",
    TensorProto.DOUBLE: "double",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.INT8: "int8",
    TensorProto.INT16: "int16",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.UINT8: "uint8",
    TensorProto.UINT16: "uint16",
    TensorProto.UINT32: "uint32",
    TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool",
    TensorProto.STRING: "string",
}


@dataclass(frozen=True)
class ValueSpec:
    """A graph input or output, shaped like onnxruntime's ``NodeArg``.

    ``shape`` holds ints for static dims, strings for named dynamic dims, None for unknown.
    """

    name: str
    shape: list[int | str | None]
    type: str
    elem_type: int

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """The numpy dtype, or None when the element type is unknown."""
        if self.elem_type == TensorProto.UNDEFINED:
            return None
        try:
            return np.dtype(helper.tensor_dtype_to_np_dtype(self.elem_type))
        except (KeyError, TypeError):
            return None


def _spec(vi: Any) -> ValueSpec:
    tt = vi.type.tensor_type
    shape: list[int | str | None] = []
    if tt.HasField("shape"):
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                shape.append(d.dim_param)
            else:
                shape.append(None)
    type_name = f"tensor({_ORT_TYPE.get(tt.elem_type, 'undefined')})"
    return ValueSpec(vi.name, shape, type_name, int(tt.elem_type))


def value_specs(
    graph: GraphProto, initializers: set[str]
) -> tuple[list[ValueSpec], list[ValueSpec]]:
    """Feedable inputs (graph inputs that are not initializers) and outputs."""
    inputs = [_spec(vi) for vi in graph.input if vi.name not in initializers]
    return inputs, [_spec(vi) for vi in graph.output]


def model_opset(model: ModelProto) -> int:
    """The default-domain opset the model imports."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise InvalidModel("the model imports no opset for the default ONNX domain")


def _attr_value(attr: AttributeProto) -> Any:
    if attr.type == AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    if attr.type == AttributeProto.SPARSE_TENSOR:
        values = numpy_helper.to_array(attr.sparse_tensor.values)
        indices = numpy_helper.to_array(attr.sparse_tensor.indices)
        dense = np.zeros(int(np.prod(attr.sparse_tensor.dims)), dtype=values.dtype)
        if indices.ndim == 2:  # (NNZ, rank) coordinates
            indices = np.ravel_multi_index(indices.T, tuple(attr.sparse_tensor.dims))
        dense[indices] = values
        return dense.reshape(tuple(attr.sparse_tensor.dims))
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8") for v in value]
    return value


def graph_nodes(graph: GraphProto) -> list[Node]:
    """The graph's nodes as planner nodes, attributes converted to Python/numpy values."""
    nodes = []
    for i, n in enumerate(graph.node):
        nodes.append(
            Node(
                name=n.name or f"{n.op_type}_{i}",
                op_type=n.op_type,
                domain=n.domain,
                inputs=list(n.input),
                outputs=list(n.output),
                attrs={a.name: _attr_value(a) for a in n.attribute},
            )
        )
    return nodes


def topological_order(nodes: list[Node], available: set[str]) -> list[Node]:
    """Kahn's algorithm, keeping the file order among ready nodes; raises on cycles/missing values.

    ``available`` holds graph inputs and initializers (known before any node runs).
    """
    producer: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for out in node.outputs:
            if out:
                producer[out] = i
    waiting = [0] * len(nodes)
    dependents: dict[int, list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        for name in node.inputs:
            if not name or (name in available and name not in producer):
                continue
            if name not in producer:
                raise InvalidModel(
                    f"node {node.name!r} ({node.op_type}) reads {name!r}, which no node, "
                    "graph input or initializer provides"
                )
            waiting[i] += 1
            dependents[producer[name]].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        stuck = [nodes[i].name for i, w in enumerate(waiting) if w > 0]
        raise InvalidModel(f"the graph has a cycle through nodes {stuck[:10]}")
    return order


def last_uses(nodes: list[Node], keep: set[str]) -> list[tuple[str, ...]]:
    """For each node, the values that die after it runs (never those in ``keep``).

    A value dies after its last reader; a value nobody reads dies right after its producer.
    """
    last: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in node.outputs:
            if name:
                last[name] = i
        for name in node.inputs:
            if name:
                last[name] = i
    release: list[list[str]] = [[] for _ in nodes]
    for name, i in last.items():
        if name not in keep:
            release[i].append(name)
    return [tuple(sorted(r)) for r in release]


def initializer_arrays(graph: GraphProto) -> dict[str, Array]:
    """Initializers as numpy arrays (sparse initializers densified)."""
    out: dict[str, Array] = {}
    for t in graph.initializer:
        out[t.name] = numpy_helper.to_array(t)
    for sp in graph.sparse_initializer:
        values = numpy_helper.to_array(sp.values)
        indices = numpy_helper.to_array(sp.indices)
        dense = np.zeros(int(np.prod(sp.dims)), dtype=values.dtype)
        if indices.ndim == 2:
            indices = np.ravel_multi_index(indices.T, tuple(sp.dims))
        dense[indices] = values
        out[sp.values.name] = dense.reshape(tuple(sp.dims))
    return out
