"""Plan a model once: order, fold constants, fuse, pick kernels, compute value lifetimes.

Passes, in order (each one a small function):

1. topological order (the file order may not be sorted; cycles are errors);
2. constant folding: a node whose inputs are all constants runs now, its outputs become
   constants (so DequantizeLinear of int8 weights becomes a float weight the kernels see);
3. fusion: Conv+BatchNormalization into the conv weights, a bias Add into the MatMul before it,
   Relu/Clip/LeakyRelu into the Conv/Gemm/MatMul they follow when that is the only consumer,
   a residual Add (and the Relu after it) into the Conv that produces one of its inputs, a
   residual Add into the MatMul that produces one of its inputs,
   torch's exact-GELU pattern (Div/Erf/Add/Mul/Mul) into one ``com.microsoft::Gelu``,
   and sibling MatMuls reading the same input (attention's Q, K and V projections) into one
   GEMM over their concatenated weights; a sparse MatMul read only by sparse MatMuls
   (directly or through a GELU) hands its result on transposed (the layout they read),
   and a power-of-two scale of attention's scores folds into the Q projection;
4. dead-node removal; a Conv read only by a padded Conv with stride 1 learns that reader's
   padding (``_frame``: it may write its output inside that zero frame, ``kernels/_wide``);
   op instantiation (kernels are planned here), and last-use liveness so
   intermediate arrays are released as soon as nothing reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto

from zoo.runtime.errors import InvalidModel, NodeExecutionError, ZooRuntimeError
from zoo.runtime.graph import (
    ValueSpec,
    graph_nodes,
    initializer_arrays,
    last_uses,
    model_opset,
    topological_order,
    value_specs,
)
from zoo.runtime.kernels import Activation, Wide, linear_is_sparse
from zoo.runtime.registry import Array, BuildContext, Node, OpRun, resolve

__all__ = ["Plan", "Step", "build_plan", "crop_wide", "run_node", "run_node_quiet"]

_WEIGHTED = ("Conv", "Gemm", "MatMul")


@dataclass
class Step:
    """One node to run, its op adapter, the values to drop once it has run, and the input
    positions that may hold a conv's uncropped output (a ``kernels.Wide``) which this op
    cannot read: :func:`crop_wide` crops those."""

    node: Node
    op: OpRun
    release: tuple[str, ...] = ()
    crop: tuple[int, ...] = ()


@dataclass
class Plan:
    """The result of planning: what :class:`InferenceSession` executes on each ``run``."""

    opset: int
    inputs: list[ValueSpec]
    outputs: list[ValueSpec]
    constants: dict[str, Array]
    steps: list[Step]
    shapes: dict[str, list[int | str | None]] = field(default_factory=dict)
    folded: list[str] = field(default_factory=list)
    fusions: list[str] = field(default_factory=list)
    initializers: frozenset[str] = frozenset()


def run_node(op: OpRun, inputs: list[Any]) -> tuple[Any, ...]:
    """Run one op, re-raising any failure as NodeExecutionError naming node, op, shapes, dtypes."""
    # IEEE semantics like every ONNX runtime: inf/nan propagate without numpy warnings.
    with np.errstate(all="ignore"):
        return run_node_quiet(op, inputs)


def run_node_quiet(op: OpRun, inputs: list[Any]) -> tuple[Any, ...]:
    """:func:`run_node` for a caller that holds ``np.errstate(all="ignore")`` already
    (``InferenceSession.run``, around all its steps: entering it per step took 0.65 us)."""
    try:
        outputs = op.run(*inputs)
    except ZooRuntimeError:
        raise
    except Exception as e:
        shapes = [None if x is None else tuple(np.shape(x)) for x in inputs]
        dtypes = [None if x is None else str(np.asarray(x).dtype) for x in inputs]
        raise NodeExecutionError(op.node.name, op.node.op_type, shapes, dtypes, e) from e
    return outputs


# the inputs that may be a kernels.Wide: Conv's x and the residual the planner fuses in,
# MaxPool's and GlobalAveragePool's x
_WIDE_INPUTS = {"Conv": (0, 3), "MaxPool": (0,), "GlobalAveragePool": (0,)}


def _inputs_of(node: Node, values: Mapping[str, Any]) -> list[Any]:
    args = [values[name] if name else None for name in node.inputs]
    while args and args[-1] is None:  # trailing omitted optionals are simply not passed
        args.pop()
    return args


def _wide_ok(node: Node) -> tuple[int, ...]:
    return _WIDE_INPUTS.get(node.op_type, ()) if node.domain in ("", "ai.onnx") else ()


def _crop_positions(steps: list[Step]) -> None:
    """Set each step's ``crop``: the inputs a Conv step computes (and may leave uncropped,
    as a kernels.Wide) that the step's op does not read as one."""
    convs = {o for s in steps if s.node.op_type == "Conv" for o in s.node.outputs if o}
    for step in steps:
        ok = _wide_ok(step.node)
        step.crop = tuple(
            i for i, name in enumerate(step.node.inputs) if name in convs and i not in ok
        )


def crop_wide(step: Step, args: list[Any], values: MutableMapping[str, Any]) -> None:
    """Replace the kernels.Wide among ``args`` at ``step.crop`` with the cropped array, in
    ``values`` too (made once for all the readers that need it)."""
    for i in step.crop:
        if i < len(args) and isinstance(args[i], Wide):
            args[i] = values[step.node.inputs[i]] = np.asarray(args[i])


def _infer_shapes(model: ModelProto) -> dict[str, list[int | str | None]]:
    """Static shapes from onnx.shape_inference where it succeeds; empty otherwise."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference is an optimisation aid: a model it cannot handle still runs
        return {}
    shapes: dict[str, list[int | str | None]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tt.shape.dim
            ]
    return shapes


def build_plan(model: ModelProto, *, sparse: bool = True) -> Plan:
    """Plan ``model`` for execution (see the module docstring for the passes)."""
    graph = model.graph
    opset = model_opset(model)
    arrays = initializer_arrays(graph)
    graph_inputs = {vi.name for vi in graph.input}
    # Initializers listed as graph inputs (old exporters' keep_initializers_as_inputs) are
    # planned as constants, so their weights still get kernels and folding; feeding one is
    # refused at run time rather than silently ignored.
    constants = dict(arrays)
    inputs, outputs = value_specs(graph, set(constants))
    nodes = topological_order(graph_nodes(graph), graph_inputs | set(arrays))
    output_names = {o.name for o in outputs}
    plan = Plan(opset, inputs, outputs, constants, [], _infer_shapes(model))
    plan.initializers = frozenset(arrays)

    nodes = _fold_constants(nodes, plan, sparse)
    nodes = _fuse_conv_bn(nodes, plan, output_names)
    nodes = _fuse_matmul_bias(nodes, plan, output_names)
    nodes = _fuse_activations(nodes, plan, output_names)
    nodes = _fuse_residual(nodes, plan, output_names)
    nodes = _fuse_matmul_residual(nodes, plan, output_names)
    nodes = _fuse_gelu(nodes, plan, output_names)
    nodes = _merge_sibling_matmuls(nodes, plan, output_names, sparse)
    nodes = _fold_attention_scale(nodes, plan, output_names)
    _chain_sparse_layouts(nodes, plan, output_names, sparse)
    nodes = _remove_dead(nodes, output_names)
    _frame_conv_outputs(nodes, plan, output_names)

    ctx = BuildContext(opset, plan.constants, sparse)
    used = {name for node in nodes for name in node.inputs} | output_names
    for name in [c for c in plan.constants if c not in used]:
        del plan.constants[name]  # folded-away weights: free them
    releases = last_uses(nodes, output_names | set(plan.constants))
    plan.steps = [
        Step(node, resolve(node.domain, node.op_type, opset)(node, ctx), release)
        for node, release in zip(nodes, releases, strict=True)
    ]
    _crop_positions(plan.steps)
    return plan


def _consumers(nodes: list[Node]) -> dict[str, list[Node]]:
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for name in node.inputs:
            if name:
                readers.setdefault(name, []).append(node)
    return readers


def _fold_constants(nodes: list[Node], plan: Plan, sparse: bool) -> list[Node]:
    ctx = BuildContext(plan.opset, plan.constants, sparse)
    kept = []
    for node in nodes:
        foldable = all(not name or name in plan.constants for name in node.inputs)
        if not foldable:
            kept.append(node)
            continue
        op = resolve(node.domain, node.op_type, plan.opset)(node, ctx)
        results = run_node(op, _inputs_of(node, plan.constants))
        for name, value in zip(node.outputs, results, strict=False):
            if name:
                plan.constants[name] = np.asarray(value)
        plan.folded.append(node.name)
    return kept


def _unique(plan: Plan, base: str) -> str:
    name, i = base, 0
    while name in plan.constants:
        i += 1
        name = f"{base}_{i}"
    return name


def _single_reader(node: Node, readers: dict[str, list[Node]], outputs: set[str]) -> Node | None:
    """The only node reading ``node``'s first output, if it has exactly one and is internal."""
    out = node.outputs[0] if node.outputs else ""
    if not out or out in outputs or len(node.outputs) > 1:
        return None
    users = readers.get(out, [])
    return users[0] if len(users) == 1 else None


def _float_const(plan: Plan, node: Node, i: int) -> Array | None:
    if i >= len(node.inputs) or not node.inputs[i]:
        return None
    value = plan.constants.get(node.inputs[i])
    return value if value is not None and value.dtype == np.float32 else None


def _matmul_weight(plan: Plan, node: Node) -> Array | None:
    """The constant 2-D float32 weight of a standard-domain MatMul, else None."""
    if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx"):
        return None
    w = _float_const(plan, node, 1)
    return w if w is not None and w.ndim == 2 else None


def _fuse_conv_bn(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """Conv -> BatchNormalization (inference) becomes one Conv with rescaled weights."""
    readers = _consumers(nodes)
    removed: set[int] = set()
    for conv in nodes:
        w = _float_const(plan, conv, 1)
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or w is None:
            continue
        bn = _single_reader(conv, readers, outputs)
        if bn is None or bn.op_type != "BatchNormalization" or bn.inputs[0] != conv.outputs[0]:
            continue
        params = [_float_const(plan, bn, i) for i in range(1, 5)]
        if bn.attrs.get("training_mode", 0) or len([o for o in bn.outputs if o]) != 1:
            continue
        if bn.attrs.get("spatial", 1) != 1 or any(p is None for p in params):
            continue
        scale, shift, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
        factor = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))  # (Cout,)
        bias = _float_const(plan, conv, 2)
        b = np.zeros(w.shape[0]) if bias is None else bias.astype(np.float64)
        new_w = (w * factor.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        new_b = ((b - mean) * factor + shift).astype(np.float32)
        w_name, b_name = (
            _unique(plan, f"{conv.name}/bn_weight"),
            _unique(plan, f"{conv.name}/bn_bias"),
        )
        plan.constants[w_name], plan.constants[b_name] = new_w, new_b
        conv.inputs = [conv.inputs[0], w_name, b_name]
        conv.outputs = [bn.outputs[0]]
        removed.add(id(bn))
        plan.fusions.append(f"Conv+BatchNormalization: {conv.name} <- {bn.name}")
    return [n for n in nodes if id(n) not in removed]


def _fuse_matmul_bias(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """MatMul(x, W) -> Add(., b) with constant W (K, N) and b (N,) becomes MatMul(x, W, b)."""
    readers = _consumers(nodes)
    removed: set[int] = set()
    for mm in nodes:
        w = _float_const(plan, mm, 1)
        if mm.op_type != "MatMul" or w is None or w.ndim != 2 or len(mm.inputs) != 2:
            continue
        add = _single_reader(mm, readers, outputs)
        if add is None or add.op_type != "Add" or len(add.inputs) != 2:
            continue
        other = add.inputs[1] if add.inputs[0] == mm.outputs[0] else add.inputs[0]
        bias = plan.constants.get(other)
        if (
            bias is None
            or bias.dtype != np.float32
            or bias.size != w.shape[1]
            or other == mm.outputs[0]
        ):
            continue
        rank = len(plan.shapes.get(mm.inputs[0], [])) or 1
        # The bias must not broadcast the result to a higher rank or along rows.
        if bias.ndim > max(rank, 1) or (bias.ndim >= 1 and bias.shape[-1] != w.shape[1]):
            continue
        b_name = _unique(plan, f"{mm.name}/bias")
        plan.constants[b_name] = bias.reshape(-1)
        mm.inputs = [*mm.inputs, b_name]
        mm.outputs = [add.outputs[0]]
        removed.add(id(add))
        plan.fusions.append(f"MatMul+Add: {mm.name} <- {add.name}")
    return [n for n in nodes if id(n) not in removed]


def _activation_of(node: Node, plan: Plan) -> Activation | None:
    if node.op_type == "Relu":
        return Activation("relu")
    if node.op_type == "LeakyRelu":
        return Activation("leaky_relu", alpha=float(node.attrs.get("alpha", 0.01)))
    if node.op_type != "Clip":
        return None
    if plan.opset < 11:
        lo, hi = node.attrs.get("min", -np.inf), node.attrs.get("max", np.inf)
        return Activation("clip", alpha=float(lo), beta=float(hi))
    bounds = []
    for i, default in ((1, -np.inf), (2, np.inf)):
        if i >= len(node.inputs) or not node.inputs[i]:
            bounds.append(default)
        elif node.inputs[i] in plan.constants:
            bounds.append(float(plan.constants[node.inputs[i]].reshape(-1)[0]))
        else:
            return None  # runtime bounds cannot be baked into a kernel
    return Activation("clip", alpha=bounds[0], beta=bounds[1])


def _fuse_activations(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """Relu/Clip/LeakyRelu after a Conv/Gemm/MatMul with a constant float weight folds into it."""
    readers = _consumers(nodes)
    removed: set[int] = set()
    for prod in nodes:
        if prod.op_type not in _WEIGHTED or "_activation" in prod.attrs:
            continue
        w = _float_const(plan, prod, 1)
        if w is None or (prod.op_type == "MatMul" and w.ndim != 2):
            continue
        act_node = _single_reader(prod, readers, outputs)
        if act_node is None or act_node.inputs[0] != prod.outputs[0]:
            continue
        act = _activation_of(act_node, plan)
        if act is None:
            continue
        prod.attrs["_activation"] = act
        prod.outputs = [act_node.outputs[0]]
        removed.add(id(act_node))
        plan.fusions.append(f"{prod.op_type}+{act_node.op_type}: {prod.name} <- {act_node.name}")
    return [n for n in nodes if id(n) not in removed]


def _same_static_shape(plan: Plan, a: str, b: str) -> bool:
    """Whether inference gave ``a`` and ``b`` one shape (equal sizes or equal dim names)."""
    sa, sb = plan.shapes.get(a), plan.shapes.get(b)
    if not sa or not sb or len(sa) != len(sb):
        return False
    return all(da is not None and da == db for da, db in zip(sa, sb, strict=True))


def _residual_add(
    node: Node,
    op_type: str,
    ndim: int,
    plan: Plan,
    readers: dict[str, list[Node]],
    outputs: set[str],
    taken: set[int],
) -> tuple[Node, str] | None:
    """(the Add, its other input) when ``node`` is an ``op_type`` with a constant float
    weight of ``ndim`` dims, no fused activation, no residual yet, and its only reader is an
    Add (not already fused, ``taken``) of a computed value: a residual it could fuse."""
    w = _float_const(plan, node, 1)
    if node.op_type != op_type or node.domain not in ("", "ai.onnx") or w is None:
        return None
    if w.ndim != ndim or "_activation" in node.attrs or len(node.inputs) > 3:
        return None
    add = _single_reader(node, readers, outputs)
    if add is None or add.op_type != "Add" or id(add) in taken:
        return None
    other = _other_input(add, node.outputs[0])
    if other is None or other == node.outputs[0] or other in plan.constants:
        return None
    return add, other


def _fuse_residual(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """Conv -> Add(., r) [-> Relu/Clip/LeakyRelu] becomes Conv(x, W, B, r) with the activation
    applied after the add: ResNet's block ends, without two extra passes over the output.

    Only for a 2-D Conv with a float constant weight and no activation of its own, and when
    shape inference shows the add does not broadcast (the kernel adds same-shape arrays).
    The fused Conv takes the place of the last fused node, where ``r`` is known to exist.
    """
    readers = _consumers(nodes)
    removed: set[int] = set()
    moved: dict[int, Node] = {}  # id(last fused node) -> the conv that runs there
    for conv in nodes:
        found = _residual_add(conv, "Conv", 4, plan, readers, outputs, removed)
        if found is None:
            continue
        add, other = found
        if not _same_static_shape(plan, conv.outputs[0], other):
            continue
        if not _same_static_shape(plan, conv.outputs[0], add.outputs[0]):
            continue
        last = add
        act_node = _single_reader(add, readers, outputs)
        act = None if act_node is None else _activation_of(act_node, plan)
        if act_node is not None and act is not None and act_node.inputs[0] == add.outputs[0]:
            conv.attrs["_activation"] = act
            last = act_node
            removed.add(id(act_node))
        bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
        conv.inputs = [conv.inputs[0], conv.inputs[1], bias, other]
        conv.outputs = [last.outputs[0]]
        removed.update({id(add), id(conv)})
        moved[id(last)] = conv
        fused = f"{add.name}" + (f", {last.name}" if last is not add else "")
        plan.fusions.append(f"Conv+Add residual: {conv.name} <- {fused}")
    return [moved.get(id(n), n) for n in nodes if id(n) not in removed or id(n) in moved]


def _fuse_matmul_residual(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """MatMul(x, W[, b]) -> Add(., r) becomes MatMul(x, W, b, r): a transformer's attention
    output and feed-forward projections end in a residual Add, which the GEMM's epilogue
    does on each block while it is in cache (dense) or right after the kernel (sparse).

    Only for a constant 2-D float weight and no fused activation (the add must come first).
    Shape inference often cannot tell whether the add broadcasts (a reshape before the
    projection leaves its dims unknown), so the MatMul checks at run time: a residual of
    the output's shape is fused, any other is broadcast-added after. It runs where the Add ran.
    """
    readers = _consumers(nodes)
    removed: set[int] = set()
    moved: dict[int, Node] = {}  # id(add) -> the MatMul that runs there
    for mm in nodes:
        found = _residual_add(mm, "MatMul", 2, plan, readers, outputs, removed)
        if found is None:
            continue
        add, other = found
        bias = mm.inputs[2] if len(mm.inputs) > 2 else ""
        mm.inputs = [mm.inputs[0], mm.inputs[1], bias, other]
        mm.outputs = [add.outputs[0]]
        removed.update({id(add), id(mm)})
        moved[id(add)] = mm
        plan.fusions.append(f"MatMul+Add residual: {mm.name} <- {add.name}")
    return [moved.get(id(n), n) for n in nodes if id(n) not in removed or id(n) in moved]


def _scalar_const(plan: Plan, node: Node, value: float) -> str | None:
    """The input of ``node`` that is a float constant equal to ``value`` (one element)."""
    for name in node.inputs:
        c = plan.constants.get(name)
        if c is None or c.dtype.kind != "f" or c.size != 1:
            continue
        if abs(float(c.reshape(-1)[0]) - value) <= 1e-6 * abs(value):
            return name
    return None


def _other_input(node: Node, name: str) -> str | None:
    """The other input of a binary ``node`` one of whose inputs is ``name``."""
    if len(node.inputs) != 2 or name not in node.inputs:
        return None
    return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _gelu_match(
    erf: Node, plan: Plan, nodes: list[Node], outputs: set[str]
) -> tuple[str, list[Node]] | None:
    """(x, the pattern's nodes, the last one last) when ``erf`` is the core of an exact
    GELU x * 0.5 * (1 + erf(x / sqrt(2))), else None.

    Matches torch's two export orders, Mul(Mul(x, Add(Erf(s), 1)), 0.5) and
    Mul(Mul(x, 0.5), Add(Erf(s), 1)), with s = Div(x, sqrt 2) or Mul(x, 1 / sqrt 2).
    """
    readers = _consumers(nodes)
    producer = {o: n for n in nodes for o in n.outputs if o}
    scaled = producer.get(erf.inputs[0]) if erf.inputs else None
    if scaled is None or len(scaled.inputs) != 2:
        return None
    if _single_reader(scaled, readers, outputs) is not erf:
        return None
    if scaled.op_type == "Div" and _scalar_const(plan, scaled, math.sqrt(2)) == scaled.inputs[1]:
        x = scaled.inputs[0]
    elif scaled.op_type == "Mul" and (c := _scalar_const(plan, scaled, math.sqrt(0.5))):
        x = _other_input(scaled, c) or ""
    else:
        return None
    add = _single_reader(erf, readers, outputs)
    if add is None or add.op_type != "Add":
        return None
    one = _other_input(add, erf.outputs[0])
    if one is None or _scalar_const(plan, add, 1.0) != one:
        return None
    mul = _single_reader(add, readers, outputs)
    if mul is None or mul.op_type != "Mul":
        return None
    other = _other_input(mul, add.outputs[0])
    if other == x:  # Mul(Mul(x, Add), 0.5)
        last = _single_reader(mul, readers, outputs)
        if last is None or last.op_type != "Mul":
            return None
        half = _other_input(last, mul.outputs[0])
        if half is None or _scalar_const(plan, last, 0.5) != half:
            return None
        return x, [scaled, erf, add, mul, last]
    # Mul(Mul(x, 0.5), Add): ``other`` is Mul(x, 0.5), read only by ``mul``
    half_node = producer.get(other or "")
    if half_node is None or half_node.op_type != "Mul" or x not in half_node.inputs:
        return None
    if _single_reader(half_node, readers, outputs) is not mul:
        return None
    if _scalar_const(plan, half_node, 0.5) != _other_input(half_node, x):
        return None
    return x, [scaled, erf, add, half_node, mul]


def _fuse_gelu(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """torch's exact GELU (five nodes) becomes one ``com.microsoft::Gelu``: one pass, no
    four intermediate arrays (see kernels/_erf.py)."""
    for erf in [n for n in nodes if n.op_type == "Erf" and n.domain in ("", "ai.onnx")]:
        match = _gelu_match(erf, plan, nodes, outputs)
        if match is None:
            continue
        x, fused = match
        last = fused[-1]
        gelu = Node(last.name or erf.name, "Gelu", "com.microsoft", [x], [last.outputs[0]])
        removed = {id(n) for n in fused[:-1]}
        nodes = [gelu if n is last else n for n in nodes if id(n) not in removed]
        plan.fusions.append(f"Gelu: {gelu.name} <- {', '.join(n.name for n in fused)}")
    return nodes


def _merge_sibling_matmuls(
    nodes: list[Node], plan: Plan, outputs: set[str], sparse: bool
) -> list[Node]:
    """MatMuls of one input by constant (K, N_i) weights become one MatMul by the weights
    side by side (K, sum N_i), whose outputs are column views of one result.

    Attention's Q, K and V projections are such siblings. One GEMM over 2304 columns splits
    over the threads in wider parts than three of 768: BERT-base's (128, 768) input, 2
    threads, 3.14 -> 2.88 ms (1 thread: 5.60 -> 5.51); a sparse one transposes the input and
    launches once instead of three times. With the residual fusion above, BERT-base against
    onnxruntime in one run went from 0.72x to 0.78x dense and from 1.46x to 1.61x at 90%.

    Siblings merge only when they get the same kind of kernel (dense or sparse) and the
    same fused activation, and none is a graph output (those stay contiguous arrays). The
    merged node runs where the first sibling ran.
    """
    groups: dict[tuple[str, int, Activation | None, bool], list[Node]] = {}
    for mm in nodes:
        w = _matmul_weight(plan, mm)
        if w is None or len(mm.outputs) != 1 or mm.outputs[0] in outputs:
            continue
        if len(mm.inputs) > 3 or (len(mm.inputs) > 2 and _float_const(plan, mm, 2) is None):
            continue  # a residual input, or a bias that is not a constant
        act = mm.attrs.get("_activation")
        key = (mm.inputs[0], w.shape[0], act, linear_is_sparse(w, sparse=sparse))
        groups.setdefault(key, []).append(mm)
    merged: dict[int, Node] = {}  # id(first sibling) -> the merged node
    removed: set[int] = set()
    for siblings in groups.values():
        if len(siblings) < 2:
            continue
        weights = [plan.constants[mm.inputs[1]] for mm in siblings]
        biases = [_float_const(plan, mm, 2) if len(mm.inputs) > 2 else None for mm in siblings]
        first = siblings[0]
        w_name = _unique(plan, f"{first.name}/merged_weight")
        plan.constants[w_name] = np.ascontiguousarray(np.concatenate(weights, axis=1))
        inputs = [first.inputs[0], w_name]
        if any(b is not None for b in biases):
            b_name = _unique(plan, f"{first.name}/merged_bias")
            plan.constants[b_name] = np.concatenate(
                [
                    np.zeros(w.shape[1], np.float32) if b is None else b.reshape(-1)
                    for w, b in zip(weights, biases, strict=True)
                ]
            ).astype(np.float32)
            inputs.append(b_name)
        attrs: dict[str, Any] = {"_splits": tuple(int(w.shape[1]) for w in weights)}
        if "_activation" in first.attrs:
            attrs["_activation"] = first.attrs["_activation"]
        names = "+".join(mm.name for mm in siblings)
        merged[id(first)] = Node(
            names, "MatMul", first.domain, inputs, [mm.outputs[0] for mm in siblings], attrs
        )
        removed.update(id(mm) for mm in siblings)
        plan.fusions.append(f"MatMul siblings: {names}")
    return [merged.get(id(n), n) for n in nodes if id(n) not in removed or id(n) in merged]


def _power_of_two(plan: Plan, node: Node, i: int) -> float | None:
    """The float scalar constant input ``i`` of ``node`` if it is a power of two, else None."""
    c = plan.constants.get(node.inputs[i]) if i < len(node.inputs) else None
    if c is None or c.dtype != np.float32 or c.size != 1:
        return None
    value = float(c.reshape(-1)[0])
    if value <= 0 or not math.isfinite(value) or math.frexp(value)[0] != 0.5:
        return None
    return value


def _fold_attention_scale(nodes: list[Node], plan: Plan, outputs: set[str]) -> list[Node]:
    """Attention's ``Q K^T / sqrt(d)`` with a power-of-two scale (8 for heads of 64) folds
    into the Q projection's weight and bias: one pass over the scores less, and exact -
    scaling by a power of two commutes with every rounding of the GEMM.

    Matches Div(MatMul(Transpose(Reshape(q)), k), c) and Mul by 1/c, where q is the output
    of a MatMul by a constant weight (or one output of merged siblings) read only by that
    Reshape, and every value on the way has one reader.
    """
    readers = _consumers(nodes)
    producer = {o: n for n in nodes for o in n.outputs if o}
    removed: set[int] = set()
    for qk in nodes:
        if qk.op_type != "MatMul" or len(qk.inputs) != 2 or qk.inputs[1] in plan.constants:
            continue
        scale = _single_reader(qk, readers, outputs)
        if scale is None or scale.op_type not in ("Div", "Mul") or len(scale.inputs) != 2:
            continue
        if scale.op_type == "Div" and scale.inputs[0] == qk.outputs[0]:
            c = _power_of_two(plan, scale, 1)
            factor = None if c is None else 1.0 / c
        elif scale.op_type == "Mul":
            other = 1 if scale.inputs[0] == qk.outputs[0] else 0
            factor = _power_of_two(plan, scale, other)
        else:
            factor = None
        tr = producer.get(qk.inputs[0])
        rs = None if tr is None else producer.get(tr.inputs[0])
        proj = None if rs is None else producer.get(rs.inputs[0])
        if factor is None or tr is None or rs is None or proj is None:
            continue
        if tr.op_type != "Transpose" or rs.op_type != "Reshape":
            continue
        if readers.get(tr.outputs[0]) != [qk] or readers.get(rs.outputs[0]) != [tr]:
            continue
        q = rs.inputs[0]
        w = _matmul_weight(plan, proj)
        if w is None or readers.get(q) != [rs] or q in outputs:
            continue
        if "_activation" in proj.attrs or len(proj.inputs) > 3:
            continue
        splits = tuple(proj.attrs.get("_splits", (w.shape[1],)))
        at = proj.outputs.index(q)
        lo = sum(splits[:at])
        cols = slice(lo, lo + splits[at])
        new_w = w.copy()
        new_w[:, cols] *= np.float32(factor)
        w_name = _unique(plan, f"{proj.name}/scaled_weight")
        plan.constants[w_name] = new_w
        inputs = [proj.inputs[0], w_name]
        bias = _float_const(plan, proj, 2)
        if bias is not None:
            new_b = bias.reshape(-1).copy()
            new_b[cols] *= np.float32(factor)
            b_name = _unique(plan, f"{proj.name}/scaled_bias")
            plan.constants[b_name] = new_b
            inputs.append(b_name)
        proj.inputs = inputs
        qk.outputs = [scale.outputs[0]]
        removed.add(id(scale))
        plan.fusions.append(f"attention scale into {proj.name}: {scale.name}")
    return [n for n in nodes if id(n) not in removed]


def _sparse_matmul(plan: Plan, node: Node, sparse: bool) -> bool:
    """Whether ``node`` is a MatMul by a constant 2-D weight planned sparse."""
    w = _matmul_weight(plan, node)
    return w is not None and linear_is_sparse(w, sparse=sparse)


# elementwise ops whose kernels keep a transposed layout (kernels/_erf.py)
_LAYOUT_KEEPING = {("Gelu", "com.microsoft"), ("Gelu", ""), ("Gelu", "ai.onnx")}


def _chain_sparse_layouts(nodes: list[Node], plan: Plan, outputs: set[str], sparse: bool) -> None:
    """A sparse MatMul read only by sparse MatMuls (an MLP's layers), directly or through
    a GELU (a transformer's feed-forward block), returns its result transposed
    (``_transposed_out``): the batched sparse kernel reads its input as xT (K, M), so the
    next layer starts without a transpose (see ``sparse_linear``)."""
    readers = _consumers(nodes)

    def only_sparse_readers(value: str) -> bool:
        users = readers.get(value, [])
        return bool(users) and all(
            _sparse_matmul(plan, u, sparse) and u.inputs[0] == value and value not in u.inputs[1:]
            for u in users
        )

    for mm in nodes:
        if not _sparse_matmul(plan, mm, sparse) or "_splits" in mm.attrs:
            continue
        if len(mm.outputs) != 1 or mm.outputs[0] in outputs:
            continue
        users = readers.get(mm.outputs[0], [])
        via = users[0] if len(users) == 1 else None
        if only_sparse_readers(mm.outputs[0]) or (
            via is not None
            and (via.op_type, via.domain) in _LAYOUT_KEEPING
            and len(via.outputs) == 1
            and via.outputs[0] not in outputs
            and only_sparse_readers(via.outputs[0])
        ):
            mm.attrs["_transposed_out"] = True
            plan.fusions.append(f"MatMul transposed output: {mm.name} -> {users[0].name}")


def _conv_2d(plan: Plan, node: Node) -> bool:
    """A standard-domain Conv with a constant float32 4-D weight (a direct conv kernel)."""
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return False
    w = _float_const(plan, node, 1)
    return w is not None and w.ndim == 4


def _frame_conv_outputs(nodes: list[Node], plan: Plan, outputs: set[str]) -> None:
    """Give a Conv whose only reader is a Conv with stride 1 and explicit pads that reads
    it as its input (once) the reader's pads, as ``_frame``: the producer then writes its
    output inside that zero frame, when its rows have the padded width, and the reader
    skips its padding copy (``kernels/_wide``; measured in
    ``_direct_conv.DirectCall._framed``)."""
    readers = _consumers(nodes)
    for prod in nodes:
        if not _conv_2d(plan, prod):
            continue
        user = _single_reader(prod, readers, outputs)
        if user is None or not _conv_2d(plan, user) or user.inputs[0] != prod.outputs[0]:
            continue
        pads = user.attrs.get("pads")
        strides = user.attrs.get("strides", (1, 1))
        if (
            prod.outputs[0] in user.inputs[1:]
            or user.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "")
            or pads is None
            or len(pads) != 4
            or not any(pads)
            or min(pads) < 0
            or any(s != 1 for s in strides)
        ):
            continue
        prod.attrs["_frame"] = tuple(int(p) for p in pads)
        plan.fusions.append(f"Conv output in a zero frame: {prod.name} -> {user.name}")


def _remove_dead(nodes: list[Node], outputs: set[str]) -> list[Node]:
    """Drop nodes none of whose outputs reach a graph output."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.outputs if o):
            kept.append(node)
            needed.update(n for n in node.inputs if n)
    kept.reverse()
    if not kept and not outputs:
        raise InvalidModel("the graph has no outputs")
    return kept
